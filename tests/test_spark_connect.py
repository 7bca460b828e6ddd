"""Local Spark that stays up: large jobs run as clients of one Spark Connect server (shared by the session, as
make run starts it), so no run after the server's start starts a JVM; they clean as a run with a JVM of its
own does; and a cancelled run leaves no Spark work running on the server and no files."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest
import requests

from orchestrator.cleaning.spark import connect
from orchestrator.errors import InvalidInput
from orchestrator.generation.spec import GenerationSpec
from orchestrator.runners import CANCELLED, RUNNING, SUCCEEDED, RunRequest, wait_for
from orchestrator.runners.local_spark import LocalSparkConfig, LocalSparkRunner
from orchestrator.service import generate_job
from orchestrator.storage import paths


def _run(runner: LocalSparkRunner, job_id: str, parent: str, seen: set[str] | None = None) -> dict:
    """Run the notebook for ``job_id`` to its end; ``seen`` gathers the names of every process of its tree
    while it runs. Returns the silver tables it published, by name."""
    started = runner.submit(RunRequest(job_id=job_id, user="alice", parent_job_id=parent))
    pid = runner.process_of(started.run_id)["pid"]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.05):
            try:
                tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
                seen.update(p.name() for p in tree)
            except psutil.NoSuchProcess:
                return

    watcher = threading.Thread(target=watch, daemon=True)
    if seen is not None:
        watcher.start()
    try:
        final = wait_for(runner, started.run_id, timeout=600, poll_interval=0.2)
    finally:
        done.set()
    assert final.state == SUCCEEDED, final.message
    root = runner.config.lake_root
    folder = root / paths.silver_dir("alice", parent, job_id)
    return {path.stem: pq.read_table(path) for path in sorted(folder.glob("*.parquet"))}


def _sorted(table):
    return table.sort_by("_raw_line").to_pylist()


def test_jobs_share_one_server_start_no_jvm_and_clean_as_a_jvm_of_their_own_does(
    settings, spark_connect, monkeypatch
):
    generated = generate_job(
        GenerationSpec(rows=150, seed=8, error_rate=0.5, tables=("customers", "orders", "payments")), "alice"
    )
    monkeypatch.setenv(connect.CONNECT_ENV, spark_connect.point.address)
    on_server = LocalSparkRunner(LocalSparkConfig.from_settings(settings))
    first = _run(on_server, "c-connect-first", generated.job_id)
    # The second run cannot start a JVM (no java anywhere it looks), and none appears in its process tree.
    no_java = Path(settings.data_dir) / "no-java"
    no_java.mkdir(parents=True)
    with monkeypatch.context() as patch:
        patch.setenv("PATH", str(no_java))
        patch.delenv("JAVA_HOME", raising=False)
        seen: set[str] = set()
        second = _run(on_server, "c-connect-second", generated.job_id, seen)
    assert seen and "java" not in seen, seen
    monkeypatch.delenv(connect.CONNECT_ENV)
    classic = _run(LocalSparkRunner(LocalSparkConfig.from_settings(settings)), "c-own-jvm", generated.job_id)
    assert set(second) == set(classic) == set(first) == set(generated.tables)
    for name, table in classic.items():
        assert second[name].schema == table.schema, name
        assert _sorted(second[name]) == _sorted(table) == _sorted(first[name]), name
    assert not (settings.data_dir / "tmp" / "spark").exists()


def _running_jobs(ui: str) -> list[dict]:
    """The Spark jobs running on the server, as its UI's REST API lists them."""
    app = requests.get(f"{ui}/api/v1/applications", timeout=60).json()[0]["id"]
    return requests.get(f"{ui}/api/v1/applications/{app}/jobs?status=running", timeout=60).json()


def test_a_cancelled_run_leaves_no_spark_work_on_the_server_and_no_files(
    settings, spark_connect, monkeypatch
):
    generated = generate_job(GenerationSpec(rows=20_000, seed=9, tables=("orders",)), "alice")
    monkeypatch.setenv(connect.CONNECT_ENV, spark_connect.point.address)
    runner = LocalSparkRunner(LocalSparkConfig.from_settings(settings))
    started = runner.submit(
        RunRequest(job_id="c-connect-cancel", user="alice", parent_job_id=generated.job_id)
    )
    deadline = time.monotonic() + 300
    while not (jobs := _running_jobs(spark_connect.ui)):  # the run's work is under way on the server
        assert runner.status(started.run_id).state == RUNNING and time.monotonic() < deadline
        time.sleep(0.1)
    assert any("c-connect-cancel" in tag for job in jobs for tag in job.get("jobTags", [])), jobs
    runner.cancel(started.run_id)
    assert wait_for(runner, started.run_id, timeout=60, poll_interval=0.2).state == CANCELLED
    deadline = time.monotonic() + 60
    while _running_jobs(spark_connect.ui):  # interrupted tasks end on their own time, but they end
        assert time.monotonic() < deadline, _running_jobs(spark_connect.ui)
        time.sleep(0.2)
    assert not (settings.data_dir / "tmp" / "spark").exists()
    assert not (settings.data_dir / "silver").exists()
    assert not connect.stop_run(connect.run_address(spark_connect.point, started.run_id), "c-connect-cancel")


def test_a_setting_that_is_not_a_spark_connect_address_names_itself(settings, monkeypatch):
    monkeypatch.setenv(connect.CONNECT_ENV, "http://127.0.0.1:15002")
    with pytest.raises(InvalidInput) as error:
        LocalSparkConfig.from_settings(settings)
    assert error.value.field == connect.CONNECT_ENV and "sc://127.0.0.1:15002" in str(error.value)


def test_the_connection_test_says_when_no_server_answers(settings, monkeypatch):
    from tests.conftest import free_port

    monkeypatch.setenv(connect.CONNECT_ENV, f"sc://127.0.0.1:{free_port()}")
    check = LocalSparkRunner(LocalSparkConfig.from_settings(settings)).test_connection()
    assert (check.ok, check.field) == (False, connect.CONNECT_ENV)
    assert "no Spark Connect server answers" in check.message and "make run" in check.message
