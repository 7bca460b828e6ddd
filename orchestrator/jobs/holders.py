"""Who holds a running job and whether they are still there: a worker process named by its host, pid and
start time (a pid the system gave again to another process is not taken for it), and the lease it renews
with a heartbeat while it works on the job.

A holder is gone when its lease was not renewed in time (ORCHESTRATOR_LEASE_SECONDS), or at once when its
process, on this host, is dead. Then any worker may recover the job (orchestrator.recovery).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from functools import cache
from typing import Any

import psutil

from orchestrator.config import int_setting
from orchestrator.jobs.store import HoldLost, Job, JobStore

log = logging.getLogger(__name__)

LEASE_SECONDS_ENV = "ORCHESTRATOR_LEASE_SECONDS"
DEFAULT_LEASE_SECONDS = 60
BEATS_PER_LEASE = 4  # a holder renews its lease this many times per lease, so one late beat loses nothing


def lease_seconds() -> int:
    """How long a holder's lease runs unrenewed before it is taken for gone: ORCHESTRATOR_LEASE_SECONDS,
    from 4 to 3,600 seconds, 60 by default."""
    return int_setting(LEASE_SECONDS_ENV, DEFAULT_LEASE_SECONDS, 4, 3600)


def process_started(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), None if there is no such process alive (a
    zombie, ended but not yet reaped, is not alive)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return round(process.create_time(), 2)
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def alive(pid: int, started: float | None) -> bool:
    """Whether the process ``pid`` that started at ``started`` still runs on this host (the same pid given to
    a later process is not it)."""
    now = process_started(pid)
    return now is not None and (started is None or abs(now - started) < 1)


@cache
def this_worker() -> dict[str, Any]:
    """This process as a holder records it: its id (host, pid and start time), host, pid and start time."""
    host, pid = socket.gethostname()[:64], os.getpid()
    started = process_started(pid) or round(time.time(), 2)
    return {"worker": f"{host}-{pid}-{started:.0f}", "host": host, "pid": pid, "started": started}


def on_this_host(record: dict[str, Any]) -> bool:
    return record.get("host") == socket.gethostname()[:64]


def holder_gone(job: Job, now: float | None = None) -> bool:
    """Whether a running job's holder is gone: its lease ended unrenewed (an attempt without a lease is taken
    for gone), or its process on this host is dead."""
    now = time.time() if now is None else now
    if job.lease_until is None or job.lease_until.timestamp() <= now:
        return True
    holder = job.holder or {}
    if holder.get("pid") and on_this_host(holder):
        return not alive(holder["pid"], holder.get("started"))
    return False


class Lease:
    """Renews a job's lease from a thread of its own every lease/BEATS_PER_LEASE seconds while the block runs,
    with a job store connection of its own; ``lost`` once the job is no longer held by this worker (another
    took it over, or it ended), which the work asks to stop there. A store that does not answer is tried
    again at the next beat: the lease runs on meanwhile."""

    def __init__(self, job_id: str, worker: str, seconds: float) -> None:
        self.job_id, self.worker, self.seconds = job_id, worker, seconds
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job_id}", daemon=True)

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        store: JobStore | None = None
        try:
            while not self._stop.wait(self.seconds / BEATS_PER_LEASE):
                try:
                    store = store or JobStore.default()
                    store.renew(self.job_id, self.worker, self.seconds)
                except HoldLost:
                    self.lost = True
                    return
                except Exception as error:  # the store is down: the next beat tries again
                    log.warning("%s: lease not renewed: %s", self.job_id, error)
        finally:
            if store is not None:
                with contextlib.suppress(Exception):
                    store.close()
