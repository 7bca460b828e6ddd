"""Small batches on Alibaba Cloud Function Compute: the function deployed from deploy/aliyun/s.yaml drains the
small queue with the worker's code when its 10-minute timer fires and when the workbench invokes it through
the real alibabacloud-fc20230330 SDK. FC is tests/fake_fc.py (V3 signature checked, the handler run in a
process of its own with the function's environment from s.yaml); the lake is tests/fake_oss.py and the
queues tests/fake_mns.py, which the workbench and the function share as they would on Alibaba Cloud."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
import yaml

from orchestrator.clouds import CLOUDS, SMALL_RUNNERS
from orchestrator.clouds.aliyun.function_compute import handler, invoke
from orchestrator.config import SECRET_NAMES, SECRETS_FILE_ENV, get_settings
from orchestrator.errors import InvalidInput, ServiceError
from orchestrator.generation.spec import GenerationSpec
from orchestrator.jobs import routing
from orchestrator.jobs.store import JobStore
from orchestrator.queues import open_queue
from orchestrator.service import SMALL_RUNNER_NOTE, ask_small_runner, clean_now, generate_job, launch_clean
from orchestrator.worker import worker_drains
from tests.fake_fc import S_YAML, FakeFunctionCompute, function_from_s_yaml
from tests.fake_http import closed_port
from tests.fake_mns import FakeMns
from tests.fake_oss import FakeOss

KEY_ID, SECRET, REGION = "LTAI5tFunctionTest", "fc-secret-0042", "cn-test"
FUNCTION = "orchestrator-small-batches"


@pytest.fixture
def aliyun(data_dir, tmp_path, monkeypatch):
    """The aliyun profile with its lake on a fake OSS, its queues on a fake MNS and Function Compute on a fake
    FC running the function that s.yaml deploys (its data folder, a NAS mount there, is this test's)."""
    no_secrets = str(tmp_path / "no-secrets.toml")
    monkeypatch.setenv(SECRETS_FILE_ENV, no_secrets)
    monkeypatch.setenv("ORCHESTRATOR_SMALL_BATCH_MAX_ROWS", "1000")
    with FakeOss(KEY_ID, SECRET, REGION, ("lake",)) as oss, FakeMns(KEY_ID, SECRET) as mns:
        for name, value in {
            "ORCHESTRATOR_ALIYUN_MNS_ENDPOINT": mns.endpoint,
            "ORCHESTRATOR_PROFILE": "aliyun",
            "ORCHESTRATOR_ALIYUN_OSS_BUCKET": "lake",
            "ORCHESTRATOR_ALIYUN_OSS_ENDPOINT": oss.endpoint,
            "ORCHESTRATOR_ALIYUN_OSS_REGION": REGION,
            "ORCHESTRATOR_ALIYUN_OSS_PATH_STYLE": "true",
            "ORCHESTRATOR_ALIYUN_ACCESS_KEY_ID": KEY_ID,
            "ORCHESTRATOR_ALIYUN_ACCESS_KEY_SECRET": SECRET,
        }.items():
            monkeypatch.setenv(name, value)
        function = function_from_s_yaml(
            os.environ, ORCHESTRATOR_DATA_DIR=str(data_dir), ORCHESTRATOR_SECRETS_FILE=no_secrets
        )
        with FakeFunctionCompute(KEY_ID, SECRET, (function,), region=REGION) as fc:
            monkeypatch.setenv("ORCHESTRATOR_ALIYUN_FC_ENDPOINT", fc.endpoint)
            monkeypatch.setenv("ORCHESTRATOR_ALIYUN_FC_FUNCTION", FUNCTION)
            yield fc, oss


def _queue_small(user: str = "bob", seed: int = 2) -> str:
    generated = generate_job(GenerationSpec(rows=40, seed=seed, tables=("orders",)), user)
    job = launch_clean(user, generated.job_id).job
    assert job.route == "small" and job.state == "queued"
    return job.job_id


def _params(job_id: str) -> dict:
    store = JobStore.default()
    try:
        return store.get(job_id).params
    finally:
        store.close()


def _state(job_id: str) -> str:
    store = JobStore.default()
    try:
        return store.get(job_id).state
    finally:
        store.close()


def test_the_workbench_invokes_the_function_and_it_cleans_the_queued_small_job(aliyun):
    fc, oss = aliyun
    job_id = _queue_small()

    said = invoke(get_settings())

    head, *lines = said.splitlines()  # the shape every cloud's small-batch function answers in
    assert re.fullmatch(r"Function Compute drained the small queue in \d+\.\d s: 1 job", head), head
    assert lines == [f"{job_id}: succeeded"]  # as the worker prints a job's end
    (invocation,) = fc.invocations
    report = json.loads(invocation.output)  # what the function itself answered
    assert report["jobs"] == [{"job_id": job_id, "state": "succeeded", "error": None, "line": lines[0]}]
    assert report["route"] == "small" and report["trigger"] == "workbench"
    assert invocation.ok and report["request_id"] == invocation.request_id
    assert _state(job_id) == "succeeded"
    cleaned = [key for key in oss.buckets["lake"] if key.startswith("silver/") and f"/{job_id}/" in key]
    assert any(key.endswith(f"/{job_id}/orders.parquet") for key in cleaned)  # silver, in the bucket
    assert open_queue(routing.QUEUE_NAMES["small"], get_settings()).receive(1, visibility_timeout=1) == []
    (request,) = fc.requests
    assert (request.method, request.path) == ("POST", f"/2023-03-30/functions/{FUNCTION}/invocations")
    assert request.headers["authorization"].startswith(f"ACS3-HMAC-SHA256 Credential={KEY_ID},")
    assert request.headers["x-fc-invocation-type"] == "Sync"
    assert "qualifier" not in request.query  # LATEST unless ORCHESTRATOR_ALIYUN_FC_QUALIFIER says otherwise


def test_the_ten_minute_timer_trigger_drains_the_small_queue(aliyun):
    fc, _ = aliyun
    function = fc.functions[FUNCTION]
    assert function.cron == {"every-10-minutes": "0 */10 * * * *"}  # second 0 of every tenth minute, UTC
    first, second = _queue_small("bob", 2), _queue_small("carol", 3)

    fired = fc.fire(FUNCTION, "every-10-minutes")

    assert fired.ok, fired.log[-2000:]
    report = json.loads(fired.output)
    assert (report["trigger"], report["name"]) == ("timer", "every-10-minutes")
    assert sorted(job["job_id"] for job in report["jobs"]) == sorted([first, second])
    assert {job["state"] for job in report["jobs"]} == {"succeeded"}
    assert _state(first) == _state(second) == "succeeded"
    assert f"{first}: succeeded" in fired.log  # each job's end in the function's logs
    assert json.loads(fc.fire(FUNCTION, "every-10-minutes").output)["jobs"] == []  # nothing left


def test_clean_now_of_a_small_aliyun_job_asks_function_compute_and_the_worker_leaves_that_queue(aliyun):
    fc, _ = aliyun
    generated = generate_job(GenerationSpec(rows=40, seed=4, tables=("orders",)), "dave")
    assert CLOUDS["aliyun"].small_runner is SMALL_RUNNERS["function-compute"]
    assert not worker_drains("small", "aliyun") and worker_drains("large", "aliyun")

    job = clean_now("dave", generated.job_id).job  # spawns `python -m orchestrator invoke-small --job ID`

    assert job.route == "small"
    deadline = time.monotonic() + 180
    while SMALL_RUNNER_NOTE not in _params(job.job_id) and time.monotonic() < deadline:
        time.sleep(0.5)  # the asking process records the function's answer once it has it
    answer = _params(job.job_id)[SMALL_RUNNER_NOTE]["answer"]
    assert answer.startswith("Function Compute drained the small queue in ")
    assert answer.splitlines()[1:] == [f"{job.job_id}: succeeded"]
    assert _state(job.job_id) == "succeeded"
    (invocation,) = fc.invocations  # the function cleaned it, asked through the SDK
    assert invocation.ok and json.loads(invocation.output)["trigger"] == "workbench"


def test_a_function_that_cannot_be_asked_leaves_the_job_queued_with_the_reason(aliyun, monkeypatch):
    fc, _ = aliyun
    job_id = _queue_small()
    monkeypatch.setenv("ORCHESTRATOR_ALIYUN_ACCESS_KEY_SECRET", "wrong-secret")

    with pytest.raises(ServiceError, match="ORCHESTRATOR_ALIYUN_ACCESS_KEY_SECRET"):
        ask_small_runner(job_id)

    note = _params(job_id)[SMALL_RUNNER_NOTE]
    assert "ORCHESTRATOR_ALIYUN_ACCESS_KEY_SECRET" in note["error"] and "wrong-secret" not in note["error"]
    assert _state(job_id) == "queued" and fc.invocations == []


def test_refusals_name_the_setting_to_change_and_leave_the_job_queued(aliyun, monkeypatch):
    fc, _ = aliyun
    job_id = _queue_small()
    cases = [
        ("ORCHESTRATOR_ALIYUN_ACCESS_KEY_SECRET", "wrong-secret", "SignatureNotMatch"),
        ("ORCHESTRATOR_ALIYUN_ACCESS_KEY_ID", "LTAI5tUnknown", "InvalidAccessKeyID"),
        ("ORCHESTRATOR_ALIYUN_FC_FUNCTION", "no-such-function", "FunctionNotFound"),
        ("ORCHESTRATOR_ALIYUN_FC_QUALIFIER", "prod", "AliasNotFound"),
    ]
    for name, value, code in cases:
        with monkeypatch.context() as patch:
            patch.setenv(name, value)
            with pytest.raises(InvalidInput) as refused:
                invoke(get_settings())
        assert refused.value.field == name and code in str(refused.value)
        assert SECRET not in str(refused.value) and "wrong-secret" not in str(refused.value)
    assert fc.invocations == [] and len(fc.requests) == len(cases)
    assert _state(job_id) == "queued"


def test_missing_or_unreachable_endpoints_are_named_before_anything_runs(aliyun, monkeypatch):
    fc, _ = aliyun
    for name, value, match in (
        ("ORCHESTRATOR_ALIYUN_FC_ENDPOINT", "", r"^ORCHESTRATOR_ALIYUN_FC_ENDPOINT: is not set"),
        ("ORCHESTRATOR_ALIYUN_FC_ENDPOINT", "fc.example", r"^ORCHESTRATOR_ALIYUN_FC_ENDPOINT: 'fc.example'"),
        ("ORCHESTRATOR_ALIYUN_FC_FUNCTION", "", r"^ORCHESTRATOR_ALIYUN_FC_FUNCTION: is not set"),
    ):
        with monkeypatch.context() as patch:
            patch.setenv(name, value)
            with pytest.raises(InvalidInput, match=match):
                invoke(get_settings())
    assert fc.requests == []
    monkeypatch.setenv("ORCHESTRATOR_ALIYUN_FC_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(ServiceError, match=r"cannot reach Function Compute at http://127\.0\.0\.1:") as down:
        invoke(get_settings())
    assert down.value.field == "ORCHESTRATOR_ALIYUN_FC_ENDPOINT"


def test_a_function_that_fails_is_reported_with_its_error_and_its_jobs_stay_queued(aliyun):
    fc, _ = aliyun
    job_id = _queue_small()
    del fc.functions[FUNCTION].environment["ORCHESTRATOR_ALIYUN_OSS_BUCKET"]  # deployed without its bucket

    with pytest.raises(ServiceError) as failed:
        invoke(get_settings())

    message = str(failed.value)
    assert "UnhandledInvocationError" in message
    assert "InvalidInput: ORCHESTRATOR_ALIYUN_OSS_BUCKET: is not set" in message
    assert failed.value.field == "ORCHESTRATOR_ALIYUN_FC_FUNCTION"
    assert _state(job_id) == "queued"


def test_the_handler_reads_the_timer_event_and_drains_nothing_when_nothing_waits(settings):
    timer = {"triggerName": "every-10-minutes", "triggerTime": "2026-12-07T12:10:00Z", "payload": ""}
    event = json.dumps(timer)
    context = type("Context", (), {"request_id": "1-abc"})()
    report = json.loads(handler(event.encode(), context))
    assert report.pop("seconds") >= 0
    assert report == {
        "route": "small",
        "trigger": "timer",
        "name": "every-10-minutes",
        "time": "2026-12-07T12:10:00Z",
        "request_id": "1-abc",
        "jobs": [],
    }
    assert json.loads(handler(b"", context))["trigger"] == "invocation"


def test_the_deployment_names_the_handler_and_writes_no_secret():
    props = next(iter(yaml.safe_load(S_YAML.read_text())["resources"].values()))["props"]
    module, _, name = props["handler"].rpartition(".")
    assert f"{module}:{name}" == "orchestrator.clouds.aliyun.function_compute:handler"
    assert props["runtime"].startswith("python3") and props["timeout"] <= 600
    environment = props["environmentVariables"]
    assert environment["ORCHESTRATOR_PROFILE"] == "aliyun"
    for secret in SECRET_NAMES:
        if secret in environment:
            assert environment[secret] == f"${{env('{secret}')}}", secret  # read when deploying only
    assert Path(S_YAML.parent / "package.sh").is_file()


def test_an_sts_token_is_sent_to_function_compute_and_a_stale_one_is_named(aliyun, monkeypatch):
    fc, _ = aliyun
    token = "CAIS-fc-token-0042"
    with FakeFunctionCompute(KEY_ID, SECRET, tuple(fc.functions.values()), REGION, token) as with_token:
        monkeypatch.setenv("ORCHESTRATOR_ALIYUN_FC_ENDPOINT", with_token.endpoint)
        monkeypatch.setenv("ORCHESTRATOR_ALIYUN_SECURITY_TOKEN", token)
        settings = get_settings()

        said = invoke(settings)  # nothing queued: the function runs and finds nothing

        assert said.endswith(": no job was waiting") and len(with_token.invocations) == 1
        (request,) = with_token.requests
        assert request.headers["x-acs-security-token"] == token
        assert token not in repr(settings)
        monkeypatch.setenv("ORCHESTRATOR_ALIYUN_SECURITY_TOKEN", "CAIS-expired")
        with pytest.raises(InvalidInput) as stale:
            invoke(get_settings())
        assert stale.value.field == "ORCHESTRATOR_ALIYUN_SECURITY_TOKEN" and "CAIS-expired" not in str(
            stale.value
        )
        assert len(with_token.invocations) == 1
