"""The scheduler: when each route's queue is drained, that routes due at the same minute are all drained, and
that a job a click is already cleaning is not cleaned a second time by a scheduled drain. Real queues, job
store and cleaning in a data directory of the test's own; only the clock and the sleep are the test's."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchestrator import service, worker
from orchestrator.auth import open_user_store
from orchestrator.cli import main
from orchestrator.config import get_settings
from orchestrator.generation.spec import GenerationSpec
from orchestrator.jobs import routing
from orchestrator.jobs.store import JobHeld, JobStore, new_job_id
from orchestrator.queues import open_queue
from orchestrator.service import execute_job, generate_job, launch_clean
from tests.gen_helpers import live_schedulers, start_scheduler, stored_job

ROOT = Path(__file__).resolve().parents[1]


class Clock:
    """The scheduler's clock, moved on by its sleeps alone."""

    def __init__(self, at: datetime) -> None:
        self.at = at
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.at += timedelta(seconds=seconds)


def _messages(route: str) -> int:
    """Messages on the route's queue, visible or hidden."""
    return open_queue(routing.QUEUE_NAMES[route], get_settings()).approximate_count()


@pytest.mark.parametrize(
    ("now", "small", "large"),
    [
        ("2026-12-04 19:03:20", "2026-12-04 19:10", "2026-12-05 02:00"),
        ("2026-12-04 19:10:00", "2026-12-04 19:20", "2026-12-05 02:00"),
        ("2026-12-04 01:55:00", "2026-12-04 02:00", "2026-12-04 02:00"),
        ("2026-12-04 02:00:00", "2026-12-04 02:10", "2026-12-05 02:00"),
        ("2026-12-04 23:59:59", "2026-12-05 00:00", "2026-12-05 02:00"),
    ],
)
def test_small_batches_run_every_ten_minutes_and_large_ones_daily_at_two(data_dir, now, small, large):
    at = datetime.fromisoformat(now).replace(tzinfo=UTC)
    due = {route: f"{when:%Y-%m-%d %H:%M}" for route, when in worker.next_runs(at, get_settings()).items()}
    assert due == {"small": small, "large": large}


def test_a_configured_schedule_moves_the_runs(data_dir, monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_SMALL_EVERY_MINUTES", "45")
    monkeypatch.setenv("ORCHESTRATOR_LARGE_DAILY_AT_UTC", "21:30")
    due = worker.next_runs(datetime(2026, 12, 4, 19, 3, tzinfo=UTC), get_settings())
    assert {route: f"{when:%H:%M}" for route, when in due.items()} == {"small": "19:30", "large": "21:30"}


def _store_as_alice(values: dict[str, str]) -> None:
    """alice, an administrator, saves ``values`` as the Settings page does."""
    users = open_user_store()
    if not users.has_users():
        users.create_first_admin("alice", "correct horse battery", "correct horse battery")
    store = JobStore.default()
    try:
        store.set_settings(values, user="alice")
    finally:
        store.close()


def test_the_next_runs_follow_a_schedule_an_administrator_stored(data_dir):
    _store_as_alice({"ORCHESTRATOR_SMALL_EVERY_MINUTES": "720", "ORCHESTRATOR_LARGE_DAILY_AT_UTC": "21:30"})
    small, large = worker.next_run("small", get_settings()), worker.next_run("large", get_settings())
    assert f"{small:%H:%M:%S}" in {"00:00:00", "12:00:00"}  # twice a day
    assert f"{large:%H:%M}" == "21:30"
    assert 0 < (large - datetime.now(UTC)).total_seconds() <= 24 * 3600


def test_a_waiting_scheduler_follows_a_schedule_stored_meanwhile_without_a_restart(data_dir):
    clock, logged = Clock(datetime(2026, 12, 4, 19, 3, tzinfo=UTC)), []

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.slept) == 1:  # while it waits for 19:10, the large batches move to 19:20 ...
            _store_as_alice(
                {"ORCHESTRATOR_SMALL_EVERY_MINUTES": "45", "ORCHESTRATOR_LARGE_DAILY_AT_UTC": "19:20"}
            )

    worker.run_forever(now=clock.now, sleep=sleep, log=logged.append, cycles=1)
    assert logged == [  # ... and the small ones to every 45 minutes, the next at 19:30
        "next: small queue at 2026-12-04 19:10 UTC",
        "next: large queue at 2026-12-04 19:20 UTC",
    ]
    assert clock.at == datetime(2026, 12, 4, 19, 20, tzinfo=UTC)  # it drained at 19:20, not at 19:10
    assert max(clock.slept) <= worker.RESCHEDULE_SECONDS


def test_at_two_both_queues_are_drained_not_only_the_small_one(data_dir, monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_SMALL_BATCH_MAX_ROWS", "1000")
    small = generate_job(GenerationSpec(rows=20, seed=1), "alice")
    large = generate_job(GenerationSpec(rows=200, seed=2), "alice")
    queued = {
        "small": launch_clean("alice", small.job_id).job,
        "large": launch_clean("alice", large.job_id, engine="pandas").job,
    }
    assert {route: job.route for route, job in queued.items()} == {"small": "small", "large": "large"}
    clock, logged, heard = Clock(datetime(2026, 12, 5, 1, 55, tzinfo=UTC)), [], set()

    def sleep(seconds: float) -> None:  # while it waits, the pages see it and what it will drain when
        clock.sleep(seconds)
        heard.update((s.routes, s.next_at) for s in live_schedulers())

    worker.run_forever(now=clock.now, sleep=sleep, log=logged.append, cycles=1)
    assert sum(clock.slept) == 300.0  # read the schedule again every minute meanwhile
    assert heard == {(("small", "large"), datetime(2026, 12, 5, 2, 0, tzinfo=UTC))}
    assert live_schedulers() == []  # it stopped cleanly: forgotten at once
    assert logged[0] == "next: small and large queues at 2026-12-05 02:00 UTC"
    assert {route: stored_job(job.job_id).state for route, job in queued.items()} == {
        "small": "succeeded",
        "large": "succeeded",
    }
    assert _messages("small") == _messages("large") == 0


def test_a_job_another_worker_holds_is_left_to_it_and_taken_over_once_its_hold_ends(data_dir):
    generated = generate_job(GenerationSpec(rows=40, seed=3), "alice")
    job_id = launch_clean("alice", generated.job_id).job.job_id
    store = JobStore.default()
    try:  # a click's worker has begun the job and holds it for one second
        claimed = store.start(job_id, engine="pandas", lease_seconds=1)
    finally:
        store.close()
    with pytest.raises(JobHeld, match=f"job {job_id} is running in another worker"):
        execute_job(job_id)
    assert worker.drain("small", visibility_timeout=1) == []
    assert stored_job(job_id) == claimed  # neither run touched it: one attempt, still the first worker's
    assert _messages("small") == 1  # kept for whoever finds the job unfinished later

    time.sleep(1.2)  # the first worker never finished: its hold and the message's timeout both end
    [finished] = worker.drain("small", visibility_timeout=60)
    assert (finished.job_id, finished.state, finished.attempts) == (job_id, "succeeded", 2)
    assert _messages("small") == 0


def test_a_job_queued_for_the_schedule_waits_for_the_scheduler_unless_cleaned_now(
    data_dir, monkeypatch, capsys
):
    started: list[str] = []
    monkeypatch.setattr(service, "start_in_background", started.append)  # a click's process, left to the test
    first, second = (generate_job(GenerationSpec(rows=20, seed=seed), "alice").job_id for seed in (4, 5))

    assert main(["run", first, "--scheduled"]) == 0
    out = capsys.readouterr().out
    scheduled = out.split(":")[0]
    assert f"{scheduled}: queued (route small, engine pandas)" in out
    assert re.search(r"the scheduler cleans it at \d{4}-\d\d-\d\d \d\d:\d0 UTC", out)
    assert main(["run", first, "--scheduled"]) == 0  # asked again: the same job, still waiting
    assert capsys.readouterr().out.startswith(f"{scheduled}: queued")
    assert started == []
    [cleaned] = worker.drain("small")  # the scheduled run
    assert (cleaned.job_id, cleaned.state, cleaned.attempts) == (scheduled, "succeeded", 1)

    assert main(["run", second, "--scheduled"]) == 0
    waiting = capsys.readouterr().out.split(":")[0]
    assert main(["run", second]) == 0  # changed one's mind: clean it now
    assert started == [waiting] and capsys.readouterr().out.startswith(f"{waiting}: queued")
    with pytest.raises(SystemExit) as refused:
        main(["run", second, "--wait", "--scheduled"])
    assert refused.value.code == 2
    assert "--scheduled: not allowed with argument --wait" in capsys.readouterr().err
    assert stored_job(waiting).attempts == 0  # nothing ran it yet: the refused request changed nothing


def test_the_scheduler_fails_a_generation_whose_worker_was_lost_and_tells_its_owner(data_dir):
    an_hour_ago = JobStore.default(clock=lambda: time.time() - 3600)
    try:  # a generation whose worker died an hour ago, without a word since
        lost = an_hour_ago.create_job(new_job_id("generate"), "alice", "generate")[0]
        an_hour_ago.start(lost.job_id)
    finally:
        an_hour_ago.close()
    logged, clock = [], Clock(datetime(2026, 12, 5, 9, 55, tzinfo=UTC))
    worker.run_forever(now=clock.now, sleep=clock.sleep, log=logged.append, cycles=1)
    ended = stored_job(lost.job_id)
    assert ended.state == "failed" and ended.error.startswith(service.GENERATION_LOST)
    assert f"{lost.job_id}: failed ({ended.error})" in logged


def test_a_second_click_after_the_first_run_ended_runs_nothing_and_says_so(data_dir):
    generated = generate_job(GenerationSpec(rows=20, seed=6), "alice")
    job_id = launch_clean("alice", generated.job_id).job.job_id
    first = execute_job(job_id)  # the first click's process
    assert first.state == "succeeded"
    late = subprocess.run(  # the second click's process, started before the first ended
        [sys.executable, "-m", "orchestrator", "worker", "--job", job_id],
        cwd=ROOT,
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (late.returncode, late.stdout.strip(), late.stderr) == (0, f"{job_id}: succeeded", "")
    assert stored_job(job_id) == first  # not run again, not touched


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_stopped_scheduler_leaves_quietly_and_is_forgotten_at_once(data_dir, stop):
    scheduler = start_scheduler()
    scheduler.send_signal(stop)
    _, err = scheduler.communicate(timeout=30)
    assert (scheduler.returncode, err) == (0, "")  # no traceback
    assert live_schedulers() == []
