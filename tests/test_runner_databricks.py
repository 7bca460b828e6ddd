"""The Databricks runner drives the real databricks-sdk against a local server speaking the Jobs API 2.2."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from orchestrator.errors import InvalidInput
from orchestrator.runners import (
    CANCELLED,
    FAILED,
    RUNNING,
    SUCCEEDED,
    RunnerError,
    RunRequest,
    RunTimeout,
    wait_for,
)
from orchestrator.runners.databricks import DatabricksConfig, DatabricksRunner
from tests.fake_databricks import API, FakeDatabricks
from tests.fake_http import closed_port

TOKEN = "dapi-secret-0123456789abcdef"
REQUEST = RunRequest(job_id="c-42", user="alice", parent_job_id="g-41", parameters={"seed": "7"})


@pytest.fixture
def workspace() -> Iterator[FakeDatabricks]:
    with FakeDatabricks(TOKEN) as server:
        yield server


def runner_for(host: str, token: str = TOKEN, **overrides: object) -> DatabricksRunner:
    settings = {"http_timeout_seconds": 2.0, "retry_timeout_seconds": 1, **overrides}
    return DatabricksRunner(DatabricksConfig(host=host, token=token, **settings))


class FakeClock:
    """Time that passes only when the wait sleeps, so polling is exact and instant."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def poll(runner: DatabricksRunner, run_id: str, timeout: float = 600) -> object:
    clock = FakeClock()
    return wait_for(runner, run_id, timeout=timeout, poll_interval=10, clock=clock, sleep=clock.sleep)


def test_submit_sends_the_notebook_with_the_job_parameters_and_polls_to_success(workspace):
    workspace.states = [
        {"life_cycle_state": "PENDING", "state_message": "Waiting for cluster"},
        {"life_cycle_state": "RUNNING"},
        {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS", "state_message": ""},
    ]
    runner = runner_for(workspace.url, notebook_path="/Workspace/Shared/wb/clean_large_batch")

    started = runner.submit(REQUEST)
    final = poll(runner, started.run_id)

    assert started.run_id == "7001"
    assert (final.state, final.run_id) == (SUCCEEDED, "7001")
    assert final.url == f"{workspace.url}/#job/0/run/7001"
    [submit] = workspace.received(f"{API}/submit")
    assert submit.method == "POST"
    assert submit.headers["authorization"] == f"Bearer {TOKEN}"
    [task] = submit.body["tasks"]
    assert task["notebook_task"] == {
        "notebook_path": "/Workspace/Shared/wb/clean_large_batch",
        "base_parameters": {"job_id": "c-42", "user": "alice", "parent_job_id": "g-41", "seed": "7"},
        "source": "WORKSPACE",
    }
    assert task["new_cluster"] == {
        "spark_version": "15.4.x-scala2.12",
        "node_type_id": "Standard_DS3_v2",
        "num_workers": 2,
    }
    assert submit.body["idempotency_token"] == "c-42"
    gets = workspace.received(f"{API}/get")
    assert [g.query["run_id"] for g in gets] == [["7001"]] * 3


def test_an_existing_cluster_replaces_the_new_cluster_spec(workspace):
    runner_for(workspace.url, existing_cluster_id="0601-abc").submit(REQUEST)

    [task] = workspace.received(f"{API}/submit")[0].body["tasks"]
    assert task["existing_cluster_id"] == "0601-abc"
    assert "new_cluster" not in task


def test_a_run_terminated_with_result_failed_is_a_failed_job_carrying_the_notebook_error(workspace):
    workspace.states = [{"life_cycle_state": "TERMINATED", "result_state": "FAILED", "state_message": ""}]
    workspace.task_states = [
        {
            "life_cycle_state": "TERMINATED",
            "result_state": "FAILED",
            "state_message": "NameError: name 'df' is not defined",
        }
    ]
    runner = runner_for(workspace.url)

    final = poll(runner, runner.submit(REQUEST).run_id)

    assert final.state == FAILED
    assert final.message == "FAILED: NameError: name 'df' is not defined"


def test_internal_error_and_timedout_runs_fail_with_their_reason(workspace):
    workspace.states = [
        {"life_cycle_state": "TERMINATED", "result_state": "TIMEDOUT", "state_message": "Run timed out."}
    ]
    runner = runner_for(workspace.url)

    final = runner.status(runner.submit(REQUEST).run_id)

    assert (final.state, final.message) == (FAILED, "TIMEDOUT: Run timed out.")


def test_cancel_posts_the_run_id_and_the_run_ends_cancelled(workspace):
    workspace.states = [{"life_cycle_state": "RUNNING"}]
    runner = runner_for(workspace.url)
    run_id = runner.submit(REQUEST).run_id
    assert runner.status(run_id).state == RUNNING

    runner.cancel(run_id)

    [cancel] = workspace.received(f"{API}/cancel")
    assert cancel.body == {"run_id": 7001}
    assert runner.status(run_id).state == CANCELLED


def test_waiting_past_the_timeout_names_the_run_and_the_seconds_and_leaves_it_running(workspace):
    workspace.states = [{"life_cycle_state": "RUNNING"}]
    runner = runner_for(workspace.url)
    run_id = runner.submit(REQUEST).run_id

    with pytest.raises(RunTimeout, match=r"run 7001 was still RUNNING after 30 s") as caught:
        poll(runner, run_id, timeout=30)

    assert caught.value.last.state == RUNNING
    assert len(workspace.received(f"{API}/get")) == 4  # at 0, 10, 20 and 30 s
    assert workspace.received(f"{API}/cancel") == []


def test_a_server_slower_than_the_http_timeout_fails_with_a_clear_message(workspace):
    workspace.delay_seconds = 5
    runner = runner_for(workspace.url, http_timeout_seconds=0.3, retry_timeout_seconds=1)

    started = time.monotonic()
    with pytest.raises(RunnerError, match=r"unreachable \(no answer within 0.3 s"):
        runner.submit(REQUEST)

    assert time.monotonic() - started < 15


@pytest.mark.parametrize(
    ("token", "forced", "expected"),
    [
        ("dapi-wrong-token-999", None, r"rejected the token \(401\).*set DATABRICKS_TOKEN"),
        (TOKEN, 401, r"rejected the token \(401\)"),
        (TOKEN, 403, r"refused to submit job c-42 \(403: User cannot submit runs\..*\); grant"),
    ],
)
def test_refused_credentials_give_a_clear_error_without_the_token(workspace, token, forced, expected):
    workspace.force_status = forced
    runner = runner_for(workspace.url, token=token)

    with pytest.raises(RunnerError, match=expected) as caught:
        runner.submit(REQUEST)

    assert token not in str(caught.value)
    assert token not in repr(runner.config)
    assert len(workspace.received(f"{API}/submit")) == 1  # refused, not retried


def test_a_server_that_is_down_fails_within_seconds_naming_the_host():
    host = f"http://127.0.0.1:{closed_port()}"
    runner = runner_for(host)

    started = time.monotonic()
    with pytest.raises(
        RunnerError, match=r"unreachable \(could not connect.*check DATABRICKS_HOST"
    ) as caught:
        runner.submit(REQUEST)

    assert time.monotonic() - started < 15
    assert host in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_unknown_and_malformed_run_ids_are_reported(workspace):
    runner = runner_for(workspace.url)

    with pytest.raises(RunnerError, match="Run 9999 does not exist"):
        runner.status("9999")
    with pytest.raises(InvalidInput, match="run_id: Databricks run ids are numbers"):
        runner.status("abc")
    assert [r.query["run_id"] for r in workspace.received(API)] == [["9999"]]


def test_config_from_settings_names_what_is_missing_or_malformed():
    settings = {"DATABRICKS_HOST": "https://adb-1.azuredatabricks.net", "DATABRICKS_TOKEN": TOKEN}
    config = DatabricksConfig.from_mapping({**settings, "DATABRICKS_NUM_WORKERS": "4"})
    assert (config.host, config.num_workers, config.existing_cluster_id) == (
        settings["DATABRICKS_HOST"],
        4,
        None,
    )
    assert TOKEN not in repr(config)

    with pytest.raises(InvalidInput, match="DATABRICKS_TOKEN: is not set"):
        DatabricksConfig.from_mapping({"DATABRICKS_HOST": settings["DATABRICKS_HOST"]})
    with pytest.raises(InvalidInput, match="DATABRICKS_RETRY_TIMEOUT_SECONDS: must be a number, got 'soon'"):
        DatabricksConfig.from_mapping({**settings, "DATABRICKS_RETRY_TIMEOUT_SECONDS": "soon"})
    with pytest.raises(InvalidInput, match="DATABRICKS_RETRY_TIMEOUT_SECONDS: must be a whole number"):
        DatabricksConfig.from_mapping({**settings, "DATABRICKS_RETRY_TIMEOUT_SECONDS": "0.5"})
    with pytest.raises(InvalidInput, match="DATABRICKS_NOTEBOOK_PATH: must be an absolute path"):
        DatabricksConfig.from_mapping({**settings, "DATABRICKS_NOTEBOOK_PATH": "notebooks/clean"})


def test_a_request_cannot_override_the_identifiers_the_run_passes_itself():
    with pytest.raises(InvalidInput, match="parameters: 'job_id' is set from the request itself"):
        RunRequest(job_id="c-1", user="alice", parent_job_id="g-1", parameters={"job_id": "other"})
    with pytest.raises(InvalidInput, match="user: must be a non-empty string"):
        RunRequest(job_id="c-1", user=" ", parent_job_id="g-1")


def test_the_connection_test_reads_the_notebook_and_names_what_to_fix(workspace):
    notebook = DatabricksConfig(host="https://x", token=TOKEN).notebook_path
    runner = runner_for(workspace.url)
    missing = runner.test_connection()
    assert (missing.ok, missing.field) == (False, "DATABRICKS_NOTEBOOK_PATH")
    assert f"has no notebook {notebook}; import notebooks/clean_large_batch.py" in missing.message

    workspace.notebooks.add(notebook)
    check = runner.test_connection()
    assert (
        check.ok and check.message == f"Databricks at {workspace.url} answers; notebook {notebook} is there"
    )
    asked = workspace.received("/api/2.0/workspace/get-status")
    assert [r.query["path"] for r in asked] == [[notebook], [notebook]]
    assert not workspace.received(API)  # a connection test starts no run

    refused = runner_for(workspace.url, token="dapi-wrong-token-999").test_connection()
    assert not refused.ok and "rejected the token (401)" in refused.message
    assert "dapi-wrong-token-999" not in refused.message
    down = runner_for(f"http://127.0.0.1:{closed_port()}").test_connection()
    assert not down.ok and "is unreachable" in down.message and "DATABRICKS_HOST" in down.message
