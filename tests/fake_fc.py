"""A local Alibaba Cloud Function Compute (FC 3.0) speaking the part of its REST API the workbench uses:
InvokeFunction, ``POST /2023-03-30/functions/{name}/invocations`` (query ``qualifier``; headers
``x-fc-invocation-type``, ``x-fc-log-type``). Every request must carry a V3 signature (ACS3-HMAC-SHA256, the
one alibabacloud-fc20230330 sends through alibabacloud-tea-openapi) made with the one access key it knows,
checked here from Alibaba's documented algorithm, not the SDK's code. Answers are what FC sends: the
function's output with ``x-fc-request-id``, an unhandled error as
``x-fc-error-type: UnhandledInvocationError`` with FC's errorMessage/errorType/stackTrace body, and refusals
as FC 3.0's JSON error {Code, Message, RequestId} (InvalidAccessKeyID, SignatureNotMatch, FunctionNotFound,
AliasNotFound...).

A function runs as FC's Python runtime runs it: in a process of its own, started in the code folder, with
only the function's environment variables, its handler named as in deploy/aliyun/s.yaml and called with the
event's bytes and a context (request_id, function, region, account_id); the packages that
deploy/aliyun/package.sh leaves out of the code package (left-out.txt) cannot be imported there. ``fire``
runs a timer trigger's event as FC's timer does. Run as ``python -m tests.fake_fc RESULT HANDLER CONTEXT
ABSENT`` this module is that runtime.
"""

from __future__ import annotations

import base64
import fnmatch
import importlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tempfile
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

import yaml

from tests.fake_acs import AcsKey, Refusal, SignatureCodes, check_acs3
from tests.fake_http import RecordedRequest, RecordingServer

REPOSITORY = Path(__file__).resolve().parents[1]
S_YAML = REPOSITORY / "deploy" / "aliyun" / "s.yaml"
LEFT_OUT = S_YAML.parent / "left-out.txt"
API_VERSION = "2023-03-30"
_INVOKE = re.compile(rf"^/{API_VERSION}/functions/([^/]+)/invocations$")
_ENV_REFERENCE = re.compile(r"^\$\{env\('([A-Z0-9_]+)'\)\}$")
# FC 3.0's own codes for a refused key or signature
FC_CODES = SignatureCodes(unknown_key="InvalidAccessKeyID", bad_signature="SignatureNotMatch")


@dataclass
class Function:
    """A deployed function: its handler, its environment and its timer triggers (name: payload)."""

    name: str
    handler: str
    environment: dict[str, str]
    timers: dict[str, str] = field(default_factory=dict)
    cron: dict[str, str] = field(default_factory=dict)  # timer name: cronExpression
    timeout_s: int = 600
    qualifiers: tuple[str, ...] = ("LATEST",)
    left_out: tuple[str, ...] = ()  # distributions (or patterns) not in the code package


def function_from_s_yaml(source: Mapping[str, str], path: Path = S_YAML, **overrides: str) -> Function:
    """The function that ``path`` deploys, its ``${env('NAME')}`` values read from ``source`` as
    ``s deploy`` reads them from the deploying shell (unset: empty), then ``overrides``."""
    document = yaml.safe_load(path.read_text())
    (resource,) = document["resources"].values()
    props = resource["props"]
    environment = {}
    for name, value in props.get("environmentVariables", {}).items():
        reference = _ENV_REFERENCE.match(str(value))
        environment[name] = source.get(reference.group(1), "") if reference else str(value)
    timers = [t for t in props.get("triggers", []) if t["triggerType"] == "timer"]
    return Function(
        name=props["functionName"],
        handler=props["handler"],
        environment={**environment, **overrides},
        timers={t["triggerName"]: t["triggerConfig"].get("payload", "") for t in timers},
        cron={t["triggerName"]: t["triggerConfig"]["cronExpression"] for t in timers},
        timeout_s=int(props.get("timeout", 600)),
        left_out=tuple(
            line.strip() for line in LEFT_OUT.read_text().splitlines() if line.strip() and line[0] != "#"
        ),
    )


def absent_modules(left_out: tuple[str, ...]) -> list[str]:
    """The top-level modules that only distributions matching ``left_out`` provide."""
    absent = []
    for module, distributions in importlib.metadata.packages_distributions().items():
        names = [name.lower() for name in distributions]
        if names and all(any(fnmatch.fnmatchcase(n, p) for p in left_out) for n in names):
            absent.append(module)
    return sorted(absent)


@dataclass(frozen=True)
class Invocation:
    """One run of a function: what started it and what it answered."""

    function: str
    request_id: str
    event: bytes
    ok: bool
    output: bytes  # the handler's return value, or FC's error body
    log: str  # what the function wrote (stdout and stderr), as FC's logs keep it


class FakeFunctionCompute:
    """One account's FC 3.0 endpoint with the functions given, reached with one access key."""

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        functions: tuple[Function, ...],
        region: str = "cn-test",
        security_token: str | None = None,
    ) -> None:
        self.access_key_id = access_key_id
        self.key = AcsKey(access_key_id, access_key_secret, security_token)
        self.region = region
        self.account_id = "1234567890123456"
        self.functions = {function.name: function for function in functions}
        self.invocations: list[Invocation] = []
        self._server = RecordingServer(self._respond)

    @property
    def endpoint(self) -> str:
        return self._server.url

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._server.received()

    def __enter__(self) -> FakeFunctionCompute:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)

    def _check_signature(self, request: RecordedRequest) -> None:
        check_acs3(request, self.key, FC_CODES)

    # -- InvokeFunction ---------------------------------------------------------------------------------

    def _respond(self, request: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        request_id = f"1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}"
        try:
            self._check_signature(request)
            match = _INVOKE.match(request.path)
            if request.method != "POST" or match is None:
                raise Refusal(400, "PathNotSupported", f"'{request.method}' against '{request.path}'")
            name = unquote(match.group(1))
            function = self.functions.get(name)
            if function is None:
                raise Refusal(404, "FunctionNotFound", f"function '{name}' does not exist")
            qualifier = (request.query.get("qualifier") or ["LATEST"])[0]
            if qualifier not in function.qualifiers:
                raise Refusal(404, "AliasNotFound", f"alias '{qualifier}' of '{name}' does not exist")
            kind = request.headers.get("x-fc-invocation-type", "Sync")
            if kind != "Sync":
                raise Refusal(400, "InvalidArgument", "only Sync invocations are served here")
        except Refusal as refusal:
            body = {"Code": refusal.code, "Message": refusal.message, "RequestId": request_id}
            return refusal.status, body, {"x-fc-request-id": request_id}
        invocation = self.run(function, request.raw, request_id)
        headers = {"x-fc-request-id": request_id, "x-fc-invocation-function-version": "LATEST"}
        if not invocation.ok:
            headers["x-fc-error-type"] = "UnhandledInvocationError"
        if request.headers.get("x-fc-log-type") == "Tail":
            headers["x-fc-log-result"] = base64.b64encode(invocation.log.encode()[-4096:]).decode()
        return 200, invocation.output, headers

    def fire(self, function_name: str, trigger_name: str) -> Invocation:
        """Run a timer trigger now, as FC's timer does: the event names the trigger, its time and payload."""
        function = self.functions[function_name]
        event = {
            "triggerTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "triggerName": trigger_name,
            "payload": function.timers[trigger_name],
        }
        return self.run(function, json.dumps(event).encode(), f"1-{uuid.uuid4().hex[:8]}")

    def run(self, function: Function, event: bytes, request_id: str) -> Invocation:
        """The handler in a process of its own, with the function's environment alone."""
        context = {
            "request_id": request_id,
            "function": {"name": function.name, "handler": function.handler, "timeout": function.timeout_s},
            "region": self.region,
            "account_id": self.account_id,
        }
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": tempfile.gettempdir(),
            "PYTHONPATH": str(REPOSITORY),  # the code folder, as FC's runtime puts /code on sys.path
            **function.environment,
        }
        with tempfile.TemporaryDirectory() as folder:
            result = Path(folder) / "result"
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "tests.fake_fc",
                    str(result),
                    function.handler,
                    json.dumps(context),
                    json.dumps(absent_modules(function.left_out)),
                ],
                input=event,
                capture_output=True,
                env=environment,
                cwd=REPOSITORY,
                timeout=function.timeout_s,
            )
            output = result.read_bytes() if result.exists() else b""
        log = (done.stdout + done.stderr).decode("utf-8", "replace")
        if done.returncode != 0 and not output:  # the runtime itself failed: FC reports it the same way
            message = log.strip().splitlines()[-1] if log.strip() else "the function exited"
            output = json.dumps({"errorMessage": message, "errorType": "RuntimeError"}).encode()
        invocation = Invocation(function.name, request_id, event, done.returncode == 0, output, log)
        self.invocations.append(invocation)
        return invocation


class _Absent:
    """A meta path finder for modules that are not in the code package."""

    def __init__(self, modules: list[str]) -> None:
        self.modules = set(modules)

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.partition(".")[0] in self.modules:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the code package)", name=name)


def _runtime(result: str, handler: str, context_json: str, absent_json: str = "[]") -> int:
    """FC's Python runtime, in brief: import the handler, call it with the event's bytes and a context, and
    keep what it returned (str or bytes) or FC's error body for an unhandled exception."""
    sys.meta_path.insert(0, _Absent(json.loads(absent_json)))
    context = json.loads(context_json)
    context["function"] = SimpleNamespace(**context["function"])
    event = sys.stdin.buffer.read()
    module, _, name = handler.rpartition(".")
    try:
        answer = getattr(importlib.import_module(module), name)(event, SimpleNamespace(**context))
    except Exception as exc:
        error = {
            "errorMessage": str(exc),
            "errorType": type(exc).__name__,
            "stackTrace": [line.strip() for line in traceback.format_tb(exc.__traceback__)],
        }
        traceback.print_exc()
        Path(result).write_bytes(json.dumps(error).encode())
        return 1
    Path(result).write_bytes(answer if isinstance(answer, bytes) else str(answer).encode())
    return 0


if __name__ == "__main__":
    sys.exit(_runtime(*sys.argv[1:5]))
