"""Faults on the cleaning path: a worker killed mid-job, a lake that refuses writes, a database that is down,
a warehouse another process holds, raw data that changed. Each ends in a clear state, loses nothing, and the
job can be run again."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from orchestrator.config import get_settings
from orchestrator.errors import ServiceError
from orchestrator.generation.spec import GenerationSpec
from orchestrator.loading import warehouse
from orchestrator.loading.warehouse import load_gold, warehouse_path
from orchestrator.service import execute_job, generate_job, job_outputs, launch_clean
from orchestrator.storage import LocalLake
from tests.gen_helpers import duckdb_held, stored_job

ROOT = Path(__file__).resolve().parents[1]


def _worker(data_dir: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "ORCHESTRATOR_DATA_DIR": str(data_dir)}
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "worker", "--once", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _raw_intact(data_dir: Path, manifest_path: str) -> bool:
    manifest = json.loads((data_dir / manifest_path).read_text())
    return all(
        hashlib.sha256((data_dir / t["raw_path"]).read_bytes()).hexdigest() == t["sha256"]
        for t in manifest["tables"].values()
    )


def _operational_rows(data_dir: Path, job_id: str) -> int:
    path = data_dir / "operational.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as con:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return sum(
            con.execute(f"SELECT count(*) FROM {t} WHERE job_id = ?", (job_id,)).fetchone()[0] for t in tables
        )


def _warehouse_rows(data_dir: Path, job_id: str) -> int:
    path = warehouse_path(get_settings())
    if not path.exists():
        return 0
    with duckdb.connect(str(path), read_only=True) as con:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        return sum(
            con.execute(f"SELECT count(*) FROM {t} WHERE job_id = ?", [job_id]).fetchone()[0] for t in tables
        )


@pytest.mark.parametrize("kill_after", ["clean", "write_silver", "load_warehouse"])
def test_a_worker_killed_mid_job_leaves_nothing_half_done_and_the_job_finishes_after_restart(
    data_dir, kill_after
):
    generated = generate_job(GenerationSpec(rows=1500, seed=7), "alice")
    job_id = launch_clean("alice", generated.job_id, engine="pandas").job.job_id
    worker = _worker(data_dir, "--visibility-timeout", "2")
    deadline = time.monotonic() + 120
    while kill_after not in stored_job(job_id).timings:
        assert worker.poll() is None, f"the worker ended before '{kill_after}': {worker.communicate()}"
        assert time.monotonic() < deadline, "the job never reached the stage to kill it at"
        time.sleep(0.01)
    worker.send_signal(signal.SIGKILL)
    worker.wait()

    lake = LocalLake(data_dir)
    job = stored_job(job_id)
    assert job.state == "running" and job.attempts == 1
    for path in lake.list("silver") if (data_dir / "silver").exists() else []:
        if path.endswith(".parquet"):
            pq.read_table(data_dir / path)  # every visible file is whole
    assert (
        not any(p.endswith("manifest.json") for p in lake.list("silver"))
        if (data_dir / "silver").exists()
        else True
    )
    assert _operational_rows(data_dir, job_id) == 0  # the operational load runs last, all or nothing
    assert _raw_intact(data_dir, generated.manifest_path)

    time.sleep(2.2)  # the message becomes visible again after its visibility timeout
    restarted = _worker(data_dir, "--visibility-timeout", "60")
    out, err = restarted.communicate(timeout=180)
    assert restarted.returncode == 0, err
    job = stored_job(job_id)
    assert job.state == "succeeded" and job.attempts == 2, (out, err)
    outputs = job_outputs(job)
    gold_rows = sum(pq.read_metadata(data_dir / p).num_rows for p in outputs["gold"].values())
    assert _warehouse_rows(data_dir, job_id) == gold_rows  # exactly one copy, whatever was loaded before
    assert _operational_rows(data_dir, job_id) == job.rows_out
    assert _raw_intact(data_dir, generated.manifest_path)


def test_a_lake_that_refuses_writes_fails_the_job_clearly_and_a_retry_succeeds(data_dir):
    generated = generate_job(GenerationSpec(rows=200, seed=3), "alice")
    blocked = data_dir / "gold"
    blocked.mkdir()
    subprocess.run(["chattr", "+i", str(blocked)], check=True)  # read-only even for root: a full disk
    try:
        job = execute_job(launch_clean("alice", generated.job_id).job.job_id)
    finally:
        subprocess.run(["chattr", "-i", str(blocked)], check=True)
    assert job.state == "failed"
    assert "cannot write gold/analytics/alice/" in job.error and "ORCHESTRATOR_DATA_DIR" not in job.error
    assert _raw_intact(data_dir, generated.manifest_path)
    retry = execute_job(launch_clean("alice", generated.job_id).job.job_id)
    assert retry.state == "succeeded"


def test_a_database_that_is_down_fails_the_job_and_keeps_what_was_loaded(data_dir, monkeypatch):
    first = generate_job(GenerationSpec(rows=200, seed=3), "alice")
    loaded = execute_job(launch_clean("alice", first.job_id).job.job_id)
    assert loaded.state == "succeeded"
    before = _operational_rows(data_dir, loaded.job_id)
    assert before == loaded.rows_out

    second = generate_job(GenerationSpec(rows=200, seed=4), "alice")
    monkeypatch.setenv("ORCHESTRATOR_MYSQL_HOST", "127.0.0.1")
    monkeypatch.setenv("ORCHESTRATOR_MYSQL_PORT", "9")  # nothing listens there
    failed = execute_job(launch_clean("alice", second.job_id).job.job_id)
    assert failed.state == "failed"
    assert "operational database at 127.0.0.1:9 is not reachable" in failed.error
    monkeypatch.delenv("ORCHESTRATOR_MYSQL_HOST")
    monkeypatch.delenv("ORCHESTRATOR_MYSQL_PORT")
    assert _operational_rows(data_dir, loaded.job_id) == before
    assert execute_job(launch_clean("alice", second.job_id).job.job_id).state == "succeeded"


def test_a_load_waits_for_another_process_to_let_go_of_the_warehouse(settings):
    """DuckDB lets one process write the file: a load that meets another's hold waits and then loads."""
    path = warehouse_path(settings)
    first = {"payment_mix": pd.DataFrame({"method": ["card"], "orders": [3]})}
    load_gold(settings, "alice", "c-first", first)
    second = {"payment_mix": pd.DataFrame({"method": ["card", "paypal"], "orders": [5, 2]})}
    with duckdb_held(path, seconds=1.5):
        assert load_gold(settings, "alice", "c-second", second) == 2
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("SELECT job_id, method, orders FROM gold_payment_mix ORDER BY job_id, method")
        assert rows.fetchall() == [("c-first", "card", 3), ("c-second", "card", 5), ("c-second", "paypal", 2)]


def test_a_warehouse_held_past_the_wait_is_a_transient_failure_and_the_job_is_tried_again(
    data_dir, monkeypatch
):
    monkeypatch.setattr(warehouse, "LOCK_WAIT_SECONDS", 0.5)
    generated = generate_job(GenerationSpec(rows=60, seed=3, tables=("customers", "orders")), "alice")
    job_id = launch_clean("alice", generated.job_id).job.job_id
    path = warehouse_path(get_settings())
    path.parent.mkdir(parents=True)
    with duckdb_held(path):
        with pytest.raises(ServiceError, match="is busy"):
            load_gold(get_settings(), "alice", "c-other", {"payment_mix": pd.DataFrame({"orders": [1]})})
        job = execute_job(job_id, final_attempt=False)
    assert job.state == "queued" and job.attempts == 1  # back in the queue's hands, not failed for good
    assert f"the warehouse {path} is busy" in job.error
    job = execute_job(job_id)
    assert job.state == "succeeded" and job.attempts == 2
    gold_rows = sum(pq.read_metadata(data_dir / p).num_rows for p in job_outputs(job)["gold"].values())
    assert _warehouse_rows(data_dir, job_id) == gold_rows


def test_raw_data_that_changed_since_generation_fails_the_job(data_dir):
    generated = generate_job(GenerationSpec(rows=100, seed=3, tables=("customers", "orders")), "alice")
    raw = data_dir / generated.tables["orders"].raw_path
    raw.write_bytes(raw.read_bytes() + b'{"order_id": 99999, "total_amount"\n')
    job = execute_job(launch_clean("alice", generated.job_id).job.job_id)
    assert job.state == "failed"
    path = generated.tables["orders"].raw_path
    assert job.error == f"{path} changed since it was generated (checksum differs from the manifest)"
    assert not (data_dir / "silver").exists()
