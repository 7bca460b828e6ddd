"""Runs the large-batch cleaning notebook as a job run on Alibaba Cloud E-MapReduce Serverless Spark, through
Alibaba's alibabacloud-emr-serverless-spark20230808 SDK (StartJobRun, GetJobRun, CancelJobRun; ROA calls
signed with V3, ACS3-HMAC-SHA256, by the aliyun access key pair).

A run is ``spark-submit`` of ``clean_large_batch.py`` from the OSS folder ``ORCHESTRATOR_ALIYUN_EMR_CODE``
with ``orchestrator.zip`` (the package, deploy/aliyun/emr-code.sh puts both there) on ``--py-files``, the
request's parameters as the notebook's command-line options, on the workspace's resource queue. Errors name
the setting to change and never carry the secret or the SDK's own text.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.errors import InvalidInput
from orchestrator.health import ConnectionCheck
from orchestrator.runners.base import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    RunnerError,
    RunRequest,
    RunStatus,
    map_state,
)

if TYPE_CHECKING:
    from orchestrator.config import Settings

NAME = "emr-serverless"
SERVICE = "EMR Serverless Spark"
ENDPOINT_SETTING = "ORCHESTRATOR_ALIYUN_EMR_ENDPOINT"
WORKSPACE_SETTING = "ORCHESTRATOR_ALIYUN_EMR_WORKSPACE"
QUEUE_SETTING = "ORCHESTRATOR_ALIYUN_EMR_QUEUE"
CODE_SETTING = "ORCHESTRATOR_ALIYUN_EMR_CODE"
RELEASE_SETTING = "ORCHESTRATOR_ALIYUN_EMR_RELEASE"
LAKE_ROOT_SETTING = "ORCHESTRATOR_CLUSTER_LAKE_ROOT"
ENDPOINT_EXAMPLE = "https://emr-serverless-spark.cn-hangzhou.aliyuncs.com"
NOTEBOOK_FILE = "clean_large_batch.py"
PACKAGE_FILE = "orchestrator.zip"
DEFAULT_QUEUE = "root_queue"  # the queue every workspace is created with
DEFAULT_RELEASE = "esr-4.3.0 (Spark 3.5.2, Scala 2.12, Java Runtime)"
CONNECT_TIMEOUT_MS = 5_000
READ_TIMEOUT_MS = 30_000

# The service's job run states (GetJobRun's jobRun.state).
_STATES: dict[str, str] = {
    "Submitted": QUEUED,
    "Pending": QUEUED,
    "Running": RUNNING,
    "Cancelling": RUNNING,
    "CancelFailed": RUNNING,  # the cancellation failed: the run goes on
    "Success": SUCCEEDED,
    "Failed": FAILED,
    "Cancelled": CANCELLED,
}


@dataclass(frozen=True)
class EmrConfig:
    """The workspace, its queue, the code's OSS folder and the access key that signs every call."""

    endpoint: str
    workspace: str
    access_key_id: str
    access_key_secret: str = field(repr=False)
    code: str = ""  # oss://bucket/folder with clean_large_batch.py and orchestrator.zip
    queue: str = DEFAULT_QUEUE
    release: str = DEFAULT_RELEASE
    submit_parameters: str = ""  # more spark-submit parameters, appended
    security_token: str = field(default="", repr=False)  # an STS token that comes with a temporary key
    run_timeout_seconds: int = 3600

    def __post_init__(self) -> None:
        from orchestrator.clouds.aliyun import endpoint_parts

        endpoint_parts(self.endpoint, ENDPOINT_SETTING, ENDPOINT_EXAMPLE)
        if not self.workspace.strip():
            raise InvalidInput(
                WORKSPACE_SETTING, "is not set; give the EMR Serverless Spark workspace's id (w-...)"
            )
        if not self.code.startswith("oss://") or not self.code[6:].strip("/"):
            raise InvalidInput(
                CODE_SETTING,
                f"{self.code!r} must be the OSS folder holding {NOTEBOOK_FILE} and {PACKAGE_FILE}, such as "
                "oss://my-bucket/data-workbench (deploy/aliyun/emr-code.sh puts them there)",
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> EmrConfig:
        """The aliyun cloud's settings for EMR Serverless Spark; a missing one is named."""
        from orchestrator.clouds.aliyun import AliyunSettings

        found = settings.cloud_settings
        if not isinstance(found, AliyunSettings):
            raise InvalidInput(
                "ORCHESTRATOR_SPARK_RUNNER",
                f"{NAME} runs on Alibaba Cloud; the {settings.profile} profile has no EMR workspace",
            )
        return cls(
            endpoint=found.emr_endpoint,
            workspace=found.emr_workspace,
            access_key_id=found.access_key_id,
            access_key_secret=found.access_key_secret,
            code=found.emr_code,
            queue=found.emr_queue or DEFAULT_QUEUE,
            release=found.emr_release or DEFAULT_RELEASE,
            submit_parameters=found.emr_submit_parameters,
            security_token=found.security_token,
        )

    @property
    def entry_point(self) -> str:
        return f"{self.code.rstrip('/')}/{NOTEBOOK_FILE}"

    @property
    def package(self) -> str:
        return f"{self.code.rstrip('/')}/{PACKAGE_FILE}"


class EmrServerlessRunner:
    """Starts the notebook as a job run, reports its state and cancels it on request."""

    name = NAME

    def __init__(self, config: EmrConfig) -> None:
        self.config = config
        self._client: Any = None

    def submit(self, request: RunRequest) -> RunStatus:
        """Start the notebook with the request's parameters as its command-line options."""
        from alibabacloud_emr_serverless_spark20230808 import models

        cfg = self.config
        arguments = [item for key, value in request.run_parameters().items() for item in (f"--{key}", value)]
        submit_parameters = f"--py-files {cfg.package}"
        if cfg.submit_parameters.strip():
            submit_parameters += f" {cfg.submit_parameters.strip()}"
        body = models.StartJobRunRequest(
            name=f"clean {request.job_id} for {request.user}",
            code_type="PYTHON",
            release_version=cfg.release,
            resource_queue_id=cfg.queue,
            execution_timeout_seconds=cfg.run_timeout_seconds,
            # the service starts one run per token, so a retried request never launches a second one
            client_token=request.job_id,
            job_driver=models.JobDriver(
                spark_submit=models.JobDriverSparkSubmit(
                    entry_point=cfg.entry_point,
                    entry_point_arguments=arguments,
                    spark_submit_parameters=submit_parameters,
                )
            ),
        )
        with self._service_errors(f"start a run of job {request.job_id}"):
            answer = self._api().start_job_run_with_options(cfg.workspace, body, {}, self._runtime())
        run_id = getattr(answer.body, "job_run_id", None)
        if not run_id:
            raise RunnerError(f"{SERVICE} at {cfg.endpoint} started no run: its answer had no jobRunId")
        return RunStatus(state=QUEUED, run_id=str(run_id))

    def status(self, run_id: str) -> RunStatus:
        """The run's state mapped onto ours, with the service's reason and the run's Spark UI."""
        from alibabacloud_emr_serverless_spark20230808 import models

        _check_run_id(run_id)
        with self._service_errors(f"read run {run_id}"):
            answer = self._api().get_job_run_with_options(
                self.config.workspace, run_id, models.GetJobRunRequest(), {}, self._runtime()
            )
        run = answer.body.job_run if answer.body else None
        if run is None or not run.state:
            raise RunnerError(f"{SERVICE} reported no state for run {run_id}")
        state = map_state(SERVICE, run.state, _STATES)
        reason = run.state_change_reason
        message = " ".join(p for p in (getattr(reason, "code", ""), getattr(reason, "message", "")) if p)
        if state == FAILED:
            message = f"{run.state}: {message or f'{SERVICE} gave no reason'}"
        return RunStatus(state=state, run_id=run_id, message=message, url=run.web_ui or None)

    def cancel(self, run_id: str) -> None:
        """Ask the service to cancel the run (asynchronous: it passes Cancelling, then Cancelled)."""
        from alibabacloud_emr_serverless_spark20230808 import models

        _check_run_id(run_id)
        with self._service_errors(f"cancel run {run_id}"):
            self._api().cancel_job_run_with_options(
                self.config.workspace, run_id, models.CancelJobRunRequest(), {}, self._runtime()
            )

    def test_connection(self) -> ConnectionCheck:
        """List the workspace's queues once: the endpoint answers, the key is accepted, the workspace and
        its queue are there. Starts nothing."""
        from alibabacloud_emr_serverless_spark20230808 import models

        cfg = self.config
        try:
            with self._service_errors(f"list the queues of workspace {cfg.workspace}"):
                answer = self._api().list_workspace_queues_with_options(
                    cfg.workspace, models.ListWorkspaceQueuesRequest(), {}, self._runtime()
                )
        except RunnerError as error:
            return ConnectionCheck(False, str(error), getattr(error, "field", None))
        names = [q.queue_name for q in (answer.body.queues or []) if q.queue_name] if answer.body else []
        if cfg.queue not in names:
            return ConnectionCheck(
                False,
                f"workspace {cfg.workspace} has no resource queue {cfg.queue!r} (it has "
                f"{', '.join(names) or 'none'}); change {QUEUE_SETTING}",
                QUEUE_SETTING,
            )
        return ConnectionCheck(
            True, f"{SERVICE} at {cfg.endpoint} answers; workspace {cfg.workspace} has queue {cfg.queue!r}"
        )

    def _api(self) -> Any:
        """The SDK client, made on first use."""
        if self._client is None:
            from alibabacloud_emr_serverless_spark20230808.client import Client

            from orchestrator.clouds.aliyun import openapi_config

            cfg = self.config
            config = openapi_config(
                cfg.access_key_id,
                cfg.access_key_secret,
                cfg.endpoint,
                ENDPOINT_SETTING,
                ENDPOINT_EXAMPLE,
                cfg.security_token,
                connect_timeout=CONNECT_TIMEOUT_MS,
                read_timeout=READ_TIMEOUT_MS,
            )
            self._client = Client(config)
        return self._client

    @staticmethod
    def _runtime() -> Any:
        from darabonba.runtime import RuntimeOptions

        # no automatic retries: a StartJobRun retried is guarded by its client token, the rest are reads
        return RuntimeOptions(
            autoretry=False, connect_timeout=CONNECT_TIMEOUT_MS, read_timeout=READ_TIMEOUT_MS
        )

    @contextmanager
    def _service_errors(self, action: str) -> Iterator[None]:
        """The SDK's errors as RunnerErrors naming the setting to change, never with the SDK's text."""
        from alibabacloud_tea_openapi import exceptions as openapi_errors

        cfg = self.config
        try:
            yield
        except openapi_errors.AlibabaCloudException as exc:
            raise _refusal(exc, cfg, action) from None
        except RunnerError:
            raise
        except Exception as exc:  # the SDK's connection errors: no answer at all
            raise _field_error(
                f"cannot reach {SERVICE} at {cfg.endpoint} ({type(exc).__name__}) when asked to {action}; "
                f"check {ENDPOINT_SETTING} and the network",
                ENDPOINT_SETTING,
            ) from None


def _field_error(message: str, setting: str) -> RunnerError:
    error = RunnerError(message)
    error.field = setting  # type: ignore[attr-defined]
    return error


def _refusal(exc: Any, cfg: EmrConfig, action: str) -> RunnerError:
    """An error answer of the service as the setting to change."""
    status, code = getattr(exc, "status_code", None), str(getattr(exc, "code", "") or "")
    lowered = code.lower()
    where = f"{SERVICE} at {cfg.endpoint}"
    if status in (401, 403) and "accesskey" in lowered:
        return _field_error(
            f"{where} does not know the access key {cfg.access_key_id!r} ({code}) when asked to {action}; "
            "change ORCHESTRATOR_ALIYUN_ACCESS_KEY_ID",
            "ORCHESTRATOR_ALIYUN_ACCESS_KEY_ID",
        )
    if status in (400, 401, 403) and "signature" in lowered:
        return _field_error(
            f"{where} refused the request's signature ({code}) when asked to {action}; check "
            f"ORCHESTRATOR_ALIYUN_ACCESS_KEY_SECRET, the secret of access key {cfg.access_key_id!r}",
            "ORCHESTRATOR_ALIYUN_ACCESS_KEY_SECRET",
        )
    if status in (401, 403) and "token" in lowered:
        return _field_error(
            f"{where} refused the security token ({code}) when asked to {action}; renew "
            "ORCHESTRATOR_ALIYUN_SECURITY_TOKEN with its temporary access key",
            "ORCHESTRATOR_ALIYUN_SECURITY_TOKEN",
        )
    if status == 403:
        return _field_error(
            f"the access key {cfg.access_key_id!r} may not {action} ({code}); grant its RAM user "
            f"access to workspace {cfg.workspace} (AliyunEMRServerlessSparkDeveloperAccess)",
            "ORCHESTRATOR_ALIYUN_ACCESS_KEY_ID",
        )
    if status == 404 and "workspace" in lowered:
        return _field_error(
            f"{where} has no workspace {cfg.workspace!r} ({code}); change {WORKSPACE_SETTING}",
            WORKSPACE_SETTING,
        )
    if "queue" in lowered:
        return _field_error(
            f"{where} refused the resource queue {cfg.queue!r} ({code}) when asked to {action}; "
            f"change {QUEUE_SETTING}",
            QUEUE_SETTING,
        )
    return _field_error(f"{where} could not {action}: {code or status}", ENDPOINT_SETTING)


def _check_run_id(run_id: str) -> None:
    """A job run id is the service's own word (jr-...); an empty one is a caller's mistake."""
    if not isinstance(run_id, str) or not run_id.strip() or "/" in run_id:
        raise InvalidInput("run_id", f"EMR Serverless Spark job run ids look like jr-..., got {run_id!r}")
