"""Recover, do not wait: a cleaning whose holder is gone (its lease not renewed in time, or its process dead
on this host) is taken over by the next worker that looks, at its start and at every wake.

For each such job the worker, holding it now: succeeds it if its attempt had finished (its silver manifest,
written last, exists); follows its Spark run to the end if the run still goes, or reads a finished run's
published outputs, then loads them once and writes the manifest, all without a second run; and otherwise
(the pandas path, a run that died, or one it cannot follow) ends what is left of the attempt and starts the
next one at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator import service
from orchestrator.cleaning import engines
from orchestrator.cleaning.pipeline import OnSpark
from orchestrator.config import Settings, get_settings
from orchestrator.errors import WorkbenchError
from orchestrator.jobs import holders, placement
from orchestrator.jobs.store import KIND_CLEAN, RUNNING, Job, JobCancelled, JobHeld, JobStore
from orchestrator.queues.base import DEFAULT_MAX_ATTEMPTS
from orchestrator.runners.base import TERMINAL_STATES
from orchestrator.storage import open_lake, paths


@dataclass(frozen=True)
class Recovered:
    """A job a worker took over from a holder that was gone, how (``how``), and how it ended."""

    job: Job
    how: str

    def line(self) -> str:
        """As the scheduler's log says it."""
        error = f" ({self.job.error})" if self.job.error else ""
        return f"{self.job.job_id}: {self.how}: {self.job.state}{error}"


FINISHED = "its holder was gone and its outputs were complete; recorded as they are"
FOLLOWED = "its holder was gone; its Spark run {run_id} followed to the end, its outputs loaded once"
RESTARTED = "its holder was gone ({why}); attempt {attempt} started at once"
GIVEN_UP = (
    "each of its {attempts} attempts lost its worker process (killed, or its machine stopped), the last with "
    "{why}; it is not tried again: clean it again once the cause is found (a worker's memory, the disk)"
)


def recover(settings: Settings | None = None, *, log: Callable[[str], None] = print) -> list[Recovered]:
    """Take over every running cleaning whose holder is gone and see each to its end (see the module); a job
    another worker took over first is left to it. Returns what was recovered, each said to ``log`` too."""
    settings = settings or get_settings()
    try:
        store = JobStore.default()
        try:
            lost = [job for job in store.running_jobs(KIND_CLEAN) if holders.holder_gone(job)]
        finally:
            store.close()
    except Exception as error:  # the job store is down: the scheduler goes on, and looks at its next wake
        log(f"lost cleanings not looked for, looked for again at the next wake: {service._message(error)}")
        return []
    recovered = []
    for job in lost:
        try:
            done = recover_job(job, settings)
        except JobHeld:
            continue  # another worker took it over first
        except Exception as error:  # the next wake tries again; the others are recovered meanwhile
            log(f"{job.job_id}: not recovered, tried again at the next wake: {service._message(error)}")
            continue
        if done is not None:
            log(done.line())
            recovered.append(done)
    return recovered


def recover_job(job: Job, settings: Settings) -> Recovered | None:
    """Take over one job whose holder is gone and see it to its end; None if it ended meanwhile. JobHeld if
    another worker took it over first."""
    me, seconds = holders.this_worker(), holders.lease_seconds()
    gone = (job.holder or {}).get("worker")
    settings = placement.settings_for(job, settings)
    store = JobStore.default()
    try:
        held = store.take_over(job.job_id, gone=gone, holder=me, lease_seconds=seconds)
        with holders.Lease(job.job_id, me["worker"], seconds) as lease:
            finished = _finished(store, held, settings)
            if finished is not None:
                return Recovered(finished, FINISHED)
            engine, why = _followable(held, settings)
            if engine is not None:
                run_id = engine.resume
                try:
                    outcome = service._run(settings, store, held, engines.SPARK, lease, engine=engine)
                except JobCancelled:
                    return Recovered(
                        store.get(job.job_id), f"its Spark run {run_id} followed, then cancelled"
                    )
                except WorkbenchError as error:  # the run failed or cannot be read: a new attempt
                    why = f"its Spark run {run_id} ended without its outputs: {service._message(error)}"
                else:
                    ended = store.succeed(
                        job.job_id, rows_out=outcome.rows_out, rows_quarantined=outcome.quarantined
                    )
                    return Recovered(ended, FOLLOWED.format(run_id=run_id))
        if store.get(job.job_id).state != RUNNING:
            return None
        if job.attempts >= DEFAULT_MAX_ATTEMPTS:  # each attempt lost its worker: it would lose the next too
            ended = store.fail(job.job_id, GIVEN_UP.format(attempts=job.attempts, why=why))
            return Recovered(ended, "its holder was gone once more")
    finally:
        store.close()
    attempt = job.attempts + 1
    ended = service.execute_job(job.job_id, settings=settings, final_attempt=attempt >= DEFAULT_MAX_ATTEMPTS)
    return Recovered(ended, RESTARTED.format(why=why, attempt=attempt))


def _finished(store: JobStore, job: Job, settings: Settings) -> Job | None:
    """The job succeeded, if its lost attempt had finished: it writes the silver manifest last, after the
    loads, so a manifest means every output was published and loaded; its counts are the manifest's."""
    lake = open_lake(settings)
    path = paths.silver_manifest(job.user, job.parent_id, job.job_id)
    if not lake.exists(path):
        return None
    with lake.open_read(path) as handle:
        tables = json.load(handle)["tables"].values()
    return store.succeed(
        job.job_id,
        rows_out=sum(t["rows_out"] for t in tables),
        rows_quarantined=sum(t["quarantined"] for t in tables),
    )


def _followable(job: Job, settings: Settings) -> tuple[OnSpark | None, str]:
    """The Spark engine following the lost attempt's run if this worker can follow it (or read its outputs
    once it ended), else None and why not."""
    run = job.remote_run or {}
    if job.engine != engines.SPARK or not run.get("run_id"):
        return None, "no run to follow: it cleaned in its own process"
    if run.get("state", "").upper() in TERMINAL_STATES and run["state"] != "succeeded":
        return None, f"its Spark run {run['run_id']} ended {run['state']}"
    from orchestrator.runners import spark_target

    target = spark_target(settings)
    runner = target.runner
    if runner.name != run.get("service"):
        return None, f"its run on {run.get('service')} is not one the {runner.name} runner can follow"
    if runner.name == "spark_session":
        return None, "its Spark run went with its worker's own session"
    if runner.name == "local_spark":
        child = (job.holder or {}).get("child") or {}
        if child.get("run_id") != run["run_id"]:
            return None, f"its local Spark run {run['run_id']} left no process to follow"
        if not holders.on_this_host(job.holder):
            return None, f"its local Spark run {run['run_id']} ran on {job.holder.get('host')}"
        try:
            runner.adopt(run["run_id"], child["pid"], child.get("started"))
        except WorkbenchError as error:
            return None, str(error)
    return OnSpark(target, resume=run["run_id"]), ""
