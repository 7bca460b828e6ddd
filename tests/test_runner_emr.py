"""Large batches on Alibaba Cloud E-MapReduce Serverless Spark: the runner drives the real
alibabacloud-emr-serverless-spark20230808 SDK against tests/fake_emr.py (ROA/JSON, V3 signature checked).
One test cleans a large job end to end on the aliyun cloud (lake on tests/fake_oss.py, queues on
tests/fake_mns.py, the run's notebook on local Spark against the bucket); the others, without Spark, cover
the request, the states, cancelling, the connection test and the refusals."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.clouds import CLOUDS
from orchestrator.config import SECRETS_FILE_ENV, SPARK_RUNNERS, get_settings
from orchestrator.domain.contract import built_in, built_in_names
from orchestrator.errors import InvalidInput
from orchestrator.generation.spec import GenerationSpec
from orchestrator.runners import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    RunnerError,
    RunRequest,
    spark_target,
    wait_for,
)
from orchestrator.runners.emr_serverless import (
    CODE_SETTING,
    ENDPOINT_SETTING,
    QUEUE_SETTING,
    WORKSPACE_SETTING,
    EmrConfig,
    EmrServerlessRunner,
)
from orchestrator.service import execute_job, generate_job, job_outputs, launch_clean
from orchestrator.ui_support import connection_checks
from tests.fake_acs import AcsKey
from tests.fake_emr import API, FakeEmrServerless, OssCluster
from tests.fake_http import closed_port
from tests.fake_mns import FakeMns
from tests.fake_oss import FakeOss

REPOSITORY = Path(__file__).resolve().parents[1]
KEY_ID, SECRET, REGION = "LTAI5tEmrTest", "emr-secret-0042", "cn-test"
WORKSPACE = "w-1234567890abcdef"
CODE = "oss://lake/code/data-workbench"
REQUEST = RunRequest(
    job_id="c-42", user="alice", parent_job_id="g-41", parameters={"lake_root": "oss://lake"}
)


@pytest.fixture
def emr() -> Iterator[FakeEmrServerless]:
    with FakeEmrServerless(AcsKey(KEY_ID, SECRET), {WORKSPACE: ("root_queue", "large")}) as server:
        yield server


def runner_for(endpoint: str, **overrides: object) -> EmrServerlessRunner:
    settings = {
        "endpoint": endpoint,
        "workspace": WORKSPACE,
        "access_key_id": KEY_ID,
        "access_key_secret": SECRET,
        "code": CODE,
        **overrides,
    }
    return EmrServerlessRunner(EmrConfig(**settings))


class FakeClock:
    """Time that passes only when the wait sleeps, so polling is exact and instant."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def poll(runner: EmrServerlessRunner, run_id: str):
    clock = FakeClock()
    return wait_for(runner, run_id, timeout=600, poll_interval=10, clock=clock, sleep=clock.sleep)


def test_a_run_is_spark_submit_of_the_notebook_from_oss_with_the_job_parameters_and_polls_to_success(emr):
    emr.states = [{"state": "Submitted"}, {"state": "Pending"}, {"state": "Running"}, {"state": "Success"}]
    runner = runner_for(emr.url, queue="large", submit_parameters="--conf spark.executor.instances=4")

    started = runner.submit(REQUEST)
    seen = [runner.status(started.run_id).state for _ in range(3)]
    final = poll(runner, started.run_id)

    assert started.state == QUEUED and started.run_id.startswith("jr-")
    assert seen == [QUEUED, QUEUED, RUNNING]
    assert final.state == SUCCEEDED
    assert final.url == f"{emr.url}/sparkui/{WORKSPACE}/{started.run_id}"  # the run's Spark UI
    [start] = [r for r in emr.received(API) if r.method == "POST"]
    assert start.path == f"{API}/{WORKSPACE}/jobRuns"
    assert start.headers["authorization"].startswith(f"ACS3-HMAC-SHA256 Credential={KEY_ID},")
    assert start.body["codeType"] == "PYTHON" and start.body["resourceQueueId"] == "large"
    assert start.body["clientToken"] == "c-42" and start.body["name"] == "clean c-42 for alice"
    assert start.body["jobDriver"]["sparkSubmit"] == {
        "entryPoint": f"{CODE}/clean_large_batch.py",
        "entryPointArguments": [
            *("--job_id", "c-42", "--user", "alice", "--parent_job_id", "g-41"),
            *("--lake_root", "oss://lake"),
        ],
        "sparkSubmitParameters": f"--py-files {CODE}/orchestrator.zip --conf spark.executor.instances=4",
    }
    gets = [r for r in emr.received(API) if r.method == "GET"]
    assert {g.path for g in gets} == {f"{API}/{WORKSPACE}/jobRuns/{started.run_id}"}


def test_the_same_job_submitted_twice_is_one_run(emr):
    runner = runner_for(emr.url)
    assert runner.submit(REQUEST).run_id == runner.submit(REQUEST).run_id
    assert len(emr.runs) == 1


def test_a_failed_run_carries_the_services_reason_and_an_unknown_state_is_an_error(emr):
    emr.states = [{"state": "Failed", "reason": {"code": "JobFailed", "message": "Traceback: NameError"}}]
    runner = runner_for(emr.url)
    run_id = runner.submit(REQUEST).run_id

    failed = runner.status(run_id)

    assert (failed.state, failed.message) == (FAILED, "Failed: JobFailed Traceback: NameError")
    emr.states = [{"state": "Hibernating"}]
    with pytest.raises(RunnerError, match="unknown run state 'Hibernating'"):
        runner.status(runner.submit(RunRequest("c-43", "alice", "g-41")).run_id)


def test_cancel_deletes_the_run_and_it_ends_cancelled(emr):
    emr.states = [{"state": "Running"}]
    runner = runner_for(emr.url)
    run_id = runner.submit(REQUEST).run_id
    assert runner.status(run_id).state == RUNNING

    runner.cancel(run_id)

    [cancel] = [r for r in emr.received(API) if r.method == "DELETE"]
    assert cancel.path == f"{API}/{WORKSPACE}/jobRuns/{run_id}"
    assert runner.status(run_id).state == CANCELLED
    with pytest.raises(RunnerError, match="JobRunNotExist"):
        runner.status("jr-unknown")


def test_the_connection_test_names_the_setting_to_change_and_starts_nothing(emr):
    assert runner_for(emr.url).test_connection().ok
    cases = [
        (runner_for(emr.url, queue="nightly"), QUEUE_SETTING),
        (runner_for(emr.url, workspace="w-unknown"), WORKSPACE_SETTING),
        (runner_for(emr.url, access_key_secret="wrong-secret"), "ORCHESTRATOR_ALIYUN_ACCESS_KEY_SECRET"),
        (runner_for(emr.url, access_key_id="LTAI5tUnknown"), "ORCHESTRATOR_ALIYUN_ACCESS_KEY_ID"),
        (runner_for(f"http://127.0.0.1:{closed_port()}"), ENDPOINT_SETTING),
    ]
    for runner, setting in cases:
        check = runner.test_connection()
        assert (check.ok, check.field) == (False, setting), check.message
        assert (
            setting in check.message and SECRET not in check.message and "wrong-secret" not in check.message
        )
    assert emr.runs == {} and all(r.method == "GET" for r in emr.received(API))


def test_a_queue_the_workspace_lacks_is_refused_naming_the_setting(emr):
    with pytest.raises(RunnerError, match=QUEUE_SETTING) as refused:
        runner_for(emr.url, queue="nightly").submit(REQUEST)
    assert refused.value.field == QUEUE_SETTING and emr.runs == {}


def test_missing_or_malformed_settings_are_named_before_any_request(emr):
    for overrides, setting in (
        ({"endpoint": ""}, ENDPOINT_SETTING),
        ({"endpoint": "emr-serverless-spark.cn-test"}, ENDPOINT_SETTING),
        ({"workspace": " "}, WORKSPACE_SETTING),
        ({"code": "code/data-workbench"}, CODE_SETTING),
    ):
        with pytest.raises(InvalidInput) as refused:
            runner_for(overrides.pop("endpoint", emr.url), **overrides)
        assert refused.value.field == setting
    assert SECRET not in repr(runner_for(emr.url).config)
    assert emr.requests == []


def test_the_code_package_holds_the_notebook_and_the_orchestrator_package(tmp_path):
    out = tmp_path / "emr"
    subprocess.run(
        ["bash", str(REPOSITORY / "deploy/aliyun/emr-code.sh"), "--build-only"],
        env={"OUT": str(out), "PATH": "/usr/bin:/bin", "PYTHON": sys.executable},
        check=True,
        capture_output=True,
    )
    assert (out / "clean_large_batch.py").read_bytes() == (
        REPOSITORY / "notebooks/clean_large_batch.py"
    ).read_bytes()
    names = zipfile.ZipFile(out / "orchestrator.zip").namelist()
    assert "orchestrator/runners/emr_serverless.py" in names and "orchestrator/__init__.py" in names
    assert any(name.startswith("contracts/") for name in names)
    assert not any("__pycache__" in name for name in names)
    # As the run gets it on --py-files: the package, imported from the zip, reads the shipped contracts there.
    script = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import orchestrator;"
        "from orchestrator.cleaning.spark.job import clean_job;"
        "from orchestrator.domain.contract import built_in, built_in_names;"
        "tables = {n: len(built_in(n).contract.tables) for n in built_in_names()};"
        "print(json.dumps([orchestrator.__file__, tables]))"
    )
    imported = subprocess.run(
        [sys.executable, "-c", script, str(out / "orchestrator.zip")],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
        text=True,
    )
    where, tables = json.loads(imported.stdout)
    assert where.startswith(str(out / "orchestrator.zip"))
    assert tables == {name: len(built_in(name).contract.tables) for name in built_in_names()}


@pytest.fixture
def aliyun_large(data_dir, tmp_path, monkeypatch):
    """The aliyun profile, its lake on a fake OSS, its queues on a fake MNS and its large batches on a fake
    EMR Serverless Spark whose cluster runs the notebook against that bucket; the code in the bucket as
    deploy/aliyun/emr-code.sh puts it there."""
    monkeypatch.setenv(SECRETS_FILE_ENV, str(tmp_path / "no-secrets.toml"))
    monkeypatch.setenv("ORCHESTRATOR_SMALL_BATCH_MAX_ROWS", "100")
    with FakeOss(KEY_ID, SECRET, REGION, ("lake",)) as oss, FakeMns(KEY_ID, SECRET) as mns:
        cluster = OssCluster(oss, tmp_path / "cluster")
        with FakeEmrServerless(AcsKey(KEY_ID, SECRET), {WORKSPACE: ("root_queue",)}, cluster) as emr:
            for name, value in {
                "ORCHESTRATOR_PROFILE": "aliyun",
                "ORCHESTRATOR_ALIYUN_OSS_BUCKET": "lake",
                "ORCHESTRATOR_ALIYUN_OSS_ENDPOINT": oss.endpoint,
                "ORCHESTRATOR_ALIYUN_OSS_REGION": REGION,
                "ORCHESTRATOR_ALIYUN_OSS_PATH_STYLE": "true",
                "ORCHESTRATOR_ALIYUN_ACCESS_KEY_ID": KEY_ID,
                "ORCHESTRATOR_ALIYUN_ACCESS_KEY_SECRET": SECRET,
                "ORCHESTRATOR_ALIYUN_MNS_ENDPOINT": mns.endpoint,
                "ORCHESTRATOR_ALIYUN_EMR_ENDPOINT": emr.url,
                "ORCHESTRATOR_ALIYUN_EMR_WORKSPACE": WORKSPACE,
                "ORCHESTRATOR_ALIYUN_EMR_CODE": CODE,
                "ORCHESTRATOR_CLUSTER_LAKE_ROOT": "oss://lake",
            }.items():
                monkeypatch.setenv(name, value)
            yield oss, emr


def test_a_large_job_on_the_aliyun_cloud_is_cleaned_on_emr_serverless_spark(aliyun_large, tmp_path):
    oss, emr = aliyun_large
    settings = get_settings()
    assert CLOUDS["aliyun"].large_batches == "emr-serverless" and "emr-serverless" in SPARK_RUNNERS
    assert settings.spark_runner == "emr-serverless"
    assert isinstance(spark_target(settings).runner, EmrServerlessRunner)
    assert connection_checks(settings)["large batches"].ok
    generated = generate_job(GenerationSpec(rows=150, seed=8, tables=("orders",)), "alice")
    launched = launch_clean("alice", generated.job_id).job
    assert launched.route == "large"

    missing = execute_job(launched.job_id)  # the code was never put on OSS: spark-submit cannot fetch it
    assert missing.state == "failed" and f"File not found: {CODE}/clean_large_batch.py" in missing.error

    for name in ("clean_large_batch.py", "orchestrator.zip"):  # as deploy/aliyun/emr-code.sh puts them
        oss.put_object("lake", f"code/data-workbench/{name}", b"code")
    retried = launch_clean("alice", generated.job_id).job
    job = execute_job(retried.job_id)

    assert job.state == "succeeded", job.error
    run = job.remote_run
    assert (run["service"], run["state"]) == ("emr-serverless", "succeeded")
    assert run["url"] == f"{emr.url}/sparkui/{WORKSPACE}/{run['run_id']}"
    outputs = job_outputs(job)
    assert outputs["tables"]["orders"]["rows_in"] == generated.tables["orders"].rows
    silver = [key for key in oss.buckets["lake"] if key.startswith("silver/") and f"/{job.job_id}/" in key]
    assert any(key.endswith("/orders.parquet") for key in silver)  # written by the run, in the bucket
    start = emr.runs[run["run_id"]]
    arguments = start["jobDriver"]["sparkSubmit"]["entryPointArguments"]
    assert arguments[arguments.index("--lake_root") + 1] == "oss://lake"
    assert arguments[arguments.index("--job_id") + 1] == job.job_id
