"""A local Databricks workspace speaking the subset of its REST API the runner uses: Jobs API 2.2 runs/submit,
get and cancel, and Workspace API 2.0 get-status for its notebooks. With a cluster, a submitted notebook task
runs for real and the run's state follows it."""

from __future__ import annotations

import threading
from typing import Any

from orchestrator.runners import CANCELLED, RUNNING, SUCCEEDED
from tests.fake_cluster import LocalCluster
from tests.fake_http import RecordedRequest, RecordingServer

API = "/api/2.2/jobs/runs"


class FakeDatabricks(RecordingServer):
    """Accepts one bearer token; each runs/get answers the next scripted state (the last one repeats)."""

    def __init__(self, token: str, cluster: LocalCluster | None = None) -> None:
        super().__init__(self._answer)
        self.cluster = cluster
        self.token = token
        self.notebooks: set[str] = set()  # workspace paths that hold a notebook
        self.force_status: int | None = None  # 401 or 403 for every API call
        self.states: list[dict[str, Any]] = [{"life_cycle_state": "PENDING"}]
        self.task_states: list[dict[str, Any]] = []  # parallel to states; a task's own state, if any
        self._runs: dict[int, int] = {}  # run id -> how many times it has been read
        self._cancelled: set[int] = set()
        self._next_id = 7001
        self._runs_lock = threading.Lock()

    def _answer(self, request: RecordedRequest) -> tuple[int, Any]:
        if not request.path.startswith("/api/"):
            return 404, {"error_code": "NOT_FOUND", "message": f"No API found for {request.path}"}
        if self.force_status == 403:
            return 403, {"error_code": "PERMISSION_DENIED", "message": "User cannot submit runs."}
        if self.force_status == 401 or request.headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"error_code": "UNAUTHENTICATED", "message": "Invalid access token."}
        if request.method == "GET" and request.path == "/api/2.0/workspace/get-status":
            path = request.query["path"][0]
            if path not in self.notebooks:
                return 404, {
                    "error_code": "RESOURCE_DOES_NOT_EXIST",
                    "message": f"Path ({path}) doesn't exist.",
                }
            return 200, {"object_type": "NOTEBOOK", "path": path, "language": "PYTHON", "object_id": 1}
        if request.method == "POST" and request.path == f"{API}/submit":
            with self._runs_lock:
                run_id, self._next_id = self._next_id, self._next_id + 1
                self._runs[run_id] = 0
            if self.cluster is not None:
                self.cluster.start(str(run_id), request.body["tasks"][0]["notebook_task"]["base_parameters"])
            return 200, {"run_id": run_id}
        if request.method == "GET" and request.path == f"{API}/get":
            return self._get(int(request.query["run_id"][0]))
        if request.method == "POST" and request.path == f"{API}/cancel":
            run_id = int(request.body["run_id"])
            if run_id not in self._runs:
                return 400, _no_such_run(run_id)
            self._cancelled.add(run_id)
            if self.cluster is not None and str(run_id) in self.cluster:
                self.cluster.cancel(str(run_id))
            return 200, {}
        return 404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"No API found for {request.path}"}

    def _get(self, run_id: int) -> tuple[int, Any]:
        with self._runs_lock:
            if run_id not in self._runs:
                return 400, _no_such_run(run_id)
            step = min(self._runs[run_id], len(self.states) - 1)
            self._runs[run_id] += 1
        state = dict(self.states[step])
        if self.cluster is not None and str(run_id) in self.cluster:
            state = self._cluster_state(str(run_id))
        if run_id in self._cancelled:
            state = {
                "life_cycle_state": "TERMINATED",
                "result_state": "CANCELED",
                "state_message": "Run cancelled.",
            }
        run: dict[str, Any] = {
            "run_id": run_id,
            "run_page_url": f"{self.url}/#job/0/run/{run_id}",
            "state": state,
        }
        if step < len(self.task_states):
            run["tasks"] = [
                {"task_key": "clean_large_batch", "run_id": run_id + 1, "state": self.task_states[step]}
            ]
        return 200, run

    def _cluster_state(self, run_id: str) -> dict[str, str]:
        """The notebook's run as Databricks reports one: running, or terminated with its result."""
        status = self.cluster.status(run_id)
        if status.state == RUNNING:
            return {"life_cycle_state": "RUNNING", "state_message": "In run"}
        result = {SUCCEEDED: "SUCCESS", CANCELLED: "CANCELED"}.get(status.state, "FAILED")
        return {"life_cycle_state": "TERMINATED", "result_state": result, "state_message": status.message}


def _no_such_run(run_id: int) -> dict[str, str]:
    return {"error_code": "INVALID_PARAMETER_VALUE", "message": f"Run {run_id} does not exist."}
