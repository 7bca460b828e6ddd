"""The job store, run against SQLite and the real MariaDB server: states, launches, ownership, events."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pymysql
import pytest

from orchestrator.errors import AlreadyExists, Busy, InvalidInput, NotFound
from orchestrator.jobs import IllegalTransition, JobStore, MySQLSettings, new_job_id
from orchestrator.jobs.store import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    SCHEDULER_SILENT_SECONDS,
    SUCCEEDED,
    JobCancelled,
    JobHeld,
)
from orchestrator.storage.paths import check_job_id
from tests.mariadb import MARIADB, server


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


StoreFactory = Callable[[], JobStore]


@pytest.fixture(params=["sqlite", "mysql"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens stores on one empty database (each call a new connection, as another process would)."""
    clock = FakeClock()
    opened: list[JobStore] = []
    if request.param == "sqlite":

        def factory() -> JobStore:
            opened.append(JobStore.sqlite(tmp_path / "jobs.sqlite", clock=clock))
            return opened[-1]
    else:
        settings = request.getfixturevalue("mysql_database")

        def factory() -> JobStore:
            opened.append(JobStore.mysql(settings, clock=clock))
            return opened[-1]

    factory.clock = clock  # type: ignore[attr-defined]
    yield factory
    for store in opened:
        store.close()
    if request.param == "mysql":
        with pymysql.connect(database=settings.database, autocommit=True, **MARIADB) as conn:
            conn.cursor().execute("DELETE FROM jobs")
            conn.cursor().execute("DELETE FROM job_events")


@pytest.fixture
def store(open_store: StoreFactory) -> JobStore:
    return open_store()


def _clean(store: JobStore, parent: str = "g-parent", user: str = "alice", **kwargs: object):
    return store.create_job(new_job_id("clean"), user, "clean", parent_id=parent, **kwargs)


def test_a_new_job_is_queued_with_what_was_asked(store: JobStore, open_store: StoreFactory) -> None:
    job, created = _clean(store, route="small", rows_in=1200, params={"tables": ["orders"]})
    assert created
    assert (job.state, job.route, job.rows_in, job.params, job.attempts) == (
        QUEUED,
        "small",
        1200,
        {"tables": ["orders"]},
        0,
    )
    assert job.created_at.timestamp() == open_store.clock.now
    assert (job.started_at, job.finished_at, job.error, job.engine) == (None, None, None, None)
    assert open_store().get(job.job_id) == job  # another connection reads the same record


def test_bad_requests_name_the_field_and_store_nothing(store: JobStore) -> None:
    cases = [
        (lambda: store.create_job("Bad Id", "alice", "clean", parent_id="g-1"), "job_id"),
        (lambda: store.create_job("c-one", "Alice", "clean", parent_id="g-1"), "user"),
        (lambda: store.create_job("c-one", "alice", "clean"), "parent_id"),
        (lambda: store.create_job("c-one", "alice", "export"), "kind"),
        (lambda: store.create_job("c-one", "alice", "clean", parent_id="g-1", route="huge"), "route"),
        (lambda: store.create_job("c-one", "alice", "clean", parent_id="g-1", rows_in=-1), "rows_in"),
        (
            lambda: store.create_job("c-one", "alice", "clean", parent_id="g-1", params={"x": {1, 2}}),
            "params",
        ),
    ]
    for call, field in cases:
        with pytest.raises(InvalidInput) as error:
            call()
        assert error.value.field == field
    assert store.list_jobs("alice", is_admin=True) == []


def test_a_job_id_is_used_once(store: JobStore) -> None:
    store.create_job("g-one", "alice", "generate")
    with pytest.raises(AlreadyExists):
        store.create_job("g-one", "bob", "generate")
    assert [j.user for j in store.list_jobs("alice", is_admin=True)] == ["alice"]


def test_a_second_launch_for_the_same_parent_returns_the_running_job(store: JobStore) -> None:
    first, created = _clean(store)
    again, created_again = _clean(store)
    assert created and not created_again
    assert again.job_id == first.job_id
    other_parent, created_other = _clean(store, parent="g-other")
    assert created_other and other_parent.job_id != first.job_id

    store.start(first.job_id)
    assert _clean(store)[0].job_id == first.job_id  # still active while running
    store.succeed(first.job_id, rows_out=10, rows_quarantined=0)
    rerun, created_rerun = _clean(store)
    assert created_rerun and rerun.job_id != first.job_id  # a finished job can be run again
    assert len(store.list_jobs("alice", parent_id="g-parent")) == 2


def test_simultaneous_launches_from_many_connections_create_one_job(open_store: StoreFactory) -> None:
    stores = [open_store() for _ in range(6)]
    results: list[tuple[str, bool]] = []
    barrier = threading.Barrier(len(stores))

    def launch(store: JobStore) -> None:
        barrier.wait()
        try:
            job, created = _clean(store)
        except Exception as exc:  # asserted on below, in the test's own thread
            results.append((repr(exc), False))
        else:
            results.append((job.job_id, created))

    threads = [threading.Thread(target=launch, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == len(stores)
    assert sum(created for _, created in results) == 1
    assert len({job_id for job_id, _ in results}) == 1, results
    assert len(stores[0].list_jobs("alice")) == 1


def _generation(store: JobStore, user: str = "alice") -> str:
    return store.create_job(new_job_id("generate"), user, "generate", active_limit=2)[0].job_id


def _refused_naming(store: JobStore, *active: str) -> None:
    """Another generation of alice's is refused, naming the ones she has queued or running."""
    with pytest.raises(Busy) as refused:
        _generation(store)
    named = re.search(r"alice has 2 generations queued or running \((.*?)\)", str(refused.value))
    assert named and sorted(named.group(1).split(", ")) == sorted(active), refused.value


def test_a_user_has_at_most_the_limit_of_generations_active_and_a_refusal_records_nothing(
    store: JobStore,
) -> None:
    first, second = _generation(store), _generation(store)
    _refused_naming(store, first, second)
    assert sorted(j.job_id for j in store.list_jobs("alice")) == sorted([first, second])
    bob = _generation(store, "bob")  # another user's generations are theirs
    assert store.get(bob).state == "queued"

    store.start(first)
    store.succeed(first, rows_out=10, rows_quarantined=0)  # a finished one frees its place
    third = _generation(store)
    store.cancel(second, user="alice")  # and so does a cancelled one
    fourth = _generation(store)
    _refused_naming(store, third, fourth)
    assert store.create_job(new_job_id("generate"), "alice", "generate")[1]  # unlimited when not asked


def test_simultaneous_generations_from_many_connections_stop_at_the_limit(open_store: StoreFactory) -> None:
    stores = [open_store() for _ in range(6)]
    results: list[str] = []
    barrier = threading.Barrier(len(stores))

    def launch(store: JobStore) -> None:
        barrier.wait()
        try:
            results.append(_generation(store))
        except Exception as exc:  # asserted on below, in the test's own thread
            results.append(type(exc).__name__)

    threads = [threading.Thread(target=launch, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    created = [r for r in results if r.startswith("g-")]
    assert (len(results), results.count("Busy"), len(created)) == (6, 4, 2), results
    assert sorted(j.job_id for j in stores[0].list_jobs("alice")) == sorted(created)


def test_a_successful_run_records_counts_timings_and_one_notification(
    store: JobStore, open_store: StoreFactory
) -> None:
    job, _ = _clean(store, route="small", rows_in=100)
    open_store.clock.advance(5)
    running = store.start(job.job_id, engine="pandas")
    assert (running.state, running.attempts, running.engine) == (RUNNING, 1, "pandas")
    assert running.started_at.timestamp() == open_store.clock.now
    store.record_stage(job.job_id, "read", 0.5)
    open_store.clock.advance(2)
    done = store.succeed(job.job_id, rows_out=90, rows_quarantined=10, timings={"clean": 1.25})
    assert (done.state, done.rows_out, done.rows_quarantined) == (SUCCEEDED, 90, 10)
    assert done.timings == {"read": 0.5, "clean": 1.25}
    assert done.finished_at.timestamp() == open_store.clock.now

    assert store.succeed(job.job_id, rows_out=90, rows_quarantined=10) == done  # a redelivered finish
    [event] = store.list_unseen("alice")
    assert (event.job_id, event.kind, event.seen) == (job.job_id, "Cleaning complete", False)
    assert "90 rows out, 10 quarantined" in event.message


def test_a_finished_generation_announces_the_rows_it_wrote(store: JobStore) -> None:
    job, _ = store.create_job(new_job_id("generate"), "alice", "generate")
    store.start(job.job_id)
    store.succeed(job.job_id, rows_out=3622, rows_quarantined=0)
    [event] = store.list_unseen("alice")
    assert (event.kind, event.message) == ("Generation complete", f"{job.job_id}: 3,622 raw rows written")


def test_illegal_transitions_raise_and_change_nothing(store: JobStore) -> None:
    job, _ = _clean(store)
    with pytest.raises(IllegalTransition) as error:
        store.succeed(job.job_id, rows_out=1, rows_quarantined=0)
    assert error.value.field == "state"
    assert store.get(job.job_id) == job
    with pytest.raises(InvalidInput, match="only while it runs"):
        store.record_stage(job.job_id, "read", 1.0)

    cancelled = store.cancel(job.job_id)
    assert cancelled.state == CANCELLED
    assert store.cancel(job.job_id) == cancelled  # a double click
    for move in (lambda: store.start(job.job_id), lambda: store.fail(job.job_id, "late")):
        with pytest.raises(IllegalTransition, match="cancelled"):
            move()
    assert store.get(job.job_id) == cancelled
    assert store.list_unseen("alice") == []
    with pytest.raises(NotFound):
        store.start("c-missing")


def test_a_worker_lost_mid_run_is_replaced_and_the_job_finishes(
    store: JobStore, open_store: StoreFactory
) -> None:
    job, _ = _clean(store)
    first = store.start(job.job_id, engine="pandas")
    store.record_stage(job.job_id, "read", 3.0)
    open_store.clock.advance(300)  # the worker died; the message came back after its timeout
    second = open_store().start(job.job_id)
    assert (second.state, second.attempts, second.engine) == (RUNNING, 2, "pandas")
    assert second.started_at == first.started_at
    done = open_store().succeed(job.job_id, rows_out=5, rows_quarantined=0)
    assert done.state == SUCCEEDED
    assert done.attempts == 2
    assert len(store.list_unseen("alice")) == 1


def test_an_attempt_holds_the_job_for_its_lease_and_a_second_start_changes_nothing(
    store: JobStore, open_store: StoreFactory
) -> None:
    job, _ = _clean(store)
    first = store.start(job.job_id, engine="pandas", lease_seconds=900)  # a click's worker
    assert first.lease_until == first.started_at + timedelta(seconds=900)
    open_store.clock.advance(899)
    with pytest.raises(JobHeld, match="running in another worker") as held:
        open_store().start(job.job_id, lease_seconds=900)  # the scheduled drain, a minute before the end
    assert held.value.until == first.lease_until
    assert open_store().get(job.job_id) == first
    open_store.clock.advance(2)  # the first worker is lost: its lease has ended
    second = open_store().start(job.job_id, lease_seconds=900)
    assert (second.attempts, second.engine) == (2, "pandas")
    assert second.lease_until == first.lease_until + timedelta(seconds=901)
    with pytest.raises(InvalidInput, match="lease_seconds"):
        store.start(job.job_id, lease_seconds=0)
    assert store.get(job.job_id) == second


def test_a_running_job_tells_how_far_it_has_come_until_it_is_cancelled(
    store: JobStore, open_store: StoreFactory
) -> None:
    job, _ = store.create_job(new_job_id("generate"), "alice", "generate")
    with pytest.raises(InvalidInput, match="queued; progress is told only while it runs"):
        store.record_progress(job.job_id, 0.1, "customers: 100 rows")
    store.start(job.job_id)
    told = store.record_progress(job.job_id, 0.25, "orders: 250 of 1,000")
    assert (told.progress, told.progress_text) == (0.25, "orders: 250 of 1,000")
    assert open_store().get(job.job_id) == told  # the page that follows it, in another process
    with pytest.raises(InvalidInput, match="done"):
        store.record_progress(job.job_id, 1.5, "orders: 1,500 of 1,000")
    assert store.get(job.job_id) == told
    open_store().cancel(job.job_id, user="alice")  # the owner presses Stop
    with pytest.raises(JobCancelled):  # the generation's next chunk stops there
        store.record_progress(job.job_id, 0.5, "orders: 500 of 1,000")
    stopped = store.get(job.job_id)
    assert (stopped.state, stopped.progress, stopped.progress_text) == (CANCELLED, 0.25, told.progress_text)


def test_generations_not_heard_from_for_a_while_are_failed_and_their_owners_told(
    store: JobStore, open_store: StoreFactory
) -> None:
    def generation(user: str = "alice") -> str:
        return store.create_job(new_job_id("generate"), user, "generate")[0].job_id

    lost, never_started, busy, done = generation(), generation("bob"), generation(), generation()
    for job_id in (lost, busy, done):
        store.start(job_id)
    store.succeed(done, rows_out=10, rows_quarantined=0)
    cleaning, _ = _clean(store)
    store.start(cleaning.job_id)
    open_store.clock.advance(500)
    store.record_progress(busy, 0.5, "orders: 5 of 10")  # its worker is still at it
    open_store.clock.advance(101)
    ended = open_store().fail_silent("generate", 600, "no worker finished it")
    assert sorted(job.job_id for job in ended) == sorted([lost, never_started])
    assert {job.error for job in ended} == {
        "no worker finished it (no word from its worker since 2023-11-14 22:13 UTC)"
    }
    assert {job_id: store.get(job_id).state for job_id in (lost, never_started, busy, done)} == {
        lost: FAILED,
        never_started: FAILED,
        busy: RUNNING,
        done: SUCCEEDED,
    }
    assert store.get(cleaning.job_id).state == RUNNING  # a cleaning waits for its queue's redelivery
    told = {(e.user, e.job_id, e.kind) for user in ("alice", "bob") for e in store.list_unseen(user)}
    assert told == {
        ("alice", done, "Generation complete"),
        ("alice", lost, "Generation failed"),
        ("bob", never_started, "Generation failed"),
    }
    assert open_store().fail_silent("generate", 600, "no worker finished it") == []  # once


def test_the_spark_run_cleaning_a_job_is_kept_with_it(store: JobStore, open_store: StoreFactory) -> None:
    job, _ = _clean(store)
    run = {
        "service": "databricks",
        "run_id": "4711",
        "url": "https://adb-1.azuredatabricks.net/#job/0/run/4711",
    }
    with pytest.raises(InvalidInput, match="queued; a run is told once the job started"):
        store.record_remote_run(job.job_id, **run, state="queued")
    store.start(job.job_id, engine="spark")
    store.record_remote_run(job.job_id, **run, state="queued")
    told = open_store().record_remote_run(job.job_id, **run, state="running")  # the worker, polling
    assert told.remote_run == {**run, "state": "running"}
    with pytest.raises(InvalidInput, match="run_id"):
        store.record_remote_run(job.job_id, **{**run, "run_id": ""}, state="running")
    done = store.succeed(job.job_id, rows_out=1, rows_quarantined=0)
    assert open_store().get(job.job_id).remote_run == done.remote_run == told.remote_run  # kept
    store.cancel((other := _clean(store, parent="g-other")[0]).job_id)
    with pytest.raises(InvalidInput, match="cancelled; a run"):  # cancelled before it started: no run
        store.record_remote_run(other.job_id, **run, state="running")
    stopping, _ = _clean(store, parent="g-third")
    store.start(stopping.job_id, engine="spark")
    store.record_remote_run(stopping.job_id, **run, state="running")
    store.cancel(stopping.job_id)  # its run ends after the job: the worker says how
    ended = store.record_remote_run(stopping.job_id, **run, state="cancelled")
    assert (ended.state, ended.remote_run["state"]) == (CANCELLED, "cancelled")


def test_a_failed_attempt_waits_for_a_retry_and_a_final_failure_tells_the_owner(store: JobStore) -> None:
    job, _ = _clean(store)
    store.start(job.job_id, lease_seconds=900)
    waiting = store.retry(job.job_id, "ValueError: broken row")
    assert (waiting.state, waiting.error, waiting.lease_until) == (QUEUED, "ValueError: broken row", None)
    store.start(job.job_id, lease_seconds=900)  # the retry gave up the hold, so the next attempt may begin
    failed = store.fail(job.job_id, "x" * 10_000)
    assert failed.state == FAILED
    assert failed.attempts == 2
    assert len(failed.error) == 4000
    [event] = store.list_unseen("alice")
    assert event.kind == "Cleaning failed"
    assert job.job_id in event.message


def test_users_see_only_their_own_jobs_unless_admin(store: JobStore) -> None:
    alice, _ = _clean(store, user="alice")
    bob, _ = _clean(store, user="bob")
    generation, _ = store.create_job("g-parent", "alice", "generate")
    assert {j.job_id for j in store.list_jobs("alice")} == {alice.job_id, generation.job_id}
    assert [j.job_id for j in store.list_jobs("alice", kind="clean")] == [alice.job_id]
    assert {j.job_id for j in store.list_jobs("carol", is_admin=True)} == {
        alice.job_id,
        bob.job_id,
        generation.job_id,
    }
    with pytest.raises(NotFound):
        store.get(alice.job_id, user="bob")
    assert store.get(alice.job_id, user="carol", is_admin=True) == alice
    with pytest.raises(NotFound):
        store.cancel(alice.job_id, user="bob")
    assert store.get(alice.job_id).state == QUEUED


def _finished(store: JobStore, job_id: str, kind: str = "generate", **kwargs: object) -> str:
    """A job of ``kind`` that ran and succeeded (which notifies its owner)."""
    job, _ = store.create_job(job_id, "alice", kind, **kwargs)
    store.start(job.job_id)
    store.succeed(job.job_id, rows_out=10, rows_quarantined=0)
    return job.job_id


def test_deleting_a_generation_takes_its_cleanings_and_notifications_with_it(store: JobStore) -> None:
    generation = _finished(store, "g-doomed")
    cleaning = _finished(store, "c-doomed", "clean", parent_id=generation)
    other = _finished(store, "g-kept")
    with pytest.raises(NotFound):
        store.mark_deleted(generation, user="bob")  # another user's job does not exist for bob
    assert len(store.list_unseen("alice")) == 3

    family = store.mark_deleted(generation, user="alice")
    assert [job.job_id for job in family] == [generation, cleaning]
    for job_id in (generation, cleaning):
        with pytest.raises(NotFound):
            store.get(job_id)
    assert [job.job_id for job in store.list_jobs("alice", is_admin=True)] == [other]
    assert [event.job_id for event in store.list_unseen("alice")] == [other]
    with pytest.raises(NotFound, match="was deleted"):
        _clean(store, parent=generation)  # no cleaning is launched from deleted raw data
    with pytest.raises(NotFound):
        store.mark_deleted(generation, user="alice")  # deleted once

    assert [job.job_id for job in store.deleted_jobs()] == [cleaning, generation]
    assert store.purge([cleaning, generation, other]) == 2  # a job not deleted is not purged
    assert store.deleted_jobs() == [] and store.get(other).state == SUCCEEDED


def test_a_job_with_a_live_cleaning_is_not_deleted_and_nothing_changes(store: JobStore) -> None:
    generation = _finished(store, "g-busy")
    cleaning, _ = _clean(store, parent=generation)
    before = store.list_jobs("alice")
    for job_id, which in ((generation, f"its cleaning {cleaning.job_id}"), (cleaning.job_id, "it")):
        with pytest.raises(InvalidInput) as refused:
            store.mark_deleted(job_id, user="alice")
        assert refused.value.field == "job_id"
        assert str(refused.value).endswith(
            f"cannot be deleted while {which} is queued; cancel {cleaning.job_id} or wait for it to "
            f"finish, then delete {job_id}"
        )
    assert store.list_jobs("alice") == before
    assert len(store.list_unseen("alice")) == 1

    store.cancel(cleaning.job_id)
    assert {job.job_id for job in store.mark_deleted(generation)} == {generation, cleaning.job_id}


def test_a_launch_racing_a_delete_never_leaves_a_cleaning_of_deleted_data(open_store: StoreFactory) -> None:
    launcher, deleter = open_store(), open_store()
    failures: list[Exception] = []

    def launch(generation: str, barrier: threading.Barrier) -> None:
        barrier.wait()
        try:
            _clean(launcher, parent=generation)
        except NotFound:
            pass
        except Exception as exc:  # asserted on below, in the test's own thread
            failures.append(exc)

    def delete(generation: str, barrier: threading.Barrier) -> None:
        barrier.wait()
        try:
            deleter.mark_deleted(generation)
        except InvalidInput:
            pass
        except Exception as exc:
            failures.append(exc)

    for round_ in range(8):
        generation = _finished(launcher, f"g-race-{round_}")
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=act, args=(generation, barrier)) for act in (launch, delete)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        cleanings = launcher.list_jobs("alice", parent_id=generation)
        try:
            launcher.get(generation)
        except NotFound:  # the delete came first: no cleaning was created for it
            assert cleanings == []
        else:  # the launch came first: the delete was refused and its cleaning is queued
            assert [job.state for job in cleanings] == [QUEUED]


def test_notifications_are_per_user_and_go_away_once_seen(store: JobStore) -> None:
    for user in ("alice", "bob"):
        job, _ = _clean(store, user=user)
        store.start(job.job_id)
        store.succeed(job.job_id, rows_out=1, rows_quarantined=0)
    [alices] = store.list_unseen("alice")
    assert store.mark_seen("bob", [alices.event_id]) == 0
    assert store.list_unseen("alice") == [alices]
    assert store.mark_seen("alice", [alices.event_id]) == 1
    assert store.list_unseen("alice") == []
    assert len(store.list_unseen("bob")) == 1


def test_concurrent_updates_from_two_connections_are_not_lost(open_store: StoreFactory) -> None:
    first, second = open_store(), open_store()
    job, _ = _clean(first)
    first.start(job.job_id)

    def record(store: JobStore, prefix: str) -> None:
        for n in range(10):
            store.record_stage(job.job_id, f"{prefix}{n}", float(n))

    threads = [threading.Thread(target=record, args=(s, p)) for s, p in ((first, "a"), (second, "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(first.get(job.job_id).timings) == 20


def test_a_store_an_earlier_version_made_is_brought_up_to_date_by_every_process_at_once(
    store: JobStore, open_store: StoreFactory
) -> None:
    job, _ = _clean(store)
    running = store.start(job.job_id, engine="pandas")
    for column in ("lease_until", "progress", "progress_text", "remote_run", "deleted_at"):  # as first made
        store._conn.cursor().execute(f"ALTER TABLE jobs DROP COLUMN {column}")
    opened, failures = [], []

    def open_one() -> None:
        try:
            opened.append(open_store())
        except Exception as exc:  # the assertion below shows what each process hit
            failures.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and len(opened) == 4
    assert opened[0].get(job.job_id) == running
    taken_over = opened[1].start(job.job_id, lease_seconds=60)  # the old worker held no lease
    assert (taken_over.attempts, taken_over.lease_until is not None) == (2, True)
    assert opened[2].record_progress(job.job_id, 0.5, "read raw").progress == 0.5


def test_a_scheduler_is_live_while_it_beats_and_gone_when_it_stops_or_falls_silent(
    store: JobStore, open_store: StoreFactory
) -> None:
    clock = open_store.clock
    next_at = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
    both = ["small", "large"]
    store.beat("host-1-a", host="host", pid=1, started_at=clock.now, next_at=next_at, routes=both)
    [live] = open_store().live_schedulers()  # seen from another process
    assert (live.scheduler_id, live.pid, live.routes) == ("host-1-a", 1, ("small", "large"))
    assert live.next_at == next_at
    assert live.seen_at == live.started_at

    clock.advance(SCHEDULER_SILENT_SECONDS + 1)  # killed: no beat since
    assert store.live_schedulers() == []
    store.beat("host-2-b", host="host", pid=2, started_at=clock.now, next_at=next_at, routes=["small"])
    assert [s.scheduler_id for s in store.live_schedulers()] == ["host-2-b"]
    store.end_scheduler("host-2-b")  # a clean stop is forgotten at once
    assert store.live_schedulers() == []

    with pytest.raises(InvalidInput, match="routes"):
        store.beat("host-3-c", host="host", pid=3, started_at=clock.now, next_at=next_at, routes=["medium"])
    assert store.live_schedulers() == []


def test_the_mysql_store_reconnects_after_the_server_dropped_it(mysql_database: MySQLSettings) -> None:
    store = JobStore.mysql(mysql_database)
    with server() as admin:
        admin.cursor().execute(f"KILL CONNECTION {store._conn.thread_id()}")
    job, created = store.create_job("g-after-drop", "alice", "generate")
    assert created
    assert store.get(job.job_id).state == QUEUED
    with pymysql.connect(database=mysql_database.database, autocommit=True, **MARIADB) as conn:
        conn.cursor().execute("DELETE FROM jobs")
    store.close()


def test_the_default_store_lives_in_the_data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", str(tmp_path))
    JobStore.default().create_job("g-one", "alice", "generate")
    assert (tmp_path / "state" / "jobs.sqlite").is_file()
    assert [j.job_id for j in JobStore.default().list_jobs("alice")] == ["g-one"]


def test_new_job_ids_are_valid_distinct_and_say_their_kind() -> None:
    ids = {new_job_id("clean") for _ in range(50)}
    assert len(ids) == 50
    assert all(check_job_id(i) and i.startswith("c-") for i in ids)
    assert new_job_id("generate").startswith("g-")
