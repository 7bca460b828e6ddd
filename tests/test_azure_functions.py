"""The small path on Azure Functions: function_app.py's functions called in-process with the azure-functions
types (the timer's TimerRequest, func.HttpRequest) against real components (a data directory with a small job
queued, the worker's own drain, Azurite for the azure profile's queues and lake); the workbench's invoke
against a local server that runs the real HTTP trigger as the Functions host would (function key checked);
and the worker and Clean now leaving the azure cloud's small queue to the function."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest
from azure.storage.blob import BlobServiceClient

from orchestrator import worker
from orchestrator.cli import main
from orchestrator.clouds import CLOUDS, SMALL_RUNNERS
from orchestrator.clouds.azure.functions import client
from orchestrator.config import SECRETS_FILE_ENV, get_settings
from orchestrator.errors import InvalidInput, ServiceError
from orchestrator.generation.spec import GenerationSpec
from orchestrator.jobs import routing
from orchestrator.jobs.store import JobStore
from orchestrator.queues import open_queue
from orchestrator.service import SMALL_RUNNER_NOTE, ask_small_runner, clean_now, generate_job, launch_clean
from tests.azurite import Azurite
from tests.fake_http import closed_port
from tests.functions_host import FunctionsHost, indexed, user_function
from tests.gen_helpers import stored_job

KEY = "a-function-key-0123456789"
DRAIN_PATH = "/api/small-batches/drain"


def _post(body: bytes = b"") -> func.HttpResponse:
    request = func.HttpRequest("POST", f"http://localhost{DRAIN_PATH}", body=body)
    return user_function("drain_small_batches_now")(request)


def _queued_small_job(seed: int = 1) -> str:
    """A generated small batch whose cleaning waits on the small queue; its job id."""
    generated = generate_job(GenerationSpec(rows=20, seed=seed), "alice")
    launched = launch_clean("alice", generated.job_id, scheduled=True)
    assert launched.job.route == "small" and launched.job.state == "queued"
    return launched.job.job_id


def _waiting(route: str = "small") -> int:
    return open_queue(routing.QUEUE_NAMES[route], get_settings()).approximate_count()


@pytest.fixture
def on_azure(azurite: Azurite, data_dir, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The azure profile on Azurite (a fresh file system and queue names of its own), its function app's
    settings given."""
    name = f"lake{uuid.uuid4().hex[:10]}"
    BlobServiceClient.from_connection_string(azurite.connection_string).create_container(name)
    monkeypatch.setenv(SECRETS_FILE_ENV, str(data_dir.parent / "no-secrets.toml"))
    monkeypatch.setenv("ORCHESTRATOR_PROFILE", "azure")
    monkeypatch.setenv("ORCHESTRATOR_AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setenv("ORCHESTRATOR_AZURE_FILE_SYSTEM", name)
    monkeypatch.setenv("ORCHESTRATOR_AZURE_FUNCTIONS_KEY", KEY)
    suffix = uuid.uuid4().hex[:8]  # Azurite's queues are shared by the whole run: each test its own
    monkeypatch.setattr(routing, "QUEUE_NAMES", {"small": f"small-{suffix}", "large": f"large-{suffix}"})
    yield


def test_the_app_registers_the_ten_minute_timer_and_the_drain_and_health_triggers_behind_function_keys():
    functions = {name: function.get_trigger().get_dict_repr() for name, function in indexed().items()}
    assert set(functions) == {"drain_small_batches", "drain_small_batches_now", "health"}
    timer = functions["drain_small_batches"]
    assert (timer["type"], timer["schedule"]) == ("timerTrigger", "0 */10 * * * *")
    for name, route, method in (
        ("drain_small_batches_now", "small-batches/drain", "POST"),
        ("health", "health", "GET"),
    ):
        http = functions[name]
        assert (http["type"], http["route"], [str(m.value) for m in http["methods"]]) == (
            "httpTrigger",
            route,
            [method],
        )
        assert str(http["authLevel"].value) == "function"
    assert CLOUDS["azure"].small_batches == "azure-functions" and CLOUDS["azure"].small_runner.invoke
    assert {"worker", "azure-functions", "function-compute"} <= set(SMALL_RUNNERS)


def test_the_timer_drains_the_small_queue_with_the_workers_drain(data_dir, caplog):
    job_id = _queued_small_job()
    with caplog.at_level("INFO"):
        assert user_function("drain_small_batches")(timer=TimerRequest(past_due=True)) is None
    assert stored_job(job_id).state == "succeeded"
    assert _waiting() == 0  # its message was deleted once the job ended
    assert "the 10-minute drain is late" in caplog.text
    assert f"{job_id}: succeeded" in caplog.text and "small queue drained: 1 jobs" in caplog.text


def test_the_http_trigger_answers_which_jobs_ran_and_how_each_ended_and_runs_none_twice(on_azure):
    first, second = _queued_small_job(1), _queued_small_job(2)
    response = _post(json.dumps({"requested_by": "data-factory"}).encode())
    assert response.status_code == 200 and response.mimetype == "application/json"
    report = json.loads(response.get_body())
    assert report["route"] == "small" and report["requested_by"] == "data-factory"
    assert {job["job_id"]: job["state"] for job in report["jobs"]} == {
        first: "succeeded",
        second: "succeeded",
    }
    assert [job["error"] for job in report["jobs"]] == [None, None]
    assert stored_job(first).state == stored_job(second).state == "succeeded"
    again = json.loads(_post().get_body())
    assert again["jobs"] == [] and again["requested_by"] == ""  # nothing cleaned a second time


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"drain please", "body: must be a JSON object"),
        (b"[1, 2]", "body: must be a JSON object (or empty), not list"),
        (b'{"job": "clean-1"}', "job: is not a field of this request; it takes requested_by"),
        (json.dumps({"requested_by": "x" * 101}).encode(), "requested_by: must be a text of at most 100"),
        (b'{"requested_by": 7}', "requested_by: must be a text"),
    ],
)
def test_a_bad_request_gets_a_clear_400_and_drains_nothing(data_dir, body, named):
    job_id = _queued_small_job()
    response = _post(body)
    assert response.status_code == 400
    assert json.loads(response.get_body())["error"].startswith(named)
    assert stored_job(job_id).state == "queued" and _waiting() == 1


def test_an_app_missing_its_settings_answers_503_naming_the_setting(data_dir, monkeypatch):
    monkeypatch.setenv(SECRETS_FILE_ENV, str(data_dir.parent / "no-secrets.toml"))
    monkeypatch.setenv("ORCHESTRATOR_PROFILE", "azure")  # and no storage account
    response = _post()
    assert response.status_code == 503
    assert "ORCHESTRATOR_AZURE_STORAGE_CONNECTION_STRING" in json.loads(response.get_body())["error"]
    health = user_function("health")(func.HttpRequest("GET", "http://localhost/api/health", body=b""))
    assert (
        health.status_code == 503 and "ORCHESTRATOR_AZURE_STORAGE" in json.loads(health.get_body())["error"]
    )


def test_health_says_the_app_reaches_its_small_queue(on_azure):
    _queued_small_job()
    health = user_function("health")(func.HttpRequest("GET", "http://localhost/api/health", body=b""))
    assert health.status_code == 200
    assert json.loads(health.get_body()) == {"ok": True, "profile": "azure", "small_queue_messages": 1}


def test_invoke_sends_the_key_in_its_header_and_returns_what_the_function_reported(on_azure, monkeypatch):
    job_id = _queued_small_job()
    with FunctionsHost(KEY) as host:
        monkeypatch.setenv("ORCHESTRATOR_AZURE_FUNCTIONS_URL", host.url + "/")
        said = ask_small_runner(job_id)
        (request,) = host.server.received()
    assert (request.method, request.path, request.query) == ("POST", DRAIN_PATH, {})
    assert request.headers["x-functions-key"] == KEY and request.body == {"requested_by": "workbench"}
    assert said.startswith("Azure Functions drained the small queue in ") and f"{job_id}: succeeded" in said
    job = stored_job(job_id)
    assert job.state == "succeeded" and job.params[SMALL_RUNNER_NOTE]["answer"] == said


def test_invoke_names_the_setting_to_change_and_never_the_key(on_azure, monkeypatch):
    settings = get_settings()
    with pytest.raises(InvalidInput, match=r"^ORCHESTRATOR_AZURE_FUNCTIONS_URL: is not set"):
        client.invoke(settings)
    monkeypatch.setenv("ORCHESTRATOR_AZURE_FUNCTIONS_URL", f"https://app.example/?code={KEY}")
    with pytest.raises(InvalidInput, match=r"^ORCHESTRATOR_AZURE_FUNCTIONS_URL: must be the app's URL alone"):
        client.invoke(get_settings())
    assert KEY not in repr(get_settings())
    with FunctionsHost("another-key") as host:
        monkeypatch.setenv("ORCHESTRATOR_AZURE_FUNCTIONS_URL", host.url)
        with pytest.raises(ServiceError, match=r"refused the key \(HTTP 401\)") as refused:
            client.invoke(get_settings())
    assert refused.value.field == "ORCHESTRATOR_AZURE_FUNCTIONS_KEY" and KEY not in str(refused.value)
    monkeypatch.setenv("ORCHESTRATOR_AZURE_FUNCTIONS_URL", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(ServiceError, match="did not answer") as down:
        client.invoke(get_settings())
    assert KEY not in str(down.value)


def _until(condition: Any, what: str) -> None:
    """Wait for a background process to get ``condition`` true (bounded; the time taken is not asserted)."""
    deadline = time.monotonic() + 120
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_clean_now_of_a_small_job_asks_the_function_instead_of_running_a_worker(on_azure, monkeypatch):
    generated = generate_job(GenerationSpec(rows=20, seed=3), "alice")
    with FunctionsHost(KEY) as host:
        monkeypatch.setenv("ORCHESTRATOR_AZURE_FUNCTIONS_URL", host.url)
        launched = clean_now("alice", generated.job_id)
        job_id = launched.job.job_id
        assert launched.started and launched.job.route == "small"
        _until(lambda: SMALL_RUNNER_NOTE in stored_job(job_id).params, "the function was never asked")
        assert [r.path for r in host.server.received()] == [
            DRAIN_PATH
        ]  # the function, asked once, cleaned it
    job = stored_job(job_id)
    assert job.state == "succeeded" and f"{job_id}: succeeded" in job.params[SMALL_RUNNER_NOTE]["answer"]


def test_clean_now_with_the_function_unreachable_leaves_the_job_queued_for_its_timer_and_says_so(
    on_azure, monkeypatch
):
    generated = generate_job(GenerationSpec(rows=20, seed=4), "alice")
    monkeypatch.setenv("ORCHESTRATOR_AZURE_FUNCTIONS_URL", f"http://127.0.0.1:{closed_port()}")
    job_id = clean_now("alice", generated.job_id).job.job_id
    _until(lambda: SMALL_RUNNER_NOTE in stored_job(job_id).params, "the failure was never recorded")
    job = stored_job(job_id)
    assert job.state == "queued" and _waiting() == 1  # never lost: the timer's next drain cleans it
    assert "did not answer" in job.params[SMALL_RUNNER_NOTE]["error"]
    assert "stays queued for the function's own timer" in job.params[SMALL_RUNNER_NOTE]["error"]
    store = JobStore.default()
    try:
        told = [(e.kind, e.message) for e in store.list_unseen("alice") if e.job_id == job_id]
    finally:
        store.close()
    assert told and told[0][0] == "Cleaning delayed" and KEY not in told[0][1]
    user_function("drain_small_batches")(timer=TimerRequest())
    assert stored_job(job_id).state == "succeeded"


def test_the_cli_asks_the_function_and_a_cloud_whose_worker_drains_is_refused(on_azure, monkeypatch, capsys):
    job_id = _queued_small_job()
    with FunctionsHost(KEY) as host:
        monkeypatch.setenv("ORCHESTRATOR_AZURE_FUNCTIONS_URL", host.url)
        assert main(["invoke-small"]) == 0
    assert f"{job_id}: succeeded" in capsys.readouterr().out
    monkeypatch.setenv("ORCHESTRATOR_AZURE_FUNCTIONS_URL", f"http://127.0.0.1:{closed_port()}")
    assert main(["invoke-small"]) == 1
    assert "did not answer" in capsys.readouterr().err
    monkeypatch.setenv("ORCHESTRATOR_PROFILE", "local")
    assert main(["invoke-small"]) == 2
    assert "--cloud: the small batches on local are drained by the worker" in capsys.readouterr().err


def test_the_worker_leaves_the_azure_small_queue_to_the_function(on_azure, capsys):
    job_id = _queued_small_job()
    settings = get_settings()
    assert worker.routes_served(settings) == ["large"]
    assert set(worker.next_runs(datetime(2026, 12, 4, 19, 3, tzinfo=UTC), settings)) == {"large"}
    assert f"{worker.next_run('small', settings):%M}"[-1] == "0"  # the function's ten-minute marks

    assert main(["worker", "--once"]) == 0
    assert "the small queue on Microsoft Azure is drained by Azure Functions" in capsys.readouterr().out
    assert stored_job(job_id).state == "queued" and _waiting() == 1

    at, logged = datetime(2026, 12, 5, 1, 59, tzinfo=UTC), []  # a small drain time (and the large one) due

    def sleep(seconds: float) -> None:
        nonlocal at
        at += timedelta(seconds=seconds)

    worker.run_forever(now=lambda: at, sleep=sleep, log=logged.append, cycles=1)
    assert logged[:2] == [
        "serving the large queue; the small queue on Microsoft Azure is drained by Azure Functions "
        "(pandas, its own timer trigger every 10 minutes)",
        "next: large queue at 2026-12-05 02:00 UTC",
    ]
    assert stored_job(job_id).state == "queued" and _waiting() == 1  # left for the function's timer


def test_beside_another_cloud_the_worker_drains_that_clouds_small_queue_and_leaves_azures(
    on_azure, monkeypatch, capsys
):
    monkeypatch.setenv("ORCHESTRATOR_CLOUDS", "azure,local")
    on_azure_job = _queued_small_job()
    generated = generate_job(GenerationSpec(rows=20, seed=5), "alice", cloud="local")
    on_local_job = launch_clean("alice", generated.job_id, scheduled=True).job.job_id
    assert worker.routes_served(get_settings()) == ["small", "large"]

    assert main(["worker", "--once"]) == 0
    assert capsys.readouterr().out.startswith(
        "serving the small and large queues; the small queue on Microsoft Azure is drained by Azure Functions"
    )
    assert stored_job(on_local_job).state == "succeeded"
    assert stored_job(on_azure_job).state == "queued" and _waiting() == 1  # the azure queue, left to the app
