"""Recover, do not wait: a worker killed while it cleans a job leaves it to the next worker at once. Real
workers (``python -m orchestrator worker --once``) killed with SIGKILL, a real local Spark run left behind as
an orphan, the real job store, queues and lake in a data directory of the test's own; a missed scheduled
drain caught up once by a scheduler whose clock and sleep alone are the test's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import psutil
import pyarrow.parquet as pq
import pytest

from orchestrator import worker
from orchestrator.config import get_settings
from orchestrator.generation.spec import GenerationSpec
from orchestrator.jobs.holders import Lease, alive, holder_gone, this_worker
from orchestrator.jobs.store import JobStore
from orchestrator.loading.warehouse import warehouse_path
from orchestrator.recovery import recover
from orchestrator.runners.local_spark import runs_dir
from orchestrator.service import generate_job, job_outputs, launch_clean
from tests.gen_helpers import stored_job
from tests.test_scheduler import Clock

ROOT = Path(__file__).resolve().parents[1]
LEASE = 6  # seconds: a holder's lease in these tests


@pytest.fixture
def env(data_dir, monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_SMALL_BATCH_MAX_ROWS", "100")
    monkeypatch.setenv("ORCHESTRATOR_LEASE_SECONDS", str(LEASE))
    return data_dir


def _worker(data_dir: Path) -> subprocess.Popen:
    """``worker --once``, as an operator starts it, in this test's data directory."""
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "worker", "--once"],
        cwd=ROOT,
        env={**os.environ, "ORCHESTRATOR_DATA_DIR": str(data_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_when(process: subprocess.Popen, reached, what: str, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not reached():
        assert process.poll() is None, f"the worker ended before {what}: {process.communicate()}"
        assert time.monotonic() < deadline, f"the job never reached {what}"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()


def _warehouse_rows(job_id: str) -> int:
    with duckdb.connect(str(warehouse_path(get_settings())), read_only=True) as con:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        return sum(
            con.execute(f"SELECT count(*) FROM {t} WHERE job_id = ?", [job_id]).fetchone()[0] for t in tables
        )


def _in_group(pgid: int) -> list[int]:
    """Processes left in the process group ``pgid`` (a run's notebook and its JVM)."""
    left = []
    for process in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(process.info["pid"]) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                left.append(process.info["pid"])
        except ProcessLookupError:
            continue
    return left


@pytest.mark.parametrize("orphan", ["finished", "still running"])
def test_a_spark_run_whose_worker_was_killed_is_followed_and_loaded_once_without_a_second_run(env, orphan):
    generated = generate_job(GenerationSpec(rows=60, seed=11, error_rate=0.3), "alice")
    launched = launch_clean("alice", generated.job_id)
    job_id = launched.job.job_id
    assert (launched.job.route, launched.engine) == ("large", "spark")

    first = _worker(env)  # takes the job from the large queue and starts a Spark run in a child process
    _kill_when(first, lambda: "child" in (stored_job(job_id).holder or {}), "its Spark run")
    lost = stored_job(job_id)
    child = lost.holder["child"]
    assert (lost.state, lost.attempts, child["run_id"]) == ("running", 1, lost.remote_run["run_id"])
    assert alive(child["pid"], child["started"])  # the run goes on as an orphan
    if orphan == "finished":
        deadline = time.monotonic() + 240
        while alive(child["pid"], child["started"]):
            assert time.monotonic() < deadline, "the orphaned run never ended"
            time.sleep(0.2)

    restarted = _worker(env)  # at once: the holder's process is dead, no lease or message to wait for
    out, err = restarted.communicate(timeout=300)
    assert restarted.returncode == 0, err
    job = stored_job(job_id)
    assert job.state == "succeeded", (job.error, out, err)
    assert job.attempts == 1  # no second attempt ...
    assert job.remote_run["run_id"] == child["run_id"] and job.remote_run["state"] == "succeeded"
    runs = [log.name for log in runs_dir(get_settings()).glob("*.log")]
    assert runs == [f"{child['run_id']}.log"]  # ... and no second run
    assert f"{job_id}: its holder was gone; its Spark run {child['run_id']} followed to the end" in out
    assert job.holder["worker"] != lost.holder["worker"]  # the second worker finished it
    assert not _in_group(child["pid"])  # no JVM outlives its job
    outputs = job_outputs(job)  # the manifest, written last
    gold_rows = sum(pq.read_metadata(env / path).num_rows for path in outputs["gold"].values())
    assert _warehouse_rows(job_id) == gold_rows  # loaded once
    assert job.rows_out == sum(pq.read_metadata(env / path).num_rows for path in outputs["silver"].values())


def test_a_job_whose_worker_died_in_the_pandas_path_is_tried_again_at_once(env):
    generated = generate_job(GenerationSpec(rows=1500, seed=7), "alice")
    job_id = launch_clean("alice", generated.job_id, engine="pandas").job.job_id
    first = _worker(env)
    _kill_when(first, lambda: "clean" in stored_job(job_id).timings, "its cleaning")
    assert (stored_job(job_id).state, stored_job(job_id).attempts) == ("running", 1)

    started = time.monotonic()
    restarted = _worker(env)  # its queue message stays hidden for 15 minutes: the job store tells
    out, err = restarted.communicate(timeout=180)
    assert restarted.returncode == 0, err
    job = stored_job(job_id)
    assert (job.state, job.attempts) == ("succeeded", 2), (job.error, out, err)
    assert "its holder was gone (no run to follow: it cleaned in its own process); attempt 2" in out
    assert time.monotonic() - started < 120
    assert _warehouse_rows(job_id) == sum(
        pq.read_metadata(env / path).num_rows for path in job_outputs(job)["gold"].values()
    )


def _held_elsewhere(job_id: str, lease_seconds: float) -> None:
    """A worker on another host holds the job, its lease running ``lease_seconds`` from now."""
    store = JobStore.default()
    try:
        holder = {"worker": "elsewhere-1-1", "host": "elsewhere", "pid": 1, "started": 1.0}
        store.start(job_id, engine="pandas", lease_seconds=lease_seconds, holder=holder)
    finally:
        store.close()


def test_a_holder_elsewhere_is_gone_once_its_lease_was_not_renewed_and_its_job_is_then_recovered(env):
    generated = generate_job(GenerationSpec(rows=40, seed=3), "alice")
    job_id = launch_clean("alice", generated.job_id, engine="pandas").job.job_id
    _held_elsewhere(job_id, LEASE)
    logged: list[str] = []
    assert not holder_gone(stored_job(job_id))  # its process cannot be seen from here: its lease tells
    assert recover(log=logged.append) == [] and logged == []
    time.sleep(LEASE + 0.2)  # no renewal: the holder is gone
    assert holder_gone(stored_job(job_id))
    [done] = recover(log=logged.append)
    assert (done.job.job_id, done.job.state, done.job.attempts) == (job_id, "succeeded", 2)
    assert logged == [done.line()]


def test_a_live_holder_renews_its_lease_with_a_heartbeat_and_loses_it_to_a_take_over(env):
    generated = generate_job(GenerationSpec(rows=40, seed=3), "alice")
    job_id = launch_clean("alice", generated.job_id, engine="pandas").job.job_id
    me = this_worker()
    store = JobStore.default()
    try:
        first = store.start(job_id, engine="pandas", lease_seconds=LEASE, holder=me)
        with Lease(job_id, me["worker"], LEASE) as lease:
            time.sleep(LEASE * 0.6)
            renewed = store.get(job_id)
            assert renewed.lease_until > first.lease_until and not holder_gone(renewed)
            other = {"worker": "elsewhere-1-1", "host": "elsewhere", "pid": 1, "started": 1.0}
            store.take_over(job_id, gone=me["worker"], holder=other, lease_seconds=LEASE)
            deadline = time.monotonic() + LEASE
            while not lease.lost:
                assert time.monotonic() < deadline, "the heartbeat never found its hold taken"
                time.sleep(0.1)
        assert store.get(job_id).attempts == 1  # taking over keeps the attempt
    finally:
        store.close()


def test_a_scheduler_started_after_a_drain_time_it_missed_drains_that_queue_once_and_says_so(env):
    generated = generate_job(GenerationSpec(rows=200, seed=2), "alice")
    job = launch_clean("alice", generated.job_id, engine="pandas", scheduled=True).job
    assert job.route == "large"
    store = JobStore.default()
    try:  # the last scheduler served the 02:00 drain three days ago, then stopped
        store.record_served("large", datetime(2026, 12, 1, 2, 0, tzinfo=UTC))
        store.record_served("small", datetime(2026, 12, 4, 9, 0, tzinfo=UTC))
    finally:
        store.close()
    clock, logged = Clock(datetime(2026, 12, 4, 9, 3, tzinfo=UTC)), []
    worker.run_forever(now=clock.now, sleep=clock.sleep, log=logged.append, cycles=1)
    missed = [line for line in logged if line.startswith("missed:")]
    assert missed == [  # once, for the last of the three days' drains
        "missed: the large queue drain at 2026-12-04 02:00 UTC was not served "
        "(last served 2026-12-01 02:00 UTC); draining it now"
    ]
    assert logged[1] == f"{job.job_id}: succeeded"
    assert stored_job(job.job_id).state == "succeeded"
    assert clock.at == datetime(2026, 12, 4, 9, 10, tzinfo=UTC)  # then on with its schedule

    later = Clock(clock.at + timedelta(minutes=1))
    logged.clear()
    worker.run_forever(now=later.now, sleep=later.sleep, log=logged.append, cycles=1)
    assert not [line for line in logged if line.startswith("missed:")]  # served: nothing to catch up
