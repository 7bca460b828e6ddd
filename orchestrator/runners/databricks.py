"""Runs the large-batch cleaning notebook as a one-time Databricks job run (Jobs API 2.2)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import DatabricksError, NotFound, PermissionDenied, Unauthenticated
from databricks.sdk.service.compute import ClusterSpec
from databricks.sdk.service.jobs import NotebookTask, Run, Source, SubmitTask

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
    number_setting,
    text_setting,
)

NOTEBOOK_TASK_KEY = "clean_large_batch"

# Life-cycle states that are not TERMINATED; TERMINATED is resolved through the result state.
_LIFE_CYCLE: dict[str, str] = {
    "QUEUED": QUEUED,
    "PENDING": QUEUED,
    "BLOCKED": QUEUED,
    "WAITING_FOR_RETRY": QUEUED,
    "RUNNING": RUNNING,
    "TERMINATING": RUNNING,
    "SKIPPED": FAILED,
    "INTERNAL_ERROR": FAILED,
}
_RESULT: dict[str, str] = {
    "SUCCESS": SUCCEEDED,
    "CANCELED": CANCELLED,
    "UPSTREAM_CANCELED": CANCELLED,
    "FAILED": FAILED,
    "TIMEDOUT": FAILED,
    "SUCCESS_WITH_FAILURES": FAILED,
    "UPSTREAM_FAILED": FAILED,
    "MAXIMUM_CONCURRENT_RUNS_REACHED": FAILED,
    "EXCLUDED": FAILED,
    "DISABLED": FAILED,
}


@dataclass(frozen=True)
class DatabricksConfig:
    """Where the workspace is, how to reach it, and which notebook runs on which cluster."""

    host: str
    token: str = field(repr=False)
    notebook_path: str = "/Workspace/Shared/data-workbench/notebooks/clean_large_batch"
    existing_cluster_id: str | None = None
    spark_version: str = "15.4.x-scala2.12"
    node_type_id: str = "Standard_DS3_v2"
    num_workers: int = 2
    run_timeout_seconds: int = 3600
    http_timeout_seconds: float = 10.0
    retry_timeout_seconds: int = 5  # whole seconds: the SDK truncates, and treats 0 as its 300 s default

    def __post_init__(self) -> None:
        if not self.host.strip():
            raise InvalidInput("DATABRICKS_HOST", "is empty; set it to the workspace URL (https://adb-….net)")
        if not self.token.strip():
            raise InvalidInput("DATABRICKS_TOKEN", "is empty; set it to a personal access token")
        if self.retry_timeout_seconds < 1 or self.retry_timeout_seconds != int(self.retry_timeout_seconds):
            raise InvalidInput(
                "DATABRICKS_RETRY_TIMEOUT_SECONDS",
                f"must be a whole number of seconds, at least 1, got {self.retry_timeout_seconds!r}",
            )
        if not self.notebook_path.startswith("/"):
            raise InvalidInput(
                "DATABRICKS_NOTEBOOK_PATH", f"must be an absolute path, got {self.notebook_path!r}"
            )

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> DatabricksConfig:
        """Build from environment-style settings (DATABRICKS_HOST, DATABRICKS_TOKEN, …)."""
        return cls(
            host=text_setting(env, "DATABRICKS_HOST"),
            token=text_setting(env, "DATABRICKS_TOKEN"),
            notebook_path=text_setting(env, "DATABRICKS_NOTEBOOK_PATH", cls.notebook_path),
            existing_cluster_id=text_setting(env, "DATABRICKS_CLUSTER_ID", "") or None,
            spark_version=text_setting(env, "DATABRICKS_SPARK_VERSION", cls.spark_version),
            node_type_id=text_setting(env, "DATABRICKS_NODE_TYPE_ID", cls.node_type_id),
            num_workers=int(number_setting(env, "DATABRICKS_NUM_WORKERS", cls.num_workers)),
            run_timeout_seconds=int(
                number_setting(env, "DATABRICKS_RUN_TIMEOUT_SECONDS", cls.run_timeout_seconds)
            ),
            http_timeout_seconds=number_setting(
                env, "DATABRICKS_HTTP_TIMEOUT_SECONDS", cls.http_timeout_seconds
            ),
            retry_timeout_seconds=number_setting(
                env, "DATABRICKS_RETRY_TIMEOUT_SECONDS", cls.retry_timeout_seconds
            ),  # a fraction is refused by the check above rather than silently truncated
        )


class DatabricksRunner:
    """Submits the cleaning notebook as a one-time run, reports its state and cancels it on request."""

    name = "databricks"

    def __init__(self, config: DatabricksConfig) -> None:
        self.config = config
        self._client: WorkspaceClient | None = None

    def submit(self, request: RunRequest) -> RunStatus:
        """Start the notebook with the request's parameters on the configured cluster."""
        cfg = self.config
        cluster = (
            {"existing_cluster_id": cfg.existing_cluster_id}
            if cfg.existing_cluster_id
            else {
                "new_cluster": ClusterSpec(
                    spark_version=cfg.spark_version,
                    node_type_id=cfg.node_type_id,
                    num_workers=cfg.num_workers,
                )
            }
        )
        task = SubmitTask(
            task_key=NOTEBOOK_TASK_KEY,
            notebook_task=NotebookTask(
                notebook_path=cfg.notebook_path,
                base_parameters=request.run_parameters(),
                source=Source.WORKSPACE,
            ),
            **cluster,
        )
        with self._service_errors(f"submit job {request.job_id}"):
            waiter = self._workspace().jobs.submit(
                run_name=f"clean {request.job_id} for {request.user}",
                tasks=[task],
                timeout_seconds=cfg.run_timeout_seconds,
                # Databricks starts at most one run per token, so an SDK retry never launches a second one.
                idempotency_token=request.job_id,
            )
        return RunStatus(state=QUEUED, run_id=str(waiter.run_id))

    def status(self, run_id: str) -> RunStatus:
        """Map the run's life-cycle and result states onto ours, keeping Databricks' message."""
        number = _numeric(run_id)
        with self._service_errors(f"read run {run_id}"):
            run = self._workspace().jobs.get_run(number)
        return _status_of(run, run_id)

    def cancel(self, run_id: str) -> None:
        """Ask Databricks to cancel the run (asynchronous: the run then terminates as CANCELED)."""
        number = _numeric(run_id)
        with self._service_errors(f"cancel run {run_id}"):
            self._workspace().jobs.cancel_run(number)

    def test_connection(self) -> ConnectionCheck:
        """Read the notebook's status once: the host answers, the token is accepted, the notebook is there."""
        host, path = self.config.host, self.config.notebook_path
        try:
            with self._service_errors(f"read notebook {path}"):
                try:
                    info = self._workspace().workspace.get_status(path)
                except NotFound:
                    return ConnectionCheck(
                        False,
                        f"Databricks at {host} has no notebook {path}; import notebooks/clean_large_batch.py "
                        "there or change DATABRICKS_NOTEBOOK_PATH",
                        "DATABRICKS_NOTEBOOK_PATH",
                    )
        except RunnerError as error:
            return ConnectionCheck(False, str(error))
        kind = info.object_type.value.lower() if info.object_type else "object"
        return ConnectionCheck(True, f"Databricks at {host} answers; {kind} {path} is there")

    def _workspace(self) -> WorkspaceClient:
        """The SDK client, made on first use, with short retry and HTTP timeouts (the SDK waits minutes)."""
        if self._client is None:
            cfg = self.config
            try:
                sdk_config = Config(
                    host=cfg.host,
                    token=cfg.token,
                    auth_type="pat",
                    http_timeout_seconds=cfg.http_timeout_seconds,
                    retry_timeout_seconds=cfg.retry_timeout_seconds,
                )
            except ValueError as err:  # the SDK refuses a malformed host; its message masks the token
                raise RunnerError(f"DATABRICKS_HOST or DATABRICKS_TOKEN is not usable: {err}") from err
            self._client = WorkspaceClient(config=sdk_config)
        return self._client

    @contextmanager
    def _service_errors(self, action: str) -> Iterator[None]:
        """Turn the SDK's errors into RunnerErrors that say what to change (and never carry the token)."""
        host = self.config.host
        try:
            yield
        except Unauthenticated as err:
            raise RunnerError(
                f"Databricks at {host} rejected the token (401) when asked to {action}; "
                "set DATABRICKS_TOKEN to a valid personal access token"
            ) from err
        except PermissionDenied as err:
            raise RunnerError(
                f"Databricks at {host} refused to {action} (403: {err}); grant the token's user "
                "permission to run jobs and read the notebook"
            ) from err
        except DatabricksError as err:
            raise RunnerError(f"Databricks at {host} could not {action}: {err}") from err
        except (TimeoutError, requests.RequestException) as err:
            cause = err.__cause__ or err
            reason = (
                f"no answer within {self.config.http_timeout_seconds:g} s"
                if isinstance(cause, requests.Timeout)
                else "could not connect"
            )
            raise RunnerError(
                f"Databricks at {host} is unreachable ({reason}, gave up after retrying for "
                f"{self.config.retry_timeout_seconds:g} s) when asked to {action}; "
                "check DATABRICKS_HOST and the network"
            ) from err


def _numeric(run_id: str) -> int:
    """Databricks run ids are integers; anything else is a caller's mistake, caught before any request."""
    try:
        return int(run_id)
    except ValueError:
        raise InvalidInput("run_id", f"Databricks run ids are numbers, got {run_id!r}") from None


def _status_of(run: Run, run_id: str) -> RunStatus:
    """Our status of a Databricks run: a TERMINATED run is judged by its result state."""
    life = run.state.life_cycle_state if run.state else None
    result = run.state.result_state if run.state else None
    if life is not None and life.value == "TERMINATED":
        outcome = result.value if result else "no result state"
        state = map_state("Databricks", outcome, _RESULT)
    else:
        outcome = life.value if life else "no life-cycle state"
        state = map_state("Databricks", outcome, _LIFE_CYCLE)
    message = _message_of(run)
    if state == FAILED:
        message = f"{outcome}: {message or 'Databricks gave no message'}"
    return RunStatus(state=state, run_id=run_id, message=message, url=run.run_page_url)


def _message_of(run: Run) -> str:
    """Databricks' own words: the run's state message, else a task's, else the termination details."""
    candidates = [run.state.state_message if run.state else None]
    candidates += [task.state.state_message for task in run.tasks or [] if task.state]
    details = run.status.termination_details if run.status else None
    candidates.append(details.message if details else None)
    return next((text for text in candidates if text), "")
