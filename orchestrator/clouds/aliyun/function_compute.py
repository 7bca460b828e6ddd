"""Small batches on Alibaba Cloud Function Compute (FC 3.0).

``handler`` is the function: FC's Python runtime calls it with the event as bytes and its context. It drains
the small queue with the worker's own code (orchestrator.worker.drain), each job's record and message kept as
the worker keeps them, and answers with JSON naming every job it ran and how it ended. Its timer trigger
(deploy/aliyun/s.yaml: every 10 minutes) sends FC's timer event (triggerName, triggerTime, payload); the
workbench's ``invoke`` sends its own; both drain the same way.

``invoke`` is the workbench's side: one synchronous ``InvokeFunction`` through Alibaba's
alibabacloud-fc20230330 SDK (signature V3, ACS3-HMAC-SHA256, with the aliyun access key pair), returning what
the function reported. Errors name the setting to change and never carry the secret or the SDK's own text.
"""

from __future__ import annotations

import io
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from orchestrator.errors import InvalidInput, ServiceError

if TYPE_CHECKING:
    from orchestrator.clouds.aliyun import AliyunSettings
    from orchestrator.config import Settings

ROUTE = "small"
ENDPOINT_SETTING = "ORCHESTRATOR_ALIYUN_FC_ENDPOINT"
FUNCTION_SETTING = "ORCHESTRATOR_ALIYUN_FC_FUNCTION"
QUALIFIER_SETTING = "ORCHESTRATOR_ALIYUN_FC_QUALIFIER"
ENDPOINT_EXAMPLE = "https://<account-id>.cn-hangzhou.fc.aliyuncs.com"
CONNECT_TIMEOUT_MS = 5_000
# A synchronous invocation waits for the whole drain; the function's own timeout (s.yaml: 600 s) ends first.
READ_TIMEOUT_MS = 660_000


# -- the function -----------------------------------------------------------------------------------------


def _trigger(event: bytes | str | None) -> dict[str, Any]:
    """What started this run, from FC's event: the timer trigger's name and time, or the workbench."""
    text = event.decode("utf-8", "replace") if isinstance(event, bytes) else (event or "")
    try:
        found = json.loads(text) if text.strip() else {}
    except ValueError:
        found = {}
    if not isinstance(found, dict):
        found = {}
    if "triggerName" in found:
        return {"trigger": "timer", "name": found.get("triggerName"), "time": found.get("triggerTime")}
    return {"trigger": str(found.get("source") or "invocation")}


def handler(event: bytes, context: Any) -> str:
    """Drain the small queue; return JSON: the route, what started it, FC's request id, each job's end (with
    the line the worker prints for it) and the seconds the drain took.

    A failure to reach the job store, queue or lake raises, so FC reports it (UnhandledInvocationError) and
    the messages stay queued for the next run."""
    from orchestrator.config import get_settings, private_data_root
    from orchestrator.worker import drain, job_line

    settings = get_settings()
    private_data_root(settings)
    started = _trigger(event)
    began = time.monotonic()
    jobs = []
    for job in drain(ROUTE, settings):
        line = job_line(job)
        print(line, file=sys.stderr)  # FC keeps a function's output in its logs
        jobs.append({"job_id": job.job_id, "state": job.state, "error": job.error, "line": line})
    report = {
        "route": ROUTE,
        **started,
        "request_id": getattr(context, "request_id", None),
        "jobs": jobs,
        "seconds": round(time.monotonic() - began, 3),
    }
    return json.dumps(report, sort_keys=True)


# -- the workbench's side ---------------------------------------------------------------------------------


def _aliyun(settings: Settings) -> AliyunSettings:
    """The aliyun cloud's settings: ``settings`` as a job on that cloud uses them."""
    from orchestrator.clouds.aliyun import AliyunSettings

    if not isinstance(settings.cloud_settings, AliyunSettings):
        raise InvalidInput(
            "ORCHESTRATOR_PROFILE", f"the {settings.profile} cloud has no Function Compute function"
        )
    return settings.cloud_settings


def _refusal(exc: Any, aliyun: AliyunSettings, endpoint: str) -> Exception:
    """An error answer of Function Compute as the setting to change; never the SDK's text."""
    status, code = getattr(exc, "status_code", None), str(getattr(exc, "code", "") or "")
    lowered = code.lower()
    if status == 403 and "accesskey" in lowered:
        return InvalidInput(
            "ORCHESTRATOR_ALIYUN_ACCESS_KEY_ID",
            f"Function Compute at {endpoint} does not know the access key {aliyun.access_key_id!r} ({code})",
        )
    if status == 403 and "signature" in lowered:
        return InvalidInput(
            "ORCHESTRATOR_ALIYUN_ACCESS_KEY_SECRET",
            f"Function Compute at {endpoint} refused the request's signature ({code}); check the secret "
            "of access key " + repr(aliyun.access_key_id),
        )
    if status == 403 and "securitytoken" in lowered:
        return InvalidInput(
            "ORCHESTRATOR_ALIYUN_SECURITY_TOKEN",
            f"Function Compute at {endpoint} refused the security token ({code}); renew it with its "
            "temporary access key",
        )
    if status == 403:
        return InvalidInput(
            "ORCHESTRATOR_ALIYUN_ACCESS_KEY_ID",
            f"the access key {aliyun.access_key_id!r} may not invoke {aliyun.fc_function!r} ({code}); "
            "grant its RAM user fc:InvokeFunction on that function",
        )
    if status == 404 and code in ("AliasNotFound", "VersionNotFound"):
        return InvalidInput(
            QUALIFIER_SETTING,
            f"the function {aliyun.fc_function!r} has no version or alias {aliyun.fc_qualifier!r} ({code})",
        )
    if status == 404:
        return InvalidInput(
            FUNCTION_SETTING,
            f"Function Compute at {endpoint} has no function {aliyun.fc_function!r} ({code or 'not found'}); "
            "deploy it (deploy/aliyun/s.yaml) or correct the name",
        )
    return ServiceError(
        f"Function Compute at {endpoint} could not invoke {aliyun.fc_function!r}: {code or status}",
        field=ENDPOINT_SETTING,
    )


def invoke(settings: Settings) -> str:
    """Ask the function to drain the small queue now and wait for it; returns what it reported in the shape
    every cloud's small-batch function answers in (orchestrator.clouds.drain_summary): a first line with the
    seconds, then one line per job that ran.

    A missing or malformed setting is an InvalidInput naming it; Function Compute's refusals name the
    setting to change (the access key, its secret, the function, its qualifier); a function that failed is a
    ServiceError with its error type and message; the queued jobs stay queued in every case."""
    from alibabacloud_fc20230330 import models as fc_models
    from alibabacloud_fc20230330.client import Client
    from alibabacloud_tea_openapi import exceptions as openapi_errors
    from darabonba.runtime import RuntimeOptions

    from orchestrator.clouds.aliyun import endpoint_parts, openapi_config

    aliyun = _aliyun(settings)
    endpoint_parts(aliyun.fc_endpoint, ENDPOINT_SETTING, ENDPOINT_EXAMPLE)
    if not aliyun.fc_function:
        raise InvalidInput(FUNCTION_SETTING, "is not set; name the function that cleans small batches")
    client = Client(
        openapi_config(
            aliyun.access_key_id,
            aliyun.access_key_secret,
            aliyun.fc_endpoint,
            ENDPOINT_SETTING,
            ENDPOINT_EXAMPLE,
            aliyun.security_token,
            connect_timeout=CONNECT_TIMEOUT_MS,
            read_timeout=READ_TIMEOUT_MS,
        )
    )
    event = json.dumps({"source": "workbench", "route": ROUTE}).encode()
    try:
        response = client.invoke_function_with_options(
            aliyun.fc_function,
            fc_models.InvokeFunctionRequest(body=io.BytesIO(event), qualifier=aliyun.fc_qualifier or None),
            fc_models.InvokeFunctionHeaders(x_fc_invocation_type="Sync", x_fc_log_type="None"),
            RuntimeOptions(),
        )
    except openapi_errors.AlibabaCloudException as exc:
        raise _refusal(exc, aliyun, aliyun.fc_endpoint) from None
    except Exception as exc:  # the SDK's connection errors: no answer at all
        raise ServiceError(
            f"cannot reach Function Compute at {aliyun.fc_endpoint} ({type(exc).__name__})",
            field=ENDPOINT_SETTING,
        ) from None
    body = response.body.read() if hasattr(response.body, "read") else (response.body or b"")
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    headers = {k.lower(): v for k, v in (response.headers or {}).items()}
    if headers.get("x-fc-error-type"):
        try:
            failure = json.loads(text)
        except ValueError:
            failure = {}
        kind = failure.get("errorType") or headers["x-fc-error-type"]
        message = str(failure.get("errorMessage") or "no message")[:500]
        raise ServiceError(
            f"the function {aliyun.fc_function!r} failed ({headers['x-fc-error-type']}, request "
            f"{headers.get('x-fc-request-id', '?')}): {kind}: {message}",
            field=FUNCTION_SETTING,
        )
    try:
        report = json.loads(text)
    except ValueError:
        report = None
    if not isinstance(report, dict) or not isinstance(report.get("jobs"), list):
        raise ServiceError(
            f"the function {aliyun.fc_function!r} answered, but not with a drain's report: check that "
            f"{FUNCTION_SETTING} names the function deploy/aliyun/s.yaml deploys",
            field=FUNCTION_SETTING,
        )
    from orchestrator.clouds import drain_summary

    return drain_summary("Function Compute", report)
