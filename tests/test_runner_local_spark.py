"""The spark engine end to end: a cleaning job run by the notebook on local Spark in a child process, its
outputs loaded like the in-process path's; and the runner's states, failures and cancellation."""

from __future__ import annotations

import importlib.metadata
import json
import threading
import time

import duckdb
import pyarrow.parquet as pq
import pytest

from orchestrator.config import get_settings
from orchestrator.generation.spec import GenerationSpec
from orchestrator.jobs.store import JobStore
from orchestrator.loading.warehouse import warehouse_path
from orchestrator.runners import CANCELLED, FAILED, RUNNING, RunnerError, RunRequest, wait_for
from orchestrator.runners.local_spark import LocalSparkConfig, LocalSparkRunner
from orchestrator.service import execute_job, generate_job, job_outputs, launch_clean
from tests.gen_helpers import stored_job


@pytest.fixture(scope="module")
def spark_job(tmp_path_factory):
    """A batch over the small-batch limit, launched with the default engine and executed."""
    root = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ORCHESTRATOR_DATA_DIR", str(root))
        mp.setenv("ORCHESTRATOR_SMALL_BATCH_MAX_ROWS", "1000")
        generated = generate_job(GenerationSpec(rows=200, seed=5, error_rate=0.5), "alice")
        launched = launch_clean("alice", generated.job_id)
        job = execute_job(launched.job.job_id)
        outputs = job_outputs(job)
        settings = get_settings()
    return root, settings, generated, launched, job, outputs


def test_a_large_batch_runs_on_spark_and_succeeds(spark_job):
    _root, _settings, _generated, launched, job, _outputs = spark_job
    assert launched.engine == "spark" and job.route == "large"
    assert job.state == "succeeded", job.error
    assert job.engine == "spark"
    assert {"spark", "load_warehouse", "load_operational"} <= set(job.timings)
    run = job.remote_run  # the run that cleaned it, as its owner finds it on the Jobs page
    assert (run["service"], run["state"], run["url"]) == ("local_spark", "succeeded", None)
    assert run["run_id"].startswith(f"{job.job_id}-")
    assert (job.progress, job.progress_text) == (1.0, "now: write the silver manifest")  # all its stages


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
