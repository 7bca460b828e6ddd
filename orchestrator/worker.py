"""The scheduler that drains the queues: small batches every 10 minutes, large ones daily at 02:00 UTC.

A message is deleted only once its job has finished. A worker killed mid-job does not leave its job waiting
for the message to reappear: the job's lease stops being renewed (or its process is seen dead), and the next
worker recovers it at its start or next wake (orchestrator.recovery). A scheduled drain time no scheduler
served (none was running) is caught up at once by the next one to start, once.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pymysql

from orchestrator.clouds import CLOUDS
from orchestrator.config import Settings, get_settings
from orchestrator.errors import NotFound, WorkbenchError
from orchestrator.jobs import routing
from orchestrator.jobs.store import QUEUED, TERMINAL_STATES, Job, JobHeld, JobStore
from orchestrator.queues import open_queue
from orchestrator.queues.base import DEFAULT_MAX_ATTEMPTS, LeaseLost
from orchestrator.recovery import recover
from orchestrator.service import end_lost_generations, execute_job, finish_deletions

HEARTBEAT_SECONDS = 30  # well inside the store's SCHEDULER_SILENT_SECONDS
RESCHEDULE_SECONDS = 60  # while it waits, the scheduler reads its schedule again at least this often
ROUTES = ("small", "large")  # in the order routes due at the same minute are drained


def drain(
    route: str, settings: Settings | None = None, *, visibility_timeout: int | None = None
) -> list[Job]:
    """Run every job waiting on one route's queue, one at a time; returns the jobs as they ended."""
    settings = settings or get_settings()
    queue = open_queue(routing.QUEUE_NAMES[route], settings)
    timeout = visibility_timeout or routing.VISIBILITY_SECONDS
    finished = []
    while messages := queue.receive(1, visibility_timeout=timeout):
        message = messages[0]
        job_id = message.json().get("job_id", "")
        store = JobStore.default()
        try:
            state = store.get(job_id).state
        except NotFound:
            state = None
        finally:
            store.close()
        if state is not None and state not in TERMINAL_STATES:
            try:
                job = execute_job(
                    job_id, settings=settings, final_attempt=message.dequeue_count >= DEFAULT_MAX_ATTEMPTS
                )
            except JobHeld:
                continue  # another worker is cleaning it: the message comes back after its timeout
            finished.append(job)
            if job.state == QUEUED:
                continue  # a transient failure: the message comes back after its timeout
        # LeaseLost: it took longer than the timeout and another worker holds it now; that one deletes it.
        with contextlib.suppress(LeaseLost):
            queue.delete(message.id, message.pop_receipt)
    return finished


def drain_clouds(
    route: str, settings: Settings | None = None, *, visibility_timeout: int | None = None
) -> list[Job]:
    """Drain ``route``'s queue on every configured cloud (each job lives on one and is queued there) whose
    queue the worker drains (see worker_drains)."""
    settings = settings or get_settings()
    finished = []
    for cloud in settings.clouds:
        if worker_drains(route, cloud):
            finished += drain(route, settings.on_cloud(cloud), visibility_timeout=visibility_timeout)
    return finished


def job_line(job: Job) -> str:
    """How a job ended, as the scheduler's log and the command line print it."""
    return f"{job.job_id}: {job.state}" + (f" ({job.error})" if job.error else "")


def sweep(settings: Settings | None = None) -> list[str]:
    """What a scheduler does at each wake before it drains: fail the generations whose worker was lost and
    remove what deleted jobs left behind; returns the lines to log. A service still down is logged and
    tried again at the next wake."""
    lines = [job_line(job) for job in end_lost_generations(settings)]
    try:
        lines += [f"{job.job_id}: deleted" for job in finish_deletions(settings)]
    except Exception as exc:  # the scheduler goes on draining; the deletion waits for the next wake
        lines.append(f"deleted jobs kept back, tried again at the next wake: {type(exc).__name__}: {exc}")
    return lines


def serve(route: str, scheduled: datetime, settings: Settings, log: Callable[[str], None] = print) -> None:
    """Drain ``route`` for its drain time ``scheduled``, logging each job's end, and record it served."""
    for job in drain_clouds(route, settings):
        log(job_line(job))
    record_served(route, scheduled)


def record_served(route: str, at: datetime | None = None) -> None:
    """``route`` was drained at ``at`` (now by default), for the drain time then due (see missed_runs)."""
    store = JobStore.default()
    try:
        store.record_served(route, at or datetime.now(UTC))
    finally:
        store.close()


def missed_runs(now: datetime, settings: Settings) -> dict[str, tuple[datetime, datetime]]:
    """Each route's last drain time up to ``now`` that no scheduler served, with the last one served: what a
    scheduler drains at once (however many were missed, only the last counts). A store that never recorded a
    drain of a route has missed none: it records ``now`` as served."""
    store = JobStore.default()
    try:
        missed = {}
        for route, scheduled in previous_runs(now, settings).items():
            served = store.served(route)
            if served is None:
                store.record_served(route, now)
            elif served < scheduled:
                missed[route] = (scheduled, served)
        return missed
    finally:
        store.close()


def catch_up(now: datetime, settings: Settings, log: Callable[[str], None] = print) -> list[str]:
    """Drain at once, saying so, every route whose last drain time no scheduler served; returns them."""
    missed = missed_runs(now, settings)
    for route, (scheduled, served) in missed.items():
        log(
            f"missed: the {queues_named([route])} drain at {scheduled:%Y-%m-%d %H:%M} UTC was not served "
            f"(last served {served:%Y-%m-%d %H:%M} UTC); draining it now"
        )
        serve(route, scheduled, settings, log)
    return list(missed)


def worker_drains(route: str, cloud: str) -> bool:
    """Whether the worker drains ``route``'s queue on ``cloud``: every route, but the small one of a cloud
    whose small batches a function cleans, whose own timer trigger drains it (orchestrator.clouds)."""
    return route != "small" or CLOUDS[cloud].worker_drains_small


def routes_served(settings: Settings) -> list[str]:
    """The routes whose queues the worker drains on one configured cloud at least."""
    return [route for route in ROUTES if any(worker_drains(route, cloud) for cloud in settings.clouds)]


def routes_left(settings: Settings) -> str:
    """Which small queues the worker leaves to a function, as the scheduler logs it; empty when none."""
    left = [
        f"the small queue on {CLOUDS[cloud].label} is drained by {CLOUDS[cloud].small_runner.label}"
        for cloud in settings.clouds
        if not worker_drains("small", cloud)
    ]
    if not left:
        return ""
    return f"serving the {queues_named(routes_served(settings))}; " + "; ".join(left)


def previous_runs(now: datetime, settings: Settings) -> dict[str, datetime]:
    """When each route the worker serves was last due to be drained, at or before ``now`` (UTC)."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    every = settings.small_every_minutes
    small = midnight + timedelta(minutes=int((now - midnight).total_seconds() // 60) // every * every)
    large = next_large_run(now, settings.large_daily_at_utc) - timedelta(days=1)
    runs = {"small": small, "large": large}
    return {route: runs[route] for route in routes_served(settings)}


def next_small_run(now: datetime, every_minutes: int) -> datetime:
    """The next multiple of ``every_minutes`` after ``now`` (UTC, counted from midnight)."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed = int((now - midnight).total_seconds() // 60)
    return midnight + timedelta(minutes=(elapsed // every_minutes + 1) * every_minutes)


def next_large_run(now: datetime, daily_at_utc: str) -> datetime:
    """The next ``HH:MM`` UTC after ``now``."""
    hours, minutes = (int(part) for part in daily_at_utc.split(":"))
    today = now.replace(hour=hours, minute=minutes, second=0, microsecond=0)
    return today if today > now else today + timedelta(days=1)


def queues_named(routes: Sequence[str]) -> str:
    """``small queue`` or ``small and large queues``, as logs and pages say it."""
    return f"{' and '.join(routes)} {'queue' if len(routes) == 1 else 'queues'}"


def _schedule(now: datetime, settings: Settings) -> dict[str, datetime]:
    return {
        "small": next_small_run(now, settings.small_every_minutes),
        "large": next_large_run(now, settings.large_daily_at_utc),
    }


def next_runs(now: datetime, settings: Settings) -> dict[str, datetime]:
    """When each route the worker serves is drained next after ``now`` (UTC)."""
    due = _schedule(now, settings)
    return {route: due[route] for route in routes_served(settings)}


def next_run(route: str, settings: Settings) -> datetime:
    """When ``route``'s queue is drained next, from now (by the worker, or by the function whose timer
    trigger runs on the same ten-minute marks)."""
    return _schedule(datetime.now(UTC), settings)[route]


class Heartbeat:
    """Tells the job store, from a thread of its own every ``every`` seconds, that this scheduler is alive and
    when it drains next, so the pages can say whether a queued job will be picked up. Draining a long batch
    does not silence it; a clean stop removes the record at once, a lost process falls silent."""

    def __init__(self, every: float = HEARTBEAT_SECONDS, log: Callable[[str], None] = print) -> None:
        self._host, self._pid = socket.gethostname(), os.getpid()
        self.scheduler_id = f"{self._host[:40]}-{self._pid}-{secrets.token_hex(3)}"
        self._every = every
        self._log = log
        self._started = time.time()
        self._due: tuple[datetime, list[str]] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scheduler-heartbeat", daemon=True)
        self._store = JobStore.default()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        try:
            self._store.end_scheduler(self.scheduler_id)
        finally:
            self._store.close()

    def due(self, when: datetime, routes: list[str]) -> None:
        """The next drain is at ``when``; said at once, then on every beat."""
        self._due = (when, routes)
        self._beat()

    def _beat(self) -> None:
        if self._due is None:
            return
        when, routes = self._due
        try:
            self._store.beat(
                self.scheduler_id,
                host=self._host,
                pid=self._pid,
                started_at=self._started,
                next_at=when,
                routes=routes,
            )
        except (WorkbenchError, OSError, sqlite3.Error, pymysql.err.Error) as error:
            self._log(f"heartbeat not recorded: {error}")  # the schedule itself goes on

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self._beat()


def run_forever(
    settings: Settings | None = None,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = print,
    cycles: int | None = None,
) -> None:
    """Wake at each scheduled time, sweep (lost generations, deleted jobs' leftovers), and drain every route
    due then (``cycles`` bounds it for tests). At its start and every time it looks at its schedule (at least
    every RESCHEDULE_SECONDS) it recovers the cleanings whose holder is gone and drains at once a route whose
    last drain time no scheduler served (see catch_up).

    Routes due at the same minute (02:00 is also a ten-minute mark) are all drained, small first. Without
    ``settings`` the configuration is read again every RESCHEDULE_SECONDS while it waits (not in the last
    of them before a wake), so a schedule an administrator changes on the Settings page moves the next
    wake without a restart.

    The small route of a cloud whose small batches a function cleans is left to that function's own timer
    trigger (see routes_served); the scheduler says so once."""
    with Heartbeat(log=log) as heartbeat:
        told: tuple[datetime, list[str]] | None = None
        serving = ""
        while cycles is None or cycles > 0:
            current = settings or get_settings()
            if (left := routes_left(current)) != serving:
                serving = left
                if left:
                    log(left)
            recover(current, log=log)
            catch_up(now(), current, log)
            due = next_runs(now(), current)
            when = min(due.values())
            routes = [route for route, at in due.items() if at == when]
            if (when, routes) != told:
                told = (when, routes)
                heartbeat.due(when, routes)
                log(f"next: {queues_named(routes)} at {when:%Y-%m-%d %H:%M} UTC")
            wait = (when - now()).total_seconds()
            if wait > RESCHEDULE_SECONDS:
                # look again soon, and a whole RESCHEDULE_SECONDS before the wake at the latest
                sleep(min(RESCHEDULE_SECONDS, wait - RESCHEDULE_SECONDS))
                continue
            sleep(max(wait, 0))
            for line in sweep(current):
                log(line)
            for route in routes:
                serve(route, when, current, log)
            if cycles is not None:
                cycles -= 1
