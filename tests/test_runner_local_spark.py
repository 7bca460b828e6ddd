"""The spark engine end to end: a cleaning job run by the notebook on local Spark in a child process, its
outputs loaded like the in-process path's, the notebook's stages timed and followed as they end; and the
runner's states, stages, failures and cancellation."""

from __future__ import annotations

import importlib.metadata
import json
import re
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import pyarrow.parquet as pq
import pytest

from orchestrator.auth import open_user_store
from orchestrator.auth.settings import COOKIE_KEY_ENV
from orchestrator.cleaning import stages
from orchestrator.config import get_settings
from orchestrator.generation.spec import GenerationSpec
from orchestrator.jobs.store import JobStore
from orchestrator.loading.warehouse import warehouse_path
from orchestrator.runners import CANCELLED, FAILED, RUNNING, SUCCEEDED, RunnerError, RunRequest, wait_for
from orchestrator.runners.local_spark import LocalSparkConfig, LocalSparkRunner
from orchestrator.service import execute_job, generate_job, job_outputs, launch_clean
from tests.gen_helpers import stored_job
from tests.test_app_pages import PASSWORD, frame_with, signed_in

# The stages of a local Spark cleaning as the Jobs and Pipelines pages name them, in the order they ran.
STAGE_LABELS = [
    "Spark: start the session",
    "Spark: clean columns and repair across tables",
    "Spark: quarantine, de-duplicate and write silver",
    "Spark: finish the output files",
    "Spark: build gold",
    "Spark: start and end the run",
    "read Spark's outputs",
    "load the warehouse",
    "load the operational database",
]


@contextmanager
def _followed(job_id: str, seen: list[str]) -> Iterator[None]:
    """While the block runs, keep each new progress text of the job in ``seen``, as a page reads it."""
    done = threading.Event()

    def follow() -> None:
        while not done.wait(0.05):
            text = stored_job(job_id).progress_text
            if text and (not seen or seen[-1] != text):
                seen.append(text)

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    try:
        yield
    finally:
        done.set()
        follower.join()


@pytest.fixture(scope="module")
def progress_seen() -> list[str]:
    """What the Spark job's progress said while it ran (kept by spark_job)."""
    return []


@pytest.fixture(scope="module")
def spark_job(tmp_path_factory, progress_seen):
    """A batch over the small-batch limit, launched with the default engine and executed; alice signs in."""
    root = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ORCHESTRATOR_DATA_DIR", str(root))
        mp.setenv("ORCHESTRATOR_SMALL_BATCH_MAX_ROWS", "1000")
        open_user_store().create_first_admin("alice", PASSWORD, PASSWORD)
        generated = generate_job(GenerationSpec(rows=200, seed=5, error_rate=0.5), "alice")
        launched = launch_clean("alice", generated.job_id)
        with _followed(launched.job.job_id, progress_seen):
            job = execute_job(launched.job.job_id)
        outputs = job_outputs(job)
        settings = get_settings()
    return root, settings, generated, launched, job, outputs


def test_a_large_batch_runs_on_spark_and_succeeds(spark_job):
    _root, _settings, _generated, launched, job, _outputs = spark_job
    assert launched.engine == "spark" and job.route == "large"
    assert job.state == "succeeded", job.error
    assert job.engine == "spark"
    assert [stages.label(name) for name in job.timings] == STAGE_LABELS  # the notebook's stages one by one
    run = job.remote_run  # the run that cleaned it, as its owner finds it on the Jobs page
    assert (run["service"], run["state"], run["url"]) == ("local_spark", "succeeded", None)
    assert run["run_id"].startswith(f"{job.job_id}-")
    assert (job.progress, job.progress_text) == (1.0, "now: write the silver manifest")  # all its stages


def test_the_progress_names_each_notebook_stage_and_the_runs_time_as_it_goes_on(spark_job, progress_seen):
    _root, _settings, _generated, _launched, job, _outputs = spark_job
    assert all(seconds >= 0 for seconds in job.timings.values())
    assert job.timings["spark_start"] > 0  # a JVM never starts in no time
    under_way = [re.fullmatch(r"now: (.+) \(Spark run running for (\d+) s\)", text) for text in progress_seen]
    told = [(match[1], int(match[2])) for match in under_way if match]
    assert len({label for label, _ in told}) >= 2, progress_seen  # it moved from stage to stage as they ended
    order = [STAGE_LABELS.index(label) for label, _ in told]
    assert order == sorted(order) and max(order) <= len(stages.NOTEBOOK), progress_seen  # the run's own
    assert [seconds for _, seconds in told] == sorted(seconds for _, seconds in told)


def test_the_jobs_and_pipelines_pages_time_each_stage_of_the_notebook(spark_job, monkeypatch):
    root, _settings, generated, _launched, job, _outputs = spark_job
    monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", str(root))
    monkeypatch.setenv("ORCHESTRATOR_SECRETS_FILE", str(root / "no-secrets.toml"))
    monkeypatch.delenv(COOKIE_KEY_ENV, raising=False)
    jobs = signed_in("alice", "pages/jobs.py", job=job.job_id)
    timings = frame_with(jobs, "stage")
    assert timings["stage"].tolist() == STAGE_LABELS
    assert timings["seconds"].tolist() == [round(seconds, 2) for seconds in job.timings.values()]
    pipelines = signed_in("alice", "pages/pipelines.py", job=generated.job_id)
    assert f"Time per stage of `{job.job_id}`:" in [m.value for m in pipelines.markdown]
    assert frame_with(pipelines, "stage")["stage"].tolist() == STAGE_LABELS


def test_outputs_and_manifest_account_for_every_row(spark_job):
    root, _settings, generated, _launched, job, outputs = spark_job
    manifest = json.loads((root / outputs["silver"]["orders"]).parent.joinpath("manifest.json").read_text())
    assert manifest["engine"] == "spark" and manifest["parent_id"] == generated.job_id
    for name, counts in outputs["tables"].items():
        assert counts["rows_in"] == generated.tables[name].rows
        assert counts["rows_in"] == counts["rows_out"] + counts["quarantined"] + counts["duplicates_removed"]
        assert pq.read_metadata(root / outputs["silver"][name]).num_rows == counts["rows_out"]
    assert job.rows_out == sum(t["rows_out"] for t in outputs["tables"].values())
    assert set(outputs["gold"]) >= {"daily_revenue", "payment_mix", "conversion_funnel"}


def test_the_warehouse_and_operational_db_hold_the_job(spark_job):
    root, settings, _generated, _launched, job, outputs = spark_job
    with duckdb.connect(str(warehouse_path(settings)), read_only=True) as con:
        loaded = con.execute(
            "SELECT count(*) FROM gold_payment_mix WHERE job_id = ?", [job.job_id]
        ).fetchone()
    assert loaded[0] == pq.read_metadata(root / outputs["gold"]["payment_mix"]).num_rows > 0


def _runner(settings) -> LocalSparkRunner:
    return LocalSparkRunner(LocalSparkConfig.from_settings(settings))


# A local run's log as the notebook writes it: Spark's own lines between the stages it tells, the last line
# cut short while it was written (a run is read as it goes).
RECORDED_LOG = (
    'Setting default log level to "WARN".\n'
    f"{stages.ended_line('spark_start', 6.25)}\n"
    "26/12/07 07:12:01 WARN NativeCodeLoader: Unable to load native-hadoop library for your platform\n"
    f"{stages.ended_line('spark_clean', 11.5)}\n"
    f"{stages.ended_line('spark_settle', 9.0)[:20]}"
)


def test_a_runs_status_tells_the_stages_its_log_has_told_so_far(settings, tmp_path):
    """A stand-in for Python replays a recorded log: the whole lines first, the rest once the test says so."""
    rest = f"{stages.ended_line('spark_settle', 9.0)[20:]}\n{stages.ended_line('spark_gold', 2.0)}\n"
    (tmp_path / "first").write_text(RECORDED_LOG)
    (tmp_path / "rest").write_text(rest)
    replay = tmp_path / "replay"
    replay.write_text(
        f"#!/bin/sh\ncat {tmp_path}/first\nwhile [ ! -e {tmp_path}/go ]; do sleep 0.05; done\n"
        f"cat {tmp_path}/rest\n"
    )
    replay.chmod(replay.stat().st_mode | stat.S_IXUSR)
    config = LocalSparkConfig.from_settings(settings)
    runner = LocalSparkRunner(LocalSparkConfig(config.lake_root, config.runs_dir, python=str(replay)))
    started = runner.submit(RunRequest(job_id="c-replayed", user="alice", parent_job_id="g-recorded"))
    deadline = time.monotonic() + 30
    while len((status := runner.status(started.run_id)).stages) < 2:
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    assert (status.state, status.stages) == (RUNNING, (("spark_start", 6.25), ("spark_clean", 11.5)))
    assert runner.status(started.run_id).stages == status.stages  # the cut line is not a stage yet
    (tmp_path / "go").touch()
    final = wait_for(runner, started.run_id, timeout=30, poll_interval=0.05)
    assert (final.state, final.stages[2:]) == (SUCCEEDED, (("spark_settle", 9.0), ("spark_gold", 2.0)))


def test_a_missing_raw_job_fails_with_the_notebooks_reason(settings):
    runner = _runner(settings)
    started = runner.submit(RunRequest(job_id="c-missing", user="alice", parent_job_id="g-does-not-exist"))
    assert started.state == RUNNING
    final = wait_for(runner, started.run_id, timeout=120, poll_interval=0.5)
    assert final.state == FAILED
    assert "no generated job g-does-not-exist for user alice" in final.message


def test_a_cancelled_run_ends_cancelled(settings):
    generated = generate_job(GenerationSpec(rows=50, seed=1, tables=("orders",)), "alice")
    runner = _runner(settings)
    started = runner.submit(RunRequest(job_id="c-cancel", user="alice", parent_job_id=generated.job_id))
    runner.cancel(started.run_id)
    final = wait_for(runner, started.run_id, timeout=30, poll_interval=0.2)
    assert final.state == CANCELLED
    assert not (settings.data_dir / "silver").exists()


def test_a_cancelled_cleaning_job_stops_its_spark_run_and_says_how_the_run_ended(settings, monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_SMALL_BATCH_MAX_ROWS", "10")
    generated = generate_job(GenerationSpec(rows=50, seed=2, tables=("orders",)), "alice")
    job_id = launch_clean("alice", generated.job_id).job.job_id

    def cancel_once_the_run_is_under_way() -> None:  # the owner presses Cancel on the Jobs page
        while (stored_job(job_id).remote_run or {}).get("state") != "running":
            time.sleep(0.05)
        store = JobStore.default()
        try:
            store.cancel(job_id, user="alice")
        finally:
            store.close()

    owner = threading.Thread(target=cancel_once_the_run_is_under_way, daemon=True)
    owner.start()
    job = execute_job(job_id)
    owner.join(timeout=60)
    assert (job.state, job.engine, job.remote_run["state"]) == ("cancelled", "spark", "cancelled")
    assert stored_job(job_id) == job
    assert not (settings.data_dir / "silver").exists()


def test_an_unknown_run_is_a_clear_error(settings):
    with pytest.raises(RunnerError, match="was not started by this worker"):
        _runner(settings).status("c-x-123")


def test_the_connection_test_finds_java_and_pyspark_and_names_java_home_when_java_is_missing(
    settings, tmp_path, monkeypatch
):
    runner = LocalSparkRunner(LocalSparkConfig.from_settings(settings))
    check = runner.test_connection()
    assert check.ok and check.message.startswith("local Spark can start: Java at ")
    assert f"pyspark {importlib.metadata.version('pyspark')}" in check.message

    monkeypatch.setenv("JAVA_HOME", str(tmp_path))  # a folder without bin/java
    missing = runner.test_connection()
    assert (missing.ok, missing.field) == (False, "JAVA_HOME")
    assert f"JAVA_HOME ({tmp_path}) holds no bin/java" in missing.message
    monkeypatch.delenv("JAVA_HOME")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "there is no java on the PATH" in runner.test_connection().message
