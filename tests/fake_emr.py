"""A local Alibaba Cloud E-MapReduce Serverless Spark speaking the part of its OpenAPI (2023-08-08, ROA style,
JSON) the runner uses: StartJobRun ``POST /api/v1/workspaces/{id}/jobRuns``, GetJobRun and CancelJobRun
``GET``/``DELETE /api/v1/workspaces/{id}/jobRuns/{jobRunId}``, and ListWorkspaceQueues ``GET
/api/v1/workspaces/{id}/queues``. Every request must carry a V3 signature (tests/fake_acs.py) made with the
one access key it knows. Refusals are OpenAPI's JSON error {RequestId, Code, Message}.

Without a cluster, each GetJobRun answers the next scripted state (the last one repeats). With an
``OssCluster``, a started run really runs the notebook on local Spark (tests/fake_cluster.py) against the
test's fake OSS: the bucket named by ``--lake_root oss://bucket`` is copied to a folder the run sees as its
lake, and what the run wrote is put back into the bucket when it succeeds, as a Spark job on EMR reads and
writes OSS. The entry point and ``--py-files`` must be objects in the fake OSS, or the run fails as EMR's
does when spark-submit cannot fetch them."""

from __future__ import annotations

import re
import shlex
import threading
import uuid
from pathlib import Path
from typing import Any

from orchestrator.runners import CANCELLED, RUNNING, SUCCEEDED
from tests.fake_acs import AcsKey, Refusal, SignatureCodes, check_acs3
from tests.fake_cluster import LocalCluster
from tests.fake_http import RecordedRequest, RecordingServer
from tests.fake_oss import FakeOss

API = "/api/v1/workspaces"
_RUNS = re.compile(rf"^{API}/([^/]+)/jobRuns$")
_RUN = re.compile(rf"^{API}/([^/]+)/jobRuns/([^/]+)$")
_QUEUES = re.compile(rf"^{API}/([^/]+)/queues$")
# The OpenAPI gateway's codes for a refused key, signature or STS token
EMR_CODES = SignatureCodes()


def _oss_key(url: str) -> tuple[str, str]:
    bucket, _, key = url.removeprefix("oss://").partition("/")
    return bucket, key


class OssCluster:
    """Runs a submitted notebook on local Spark with the fake OSS bucket its ``lake_root`` names mirrored
    to a folder; a run that succeeds has its new and changed files put back into the bucket."""

    def __init__(self, oss: FakeOss, folder: Path) -> None:
        self.oss = oss
        self.folder = folder
        self.local = LocalCluster(folder / "logs")
        self._mirrors: dict[str, tuple[str, str, Path, dict[str, bytes]]] = {}
        self._failed: dict[str, str] = {}
        self._lock = threading.Lock()

    def start(self, key: str, entry_point: str, arguments: list[str], submit_parameters: str) -> None:
        """Fetch the code as spark-submit would, mirror the lake, then start the notebook."""
        py_files = _option(shlex.split(submit_parameters), "--py-files")
        for url in [entry_point, *(py_files.split(",") if py_files else [])]:
            bucket, path = _oss_key(url)
            if path not in self.oss.buckets.get(bucket, {}):
                self._failed[key] = f"File not found: {url}"
                return
        options = dict(zip(arguments[::2], arguments[1::2], strict=True))
        parameters = {name.removeprefix("--"): value for name, value in options.items()}
        bucket, prefix = _oss_key(parameters["lake_root"])
        mirror = self.folder / key
        seen: dict[str, bytes] = {}
        with self.oss.lock:
            objects = dict(self.oss.buckets[bucket])
        for name, stored in objects.items():
            if name.startswith(prefix):
                target = mirror / name[len(prefix) :].lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(stored.data)
                seen[name] = stored.data
        mirror.mkdir(parents=True, exist_ok=True)
        self._mirrors[key] = (bucket, prefix, mirror, seen)
        self.local.start(key, {**parameters, "lake_root": str(mirror)})

    def __contains__(self, key: str) -> bool:
        return key in self._mirrors or key in self._failed

    def state(self, key: str) -> tuple[str, str]:
        """The run's state as EMR names it, and its reason."""
        if key in self._failed:
            return "Failed", self._failed[key]
        status = self.local.status(key)
        if status.state == RUNNING:
            return "Running", ""
        if status.state == SUCCEEDED:
            self._put_back(key)
            return "Success", ""
        if status.state == CANCELLED:
            return "Cancelled", status.message
        return "Failed", status.message

    def cancel(self, key: str) -> None:
        if key in self._mirrors:
            self.local.cancel(key)

    def _put_back(self, key: str) -> None:
        with self._lock:
            bucket, prefix, mirror, seen = self._mirrors[key]
            for file in sorted(mirror.rglob("*")):
                relative = file.relative_to(mirror)
                if not file.is_file() or any(part[0] in "._" for part in relative.parts):
                    continue
                name = f"{prefix.rstrip('/')}/{relative.as_posix()}".lstrip("/")
                data = file.read_bytes()
                if seen.get(name) != data:
                    self.oss.put_object(bucket, name, data)
                    seen[name] = data


def _option(words: list[str], name: str) -> str:
    for index, word in enumerate(words):
        if word == name and index + 1 < len(words):
            return words[index + 1]
        if word.startswith(f"{name}="):
            return word.split("=", 1)[1]
    return ""


class FakeEmrServerless(RecordingServer):
    """One region's EMR Serverless Spark with the workspaces given (id: resource queue names)."""

    def __init__(
        self,
        key: AcsKey,
        workspaces: dict[str, tuple[str, ...]],
        cluster: OssCluster | None = None,
    ) -> None:
        super().__init__(self._answer)
        self.key = key
        self.workspaces = workspaces
        self.cluster = cluster
        self.states: list[dict[str, Any]] = [{"state": "Submitted"}]
        self.runs: dict[str, dict[str, Any]] = {}  # job run id: its StartJobRun body
        self._reads: dict[str, int] = {}
        self._tokens: dict[str, str] = {}  # clientToken: job run id
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()

    def _answer(self, request: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        request_id = str(uuid.uuid4()).upper()
        try:
            check_acs3(request, self.key, EMR_CODES)
            answer = self._route(request)
        except Refusal as refusal:
            body = {"RequestId": request_id, "Code": refusal.code, "Message": refusal.message}
            return refusal.status, body, {"x-acs-request-id": request_id}
        return 200, {**answer, "requestId": request_id}, {"x-acs-request-id": request_id}

    def _route(self, request: RecordedRequest) -> dict[str, Any]:
        for pattern in (_RUNS, _RUN, _QUEUES):
            match = pattern.match(request.path)
            if match:
                workspace = match.group(1)
                if workspace not in self.workspaces:
                    raise Refusal(404, "WorkspaceNotExist", f"The workspace {workspace} does not exist.")
                break
        else:
            raise Refusal(404, "InvalidAction.NotFound", f"'{request.method}' against '{request.path}'")
        if pattern is _QUEUES and request.method == "GET":
            queues = [{"queueName": name, "queueStatus": "RUNNING"} for name in self.workspaces[workspace]]
            return {"queues": queues, "totalCount": len(queues), "maxResults": 20}
        if pattern is _RUNS and request.method == "POST":
            return {"jobRunId": self._start(workspace, request.body or {})}
        if pattern is _RUN:
            run_id = match.group(2)
            if run_id not in self.runs:
                raise Refusal(404, "JobRunNotExist", f"The job run {run_id} does not exist.")
            if request.method == "GET":
                return {"jobRun": self._job_run(workspace, run_id)}
            if request.method == "DELETE":
                self._cancelled.add(run_id)
                if self.cluster is not None and run_id in self.cluster:
                    self.cluster.cancel(run_id)
                return {}
        raise Refusal(404, "InvalidAction.NotFound", f"'{request.method}' against '{request.path}'")

    def _start(self, workspace: str, body: dict[str, Any]) -> str:
        queue = body.get("resourceQueueId")
        if queue not in self.workspaces[workspace]:
            raise Refusal(400, "ResourceQueueNotExist", f"The resource queue {queue} does not exist.")
        driver = (body.get("jobDriver") or {}).get("sparkSubmit") or {}
        if body.get("codeType") != "PYTHON" or not driver.get("entryPoint"):
            raise Refusal(400, "InvalidParameter", "A PYTHON job needs jobDriver.sparkSubmit.entryPoint.")
        with self._lock:
            token = body.get("clientToken")
            if token in self._tokens:
                return self._tokens[token]  # the same request again: the same run
            run_id = f"jr-{uuid.uuid4().hex[:16]}"
            self.runs[run_id] = body
            self._reads[run_id] = 0
            if token:
                self._tokens[token] = run_id
        if self.cluster is not None:
            self.cluster.start(
                run_id,
                driver["entryPoint"],
                list(driver.get("entryPointArguments") or []),
                driver.get("sparkSubmitParameters", ""),
            )
        return run_id

    def _job_run(self, workspace: str, run_id: str) -> dict[str, Any]:
        with self._lock:
            step = min(self._reads[run_id], len(self.states) - 1)
            self._reads[run_id] += 1
        scripted = dict(self.states[step])
        state, reason = scripted.get("state"), scripted.get("reason")
        if self.cluster is not None and run_id in self.cluster:
            state, message = self.cluster.state(run_id)
            reason = {"code": "", "message": message} if message else None
        if run_id in self._cancelled and state not in ("Success", "Failed"):
            state, reason = "Cancelled", {"code": "", "message": "Cancelled by the user."}
        body = self.runs[run_id]
        run = {
            "jobRunId": run_id,
            "workspaceId": workspace,
            "name": body.get("name"),
            "state": state,
            "codeType": body.get("codeType"),
            "resourceQueueId": body.get("resourceQueueId"),
            "releaseVersion": body.get("releaseVersion"),
            "jobDriver": body.get("jobDriver"),
            "webUI": f"{self.url}/sparkui/{workspace}/{run_id}",
            "submitTime": 1_765_000_000_000,
        }
        if reason:
            run["stateChangeReason"] = reason
        return run
