"""The scheduled drain that Data Factory's daily trigger runs on a cluster (notebooks/drain_queue.py), run
here as the script it also is: the worker's code drains the large queue, a large batch cleaned in the
script's own Spark session, each job's record and queue message kept as the worker keeps them; the small
queue is left to the Azure Functions app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from orchestrator.config import get_settings
from orchestrator.generation.spec import GenerationSpec
from orchestrator.jobs import routing
from orchestrator.jobs.store import JobStore
from orchestrator.loading.warehouse import warehouse_path
from orchestrator.queues import open_queue
from orchestrator.service import generate_job, launch_clean

REPOSITORY = Path(__file__).resolve().parents[1]
NOTEBOOK = REPOSITORY / "notebooks" / "drain_queue.py"


def _drain(route: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [sys.executable, str(NOTEBOOK), "--route", route]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPOSITORY, timeout=600)


@pytest.fixture
def queued(data_dir, monkeypatch):
    """A large and a small cleaning job waiting on their queues; the environment a drain runs with."""
    monkeypatch.setenv("ORCHESTRATOR_SMALL_BATCH_MAX_ROWS", "1000")
    large = launch_clean("alice", generate_job(GenerationSpec(rows=150, seed=6), "alice").job_id).job
    small = launch_clean(
        "bob", generate_job(GenerationSpec(rows=40, seed=2, tables=("orders",)), "bob").job_id
    ).job
    assert (large.route, small.route) == ("large", "small")
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY), "SPARK_LOCAL_IP": "127.0.0.1"}
    return large, small, env


def _state(job_id: str) -> str:
    store = JobStore.default()
    try:
        return store.get(job_id).state
    finally:
        store.close()


def test_a_scheduled_drain_cleans_the_large_queue_in_its_own_spark_session(queued):
    large, small, env = queued
    done = _drain("large", env)
    assert done.returncode == 0, done.stderr[-2000:]
    printed = json.loads(done.stdout.strip().splitlines()[-1])
    assert printed == {
        "route": "large",
        "jobs": [{"job_id": large.job_id, "state": "succeeded", "error": None}],
    }
    assert _state(large.job_id) == "succeeded" and _state(small.job_id) == "queued"
    settings = get_settings()
    assert open_queue(routing.QUEUE_NAMES["large"], settings).receive(1, visibility_timeout=1) == []
    with duckdb.connect(str(warehouse_path(settings)), read_only=True) as con:
        loaded = con.execute(
            "SELECT count(*) FROM gold_daily_revenue WHERE job_id = ?", [large.job_id]
        ).fetchone()
    assert loaded[0] > 0


def test_an_unknown_route_is_refused_naming_it_and_drains_nothing(queued):
    large, small, env = queued
    done = _drain("medium", env)
    assert done.returncode == 1
    assert "route: must be one of small, large, got 'medium'" in done.stderr
    assert _state(large.job_id) == _state(small.job_id) == "queued"


def test_the_cluster_refuses_the_small_queue_which_the_function_app_drains(queued):
    large, small, env = queued
    done = _drain("small", env)
    assert done.returncode == 1
    assert "route: small batches are drained by the Azure Functions app" in done.stderr
    assert _state(large.job_id) == _state(small.job_id) == "queued"
