"""The operations the workbench offers, shared by the command line and the UI: generate, launch, execute.

Both front ends call these and nothing deeper, so a click and a command do exactly the same thing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pymysql

from orchestrator import child_environment, quality, stopping
from orchestrator.cleaning import engines, stages
from orchestrator.cleaning.pipeline import (
    CleaningJob,
    CleaningOutcome,
    Engine,
    check_room,
    engine_named,
    read_manifest,
    run_cleaning,
)
from orchestrator.clouds import CLOUDS
from orchestrator.config import Settings, get_settings
from orchestrator.errors import InvalidInput, NotFound, ServiceError, WorkbenchError
from orchestrator.generation.generator import ENGINES as GENERATION_ENGINES
from orchestrator.generation.generator import GenerationResult, Progress, generate
from orchestrator.generation.spec import GenerationSpec
from orchestrator.jobs import holders, placement, routing
from orchestrator.jobs.store import (
    CANCELLED,
    FAILED,
    KIND_CLEAN,
    KIND_GENERATE,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    TERMINAL_STATES,
    IllegalTransition,
    Job,
    JobCancelled,
    JobStore,
    new_job_id,
)
from orchestrator.loading import operational, warehouse
from orchestrator.quality import store as quality_store
from orchestrator.quality.layers import RAW, SILVER
from orchestrator.queues import open_queue
from orchestrator.runners.base import RUNNING as RUNNING_RUN
from orchestrator.runners.base import RunStatus
from orchestrator.storage import LocalLake, open_lake, paths

TRANSIENT_ERRORS = (ServiceError, OSError, sqlite3.OperationalError, pymysql.err.OperationalError)


# Why a generation that never finished is cancelled: its process was stopped, or its command interrupted.
GENERATION_STOPPED = (
    "stopped before it finished (its worker process was stopped, or the command interrupted); "
    "nothing of it was kept"
)
# A generation is never run twice at once, nor taken over: it writes raw once, and a lost one is not retried.
GENERATION_HOLD_SECONDS = 24 * 3600
GENERATION_ENGINE = "engine"  # the job parameter naming the engine a generation runs on
# A running generation tells its job record how far it is after every chunk, seconds apart; one silent this
# long has lost its worker process.
GENERATION_SILENT_SECONDS = 10 * 60
GENERATION_LOST = "no worker process finished it (it was stopped, or never started); nothing of it was kept"
# Why a cleaning is queued again: its attempt's process was stopped, and its queue delivers it again.
CLEANING_STOPPED = (
    "stopped before it finished (its worker process was stopped, or the command interrupted); the scheduler "
    "cleans it again at a later run"
)
# When a launched cleaning is to run: at once (a click, `run`) or at its route's next scheduled drain.
START_NOW = "now"
START_SCHEDULED = "scheduled"
# A succeeded cleaning's silver, and the raw it came from, are profiled in a process of its own (when the
# settings say so), which keeps how it goes in the job's params under PROFILE and tells the record it is alive
# every PROFILE_BEAT_SECONDS; one silent for PROFILE_SILENT_SECONDS has lost its process.
PROFILE = "profile"
PROFILE_BEAT_SECONDS = 20
PROFILE_SILENT_SECONDS = 120
PROFILE_LOST = "lost"  # a background profile's state once its process is silent: stopped without a word
PROFILE_READY = "Quality profile ready"  # what its owner is told, as "Cleaning complete" is
PROFILE_FAILED = "Quality profile failed"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Launched:
    """A cleaning job a launch produced (or found already queued or running), the engine it will use, and
    whether this launch started it in a process of its own."""

    job: Job
    created: bool
    engine: str
    started: bool = False

    @property
    def to_start(self) -> bool:
        """Whether a run now should begin it: new, or waiting for the scheduler (else it is on its way)."""
        return self.created or waits_for_schedule(self.job)


def waits_for_schedule(job: Job) -> bool:
    """True for a cleaning job queued for the scheduler that no worker has begun yet."""
    return job.state == QUEUED and job.params.get("start") == START_SCHEDULED


def queue_generation(
    spec: GenerationSpec,
    user: str,
    settings: Settings | None = None,
    *,
    cloud: str | None = None,
    engine: str = "auto",
) -> Job:
    """Record a generation of ``spec`` for ``user`` on ``cloud`` (one of the configured clouds; the default
    one if None), queued until run_generation (or a worker) runs it on ``engine`` (local, spark, or auto:
    Spark from ORCHESTRATOR_SPARK_GENERATION_MIN_ROWS rows on); refused with Busy while the user has as many
    queued or running as the settings allow."""
    paths.check_user(user)
    if engine not in GENERATION_ENGINES:
        raise InvalidInput(
            "engine", f"{engine!r} is not a generation engine; choose from {', '.join(GENERATION_ENGINES)}"
        )
    settings = settings or get_settings()
    cloud = settings.on_cloud(cloud).profile
    store = JobStore.default()
    try:
        job_id = new_job_id(KIND_GENERATE)
        params = {**spec.to_dict(), placement.CLOUD: cloud, GENERATION_ENGINE: engine}
        return store.create_job(
            job_id, user, KIND_GENERATE, params=params, active_limit=settings.max_active_generations
        )[0]
    finally:
        store.close()


def run_generation(
    job_id: str, *, progress: Progress | None = None, settings: Settings | None = None
) -> GenerationResult:
    """Generate a queued generation job's data set, telling the job record how far it has come after every
    chunk. A cancel of the job stops it at its next chunk, and nothing of it is kept."""
    settings = settings or get_settings()
    store = JobStore.default()
    try:
        # a second runner gets JobHeld; a worker that finds this one's process dead ends it at once
        job = store.start(job_id, lease_seconds=GENERATION_HOLD_SECONDS, holder=holders.this_worker())
        spec = GenerationSpec.from_dict(
            {
                key: value
                for key, value in job.params.items()
                if key not in (placement.CLOUD, GENERATION_ENGINE)
            }
        )
        engine = job.params.get(GENERATION_ENGINE, "auto")  # jobs queued before engines were chosen: auto
        settings = placement.settings_for(job, settings)

        def report(done: float, message: str) -> None:
            store.record_progress(job_id, done, message)  # raises JobCancelled once the job is cancelled
            if progress:
                progress(done, message)

        try:
            result = generate(
                spec, job.user, settings=settings, job_id=job_id, progress=report, engine=engine
            )
        except JobCancelled:
            raise  # cancelled by its owner or an administrator: it stays so
        except Exception as exc:
            store.fail(job_id, _message(exc))
            raise
        except BaseException:  # its process was stopped mid-way (SIGTERM, Ctrl-C)
            store.cancel(job_id, reason=GENERATION_STOPPED)
            raise
        store.record_stage(job_id, "generate", result.seconds)
        store.succeed(job_id, rows_out=sum(t.rows for t in result.tables.values()), rows_quarantined=0)
        return result
    finally:
        store.close()


def end_lost_generations(
    settings: Settings | None = None, *, silent_seconds: float = GENERATION_SILENT_SECONDS
) -> list[Job]:
    """Fail the generations whose worker process was lost (killed, or its machine restarted) or never
    started, which would otherwise show as running or queued for ever, and remove what they had written;
    their owners are told."""
    settings = settings or get_settings()
    store = JobStore.default()
    try:
        lost = store.fail_silent(KIND_GENERATE, silent_seconds, GENERATION_LOST)
        lost += _fail_dead_generations(store)
    finally:
        store.close()
    for job in lost:
        lake = open_lake(placement.settings_for(job, settings))
        lake.delete_prefix(paths.raw_dir(job.user, job.job_id))
        lake.delete_prefix(paths.truth_dir(job.user, job.job_id))
    return lost


def _fail_dead_generations(store: JobStore) -> list[Job]:
    """Fail at once the running generations whose worker process, on this host, is dead (killed, or out of
    memory), not once they have been silent for minutes, all the while taking places of their owner's."""
    ended = []
    for job in store.running_jobs(KIND_GENERATE):
        holder = job.holder or {}
        if holder.get("pid") and holders.on_this_host(holder) and holders.holder_gone(job):
            with contextlib.suppress(IllegalTransition):  # it ended meanwhile
                why = f"{GENERATION_LOST} (its worker process {holder['pid']} on {holder['host']} ended)"
                ended.append(store.fail(job.job_id, why))
    return ended


@dataclass(frozen=True)
class Deletion:
    """What deleting a job took away: the job and, for a generation, the cleanings of its data. ``pending``
    says why some of their data is still to be removed (a service did not answer); the scheduler removes
    it at its next wake."""

    jobs: tuple[Job, ...]
    pending: str | None = None


def delete_job(
    job_id: str, *, user: str | None = None, is_admin: bool = False, settings: Settings | None = None
) -> Deletion:
    """Delete a finished job of ``user`` (any user's, for an administrator) from every system: its raw files
    and clean truth for a generation, with every cleaning of them; a cleaning's silver, quarantine and gold
    files, its warehouse and operational rows, its local Spark runs' logs; their quality runs; their records
    and notifications.

    A job that is queued or running, or has a cleaning that is, is refused and nothing changes. Once the
    job is marked deleted it is gone for every reader, and what a service down keeps back is removed by the
    scheduler later (see finish_deletions)."""
    settings = settings or get_settings()
    store = JobStore.default()
    try:
        family = store.mark_deleted(job_id, user=user, is_admin=is_admin)
    finally:
        store.close()
    try:
        _remove(family, settings)
    except Exception as exc:  # the jobs stay marked deleted; the next sweep removes the rest
        return Deletion(tuple(family), pending=_message(exc))
    return Deletion(tuple(family))


def finish_deletions(settings: Settings | None = None) -> list[Job]:
    """Remove what deleted jobs left behind (a service was down when they were deleted); returns the jobs
    now gone for good. A service still down leaves them for the next sweep."""
    store = JobStore.default()
    try:
        deleted = store.deleted_jobs()
    finally:
        store.close()
    if deleted:
        _remove(deleted, settings or get_settings())
    return deleted


def _remove(jobs: list[Job], settings: Settings) -> None:
    """Remove deleted jobs' data from every system, then their records; each step may be repeated, so a
    sweep after a failure finishes what this began."""
    from orchestrator.runners.local_spark import remove_run_logs

    cleanings = [job for job in jobs if job.kind == KIND_CLEAN]
    for job in cleanings:
        for cloud in placement.clouds_of(job, settings):  # its synced copies too
            lake = open_lake(settings.on_cloud(cloud))
            lake.delete_prefix(paths.silver_dir(job.user, job.parent_id, job.job_id))
            lake.delete_prefix(paths.gold_dir(job.user, job.parent_id, job.job_id))
        remove_run_logs(settings, job.job_id)
    cleaning_ids = [job.job_id for job in cleanings]
    warehouse.delete_jobs(settings, cleaning_ids)
    operational.delete_jobs(settings, cleaning_ids)
    for job in jobs:
        if job.kind == KIND_GENERATE:
            for cloud in placement.clouds_of(job, settings):  # its synced copies too
                lake = open_lake(settings.on_cloud(cloud))
                lake.delete_prefix(paths.raw_dir(job.user, job.job_id))
                lake.delete_prefix(paths.truth_dir(job.user, job.job_id))
    ids = [job.job_id for job in jobs]
    quality_store.delete_jobs(ids, settings)
    store = JobStore.default()
    try:
        store.purge(ids)
    finally:
        store.close()


def generate_job(
    spec: GenerationSpec,
    user: str,
    *,
    progress: Progress | None = None,
    settings: Settings | None = None,
    cloud: str | None = None,
    engine: str = "auto",
) -> GenerationResult:
    """Generate a data set now, in this process, as a recorded job on ``cloud`` (visible in the job list,
    with its row count and timing), on ``engine``."""
    job_id = queue_generation(spec, user, settings, cloud=cloud, engine=engine).job_id
    return run_generation(job_id, progress=progress, settings=settings)


def generate_in_background(spec: GenerationSpec, user: str, *, cloud: str | None = None) -> Job:
    """Record a generation on ``cloud`` and run it in a worker process of its own, so the caller returns at
    once; the job record tells how far it has come."""
    job = queue_generation(spec, user, cloud=cloud)
    start_in_background(job.job_id)
    return job


def queues(settings: Settings) -> dict[str, object]:
    return {route: open_queue(name, settings) for route, name in routing.QUEUE_NAMES.items()}


def resolve_engine(engine: str, route: str) -> str:
    """The engine a job runs on: the one chosen, or for ``auto`` the route's (a large batch never falls back
    to pandas silently)."""
    if engine not in engines.CHOICES:
        raise InvalidInput("engine", f"{engine!r} is not an engine; choose from {', '.join(engines.CHOICES)}")
    if engine != engines.AUTO:
        return engine
    return engines.PANDAS if route == "small" else engines.SPARK


def launch_clean(
    user: str,
    parent_id: str,
    *,
    engine: str = engines.AUTO,
    scheduled: bool = False,
    settings: Settings | None = None,
    cloud: str | None = None,
) -> Launched:
    """Route a generated job by size and queue its cleaning (for the scheduler, when ``scheduled``) on
    ``cloud``: one holding the data, by default the generation's own; a second launch returns the queued or
    running job."""
    settings = _cleaning_cloud(user, parent_id, cloud, settings or get_settings())
    lake = open_lake(settings)
    manifest = read_manifest(lake, user, parent_id)
    check_room(settings, lake, manifest)
    total = sum(t["rows"] for t in manifest["tables"].values())
    route = routing.route(total, settings.small_batch_max_rows)
    chosen = resolve_engine(engine, route)
    store = JobStore.default()
    try:
        launch = routing.launch_cleaning(
            store,
            queues(settings),
            user=user,
            parent_id=parent_id,
            total_rows=total,
            threshold=settings.small_batch_max_rows,
            params={
                "engine": chosen,
                "start": START_SCHEDULED if scheduled else START_NOW,
                placement.CLOUD: settings.profile,
            },
        )
    finally:
        store.close()
    # a job found already queued or running keeps the engine it was launched with
    return Launched(launch.job, launch.created, launch.job.params.get("engine", chosen))


def _cleaning_cloud(user: str, parent_id: str, cloud: str | None, settings: Settings) -> Settings:
    """The settings of the cloud a cleaning of ``parent_id`` runs on: ``cloud`` if it holds the data (the
    generation's own cloud or a synced copy), by default the generation's own."""
    store = JobStore.default(settings=settings)
    try:
        parent = store.get(paths.check_job_id(parent_id), user=paths.check_user(user))
        holding = placement.clouds_of(parent, settings)
    except NotFound:  # raw written without a job record (the generator called directly): the default cloud's
        holding = [settings.profile]
    finally:
        store.close()
    if cloud is not None and cloud not in holding:
        raise InvalidInput(
            "cloud",
            f"{parent_id} lives on {', '.join(holding)}, not on {cloud!r}; sync it there first or clean it "
            "where it lives",
        )
    return settings.on_cloud(cloud or holding[0])


def clean_now(
    user: str,
    parent_id: str,
    *,
    engine: str = engines.AUTO,
    settings: Settings | None = None,
    cloud: str | None = None,
) -> Launched:
    """Launch a cleaning and start it at once in a process of its own: a new job, or one that was waiting for
    the scheduler. A job already on its way is returned as it is, and nothing is started twice.

    A small batch on a cloud whose small batches a function cleans (orchestrator.clouds.SMALL_RUNNERS) is
    not run here: the process asks that function to drain the small queue now (``invoke-small``), and if it
    cannot be reached the job stays queued for the function's own timer trigger."""
    launched = launch_clean(user, parent_id, engine=engine, settings=settings, cloud=cloud)
    if not launched.to_start:
        return launched
    job = launched.job
    home = CLOUDS[placement.home(job, settings or get_settings())]
    if job.route == "small" and not home.worker_drains_small:
        _spawn("invoke-small", "--job", job.job_id)
    else:
        start_in_background(job.job_id)
    return replace(launched, started=True)


SMALL_RUNNER_NOTE = "small_runner"  # the job param recording what the function said when asked to clean it
CLEANING_DELAYED = "Cleaning delayed"


def ask_small_runner(
    job_id: str | None = None, *, cloud: str | None = None, settings: Settings | None = None
) -> str:
    """Ask the function that cleans ``cloud``'s small batches (the job's own cloud, or the default one) to
    drain its small queue now, synchronously; returns what it reported. For a job, what happened is kept on
    the job (param ``small_runner``); a function that cannot be reached leaves the job queued for the
    function's own timer trigger, its owner is told, and ServiceError is raised."""
    settings = settings or get_settings()
    store = JobStore.default(settings=settings)
    try:
        job = store.get(paths.check_job_id(job_id)) if job_id else None
    finally:
        store.close()
    name = placement.home(job, settings) if job else settings.on_cloud(cloud).profile
    runner = CLOUDS[name].small_runner
    if runner.invoke is None:
        raise InvalidInput(
            "cloud", f"the small batches on {name} are drained by {runner.label}; run the worker instead"
        )
    asked_at = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        answer = runner.ask(settings.on_cloud(name))
    except Exception as exc:
        reason = (
            f"{runner.label} could not be asked to clean it now ({_message(exc)}); it stays queued for "
            "the function's own timer"
        )
        if job:
            _note(job.job_id, {"asked_at": asked_at, "error": reason}, settings)
            _tell(job.job_id, CLEANING_DELAYED, f"{job.job_id}: {reason}", settings)
        raise ServiceError(reason) from exc
    if job:
        _note(job.job_id, {"asked_at": asked_at, "answer": answer}, settings)
    return answer


def _note(job_id: str, note: dict[str, str], settings: Settings) -> None:
    store = JobStore.default(settings=settings)
    try:
        store.record_params(job_id, **{SMALL_RUNNER_NOTE: note})
    finally:
        store.close()


def _tell(job_id: str, kind: str, message: str, settings: Settings) -> None:
    store = JobStore.default(settings=settings)
    try:
        store.notify(job_id, kind, message)
    finally:
        store.close()


def start_in_background(job_id: str) -> None:
    """Run a queued job (a cleaning or a generation) now in a worker process of its own, so the caller
    returns at once."""
    _spawn("worker", "--job", job_id)


def _spawn(*arguments: str) -> None:
    """Start ``python -m orchestrator`` with ``arguments`` in a process of its own, left to run on alone."""
    subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *arguments],
        # in the caller's folder, so relative settings (./data, .streamlit/secrets.toml) mean the same, with
        # the code on the path whichever folder that is (Streamlit puts app.py's folder on its own path only)
        env=child_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def execute_job(job_id: str, *, settings: Settings | None = None, final_attempt: bool = True) -> Job:
    """Run one queued job now. A generation is generated (see run_generation), and its failure is recorded
    on the job. For a cleaning, a transient failure (a service down) on a non-final attempt puts the job
    back in the queue's hands; any other failure ends it failed with the reason.

    This process holds a cleaning job by a lease it renews while the attempt runs (holders.Lease): while
    another live worker holds it, JobHeld is raised and nothing runs. An attempt after one that was lost
    first ends that one's Spark run if it still goes and removes its partial outputs, so the two are never
    mixed. A job that has already ended is returned as it is, and so is a generation that another process
    has begun."""
    settings = settings or get_settings()
    store = JobStore.default()
    try:
        job = store.get(job_id)
        if job.state in TERMINAL_STATES:
            return job  # it ended before this run came to it (a second click, a drain behind a click)
        settings = placement.settings_for(job, settings)
        if job.kind == KIND_GENERATE:
            if job.state == QUEUED:
                with contextlib.suppress(Exception):  # recorded on the job, where its owner reads it
                    run_generation(job_id, settings=settings)
            return store.get(job_id)
        engine = job.params.get("engine", engines.PANDAS)
        me, lease_seconds = holders.this_worker(), holders.lease_seconds()
        started = store.start(job_id, engine=engine, lease_seconds=lease_seconds, holder=me)
        try:
            with (
                holders.Lease(job_id, me["worker"], lease_seconds) as lease,
                stopping.stop_over_errors(),  # a stop DuckDB reported as its own error is still a stop
            ):
                if started.attempts > 1:
                    clear_attempt(settings, job)
                outcome = _run(settings, store, job, engine, lease)
        except JobCancelled:
            return store.get(job_id)
        except TRANSIENT_ERRORS as exc:
            if final_attempt:
                return store.fail(job_id, _message(exc))
            return store.retry(job_id, _message(exc))
        except Exception as exc:
            return store.fail(job_id, _message(exc))
        except BaseException:  # its process was stopped (SIGTERM, Ctrl-C): no longer held, not failed
            with contextlib.suppress(IllegalTransition):  # it ended meanwhile (cancelled by its owner)
                store.retry(job_id, CLEANING_STOPPED)
            raise
        ended = store.succeed(job_id, rows_out=outcome.rows_out, rows_quarantined=outcome.quarantined)
    finally:
        store.close()
    if settings.profile_after_cleaning:
        try:
            profile_in_background(ended)
        except Exception as exc:  # the cleaning succeeded all the same; the Data quality page profiles it
            log.warning("%s: not profiled after cleaning: %s", job_id, _message(exc))
    return ended


@dataclass(frozen=True)
class BackgroundProfile:
    """How the profile a cleaning started in the background goes: ``state`` running, succeeded, failed
    (``error`` says why) or PROFILE_LOST (its process stopped without a word)."""

    state: str
    since: datetime  # when it was started, as the cleaning ended
    layer: str | None = None  # what it profiles, or did when it failed: silver, then raw of the data cleaned
    error: str | None = None

    def works_on(self, layer: str) -> bool:
        """Whether it is profiling ``layer`` now."""
        return (self.state, self.layer) == (RUNNING, layer)

    def under_way(self, what: str) -> str:
        """What the pages say while it profiles ``what`` (a layer as they name it)."""
        return f"Profiling {what} in the background since the cleaning finished ({self.since:%H:%M:%S} UTC)…"


def background_profile(job: Job, *, now: float | None = None) -> BackgroundProfile | None:
    """How the background profile of a cleaning goes, as its job record keeps it; None if none was started.
    A running one not heard from for PROFILE_SILENT_SECONDS is lost (its process was killed), so no page
    says it runs for ever."""
    record = job.params.get(PROFILE)
    if not record:
        return None
    state = record["state"]
    if state == RUNNING and (now or time.time()) - record["heard"] > PROFILE_SILENT_SECONDS:
        state = PROFILE_LOST
    since = datetime.fromtimestamp(record["since"], UTC)
    return BackgroundProfile(state, since, record.get("layer"), record.get("error"))


def profile_in_background(job: Job) -> None:
    """Profile a succeeded cleaning's silver, and the raw it came from, in a process of its own
    (``worker --profile``, see profile_cleaning), so the Data quality page opens with before and after
    ready. Its job record says a profile is under way from now on (see background_profile)."""
    now = time.time()
    store = JobStore.default()
    try:
        record = {"state": RUNNING, "layer": SILVER, "since": now, "heard": now}
        store.record_params(job.job_id, **{PROFILE: record})
    finally:
        store.close()
    _spawn("worker", "--profile", job.job_id)


class _ProfileRecord:
    """A background profile as its cleaning's job record keeps it (params[PROFILE]), told again every
    PROFILE_BEAT_SECONDS from a thread of its own while the profile runs, so a lost process shows."""

    def __init__(self, store: JobStore, job: Job) -> None:
        self._store, self._job_id = store, job.job_id
        started = job.params.get(PROFILE) or {}  # by profile_in_background, as the cleaning ended
        self._record = {"since": started["since"] if started.get("state") == RUNNING else time.time()}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="profile-heartbeat", daemon=True)

    def __enter__(self) -> _ProfileRecord:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def seconds(self) -> float:
        """Since the profile was started."""
        return time.time() - self._record["since"]

    def tell(self, state: str, **values: str | float) -> None:
        """Keep the profile's state (and layer, error or seconds) on the job, heard from now."""
        with self._lock:
            self._record = {"since": self._record["since"], "state": state, **values}
            self._write()

    def _write(self) -> None:
        self._store.record_params(self._job_id, **{PROFILE: {**self._record, "heard": time.time()}})

    def _beat(self) -> None:
        while not self._stop.wait(PROFILE_BEAT_SECONDS):
            try:
                with self._lock:
                    self._write()
            except TRANSIENT_ERRORS as error:  # the profile goes on; a later beat may get through
                log.warning("%s: background profile not told alive: %s", self._job_id, _message(error))


def profile_cleaning(job_id: str, settings: Settings | None = None) -> Job:
    """Profile a succeeded cleaning's silver, then the raw it came from unless a run of that raw is stored,
    keeping on the job which layer is under way, and tell its owner once they are stored. A failure is kept
    on the job and told to its owner, then raised; the cleaning's own state never changes. Runs of a job
    deleted meanwhile are not kept."""
    settings = settings or get_settings()
    store = JobStore.default()
    try:
        job = store.get(job_id)
        if job.kind != KIND_CLEAN or job.state != SUCCEEDED:
            raise InvalidInput(
                "job_id",
                f"job {job_id} is a {job.state} {job.kind} job; only a succeeded cleaning is profiled",
            )
        settings = placement.settings_for(job, settings)  # its raw is read where it was cleaned
        layers = [(job.job_id, SILVER)]
        if quality.latest_run(job.user, job.parent_id, RAW, settings) is None:
            layers.append((job.parent_id, RAW))
        with _ProfileRecord(store, job) as record:
            layer = SILVER  # the layer under way, which a failure names
            try:
                for source, layer in layers:
                    record.tell(RUNNING, layer=layer)
                    quality.profile_job(job.user, source, layer, settings)
                gone = [source for source, _ in layers if not _exists(store, source)]
                if gone:
                    quality_store.delete_jobs(gone, settings)
                    raise NotFound(f"job {gone[0]} was deleted while it was profiled; its runs are not kept")
            except BaseException as exc:  # a stop (SIGTERM, Ctrl-C) too: the page must not wait for it
                error = _message(exc) if isinstance(exc, Exception) else "stopped before it finished"
                with contextlib.suppress(NotFound):  # a deleted job has no one left to tell
                    record.tell(FAILED, layer=layer, error=error)
                    store.notify(job_id, PROFILE_FAILED, f"{job_id}: {error}")
                raise
            record.tell(SUCCEEDED, seconds=round(record.seconds, 3))
        raw = f" and the raw of {job.parent_id}" if len(layers) > 1 else ""
        store.notify(
            job_id,
            PROFILE_READY,
            f"{job_id}: silver{raw} profiled; before and after are on the Data quality page",
        )
        return store.get(job_id)
    finally:
        store.close()


def _exists(store: JobStore, job_id: str) -> bool:
    try:
        store.get(job_id)
    except NotFound:
        return False
    return True


def clear_attempt(settings: Settings, job: Job) -> None:
    """Before another attempt of a cleaning whose last attempt was lost: end that attempt's local Spark run if
    it still goes (so no JVM outlives its attempt, nor writes beside the next), and remove its partial
    outputs (silver, quarantine, gold, Spark's staging); the loads replace the job's rows anyway."""
    child = (job.holder or {}).get("child")
    if child and holders.on_this_host(job.holder):
        from orchestrator.runners.local_spark import end_process

        end_process(child["pid"], child.get("started"))
    lake = open_lake(settings)
    if isinstance(lake, LocalLake):
        from orchestrator.runners.local_spark import end_runs_of

        end_runs_of(job.job_id)  # one its holder was lost before it could record it
        lake.delete_prefix(f"tmp/spark/{paths.check_job_id(job.job_id)}")
    lake.delete_prefix(paths.silver_dir(job.user, job.parent_id, job.job_id))
    lake.delete_prefix(paths.gold_dir(job.user, job.parent_id, job.job_id))


def _run(
    settings: Settings,
    store: JobStore,
    job: Job,
    engine_name: str,
    lease: holders.Lease,
    engine: Engine | None = None,
) -> CleaningOutcome:
    """Clean ``job`` on the engine named (or on ``engine``, such as one following a lost attempt's Spark run
    to its end), telling its record each stage, its progress and its run. The work stops at its next stage
    once the job is cancelled or ``lease`` is lost."""
    lake = open_lake(settings)
    resume = getattr(engine, "resume", None)
    if resume is None:  # the disk may fill after launch
        check_room(settings, lake, read_manifest(lake, job.user, job.parent_id))
    engine = engine or engine_named(engine_name, settings)
    runner = getattr(getattr(engine, "target", None), "runner", None)
    where = getattr(runner, "process_of", None)  # a local run's process, kept with the job's holder
    expected = engine.stages
    done = 0  # expected stages ended

    def stage(name: str, seconds: float) -> None:  # timed, and the share of the engine's stages done told
        nonlocal done
        store.record_stage(job.job_id, name, seconds)
        if name in expected:
            done = expected.index(name) + 1
            store.record_progress(job.job_id, done / len(expected), stages.under_way(expected, done))

    def on_run(service: str, status: RunStatus) -> None:  # where its owner finds the run, on its pages
        run = {"service": service, "run_id": status.run_id, "state": status.state.lower()}
        store.record_remote_run(job.job_id, **run, url=status.url)
        if where is not None and resume is None and status.state == RUNNING_RUN:
            store.record_child(job.job_id, lease.worker, where(status.run_id))

    def running(status: RunStatus, seconds: float) -> None:  # the stage under way, the run's time
        text = stages.on_run(expected, done, status.state, seconds)
        store.record_progress(job.job_id, done / len(expected), text)

    store.record_progress(job.job_id, 0.0, stages.under_way(expected, 0))
    cleaning = CleaningJob(
        settings,
        lake,
        job.user,
        job.parent_id,
        job.job_id,
        stage=stage,
        should_stop=lambda: lease.lost or store.get(job.job_id).state == CANCELLED,
        on_run=on_run,
        running=running,
    )
    return run_cleaning(cleaning, engine)


def _message(exc: BaseException) -> str:
    """A failure as the user reads it: our own errors speak for themselves; others name their type."""
    if isinstance(exc, WorkbenchError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def job_outputs(job: Job, settings: Settings | None = None) -> dict:
    """The silver, quarantine and gold files of a finished cleaning job (empty before it succeeded)."""
    lake = open_lake(placement.settings_for(job, settings or get_settings()))
    path = paths.silver_manifest(job.user, job.parent_id, job.job_id)
    if job.kind != KIND_CLEAN or not lake.exists(path):
        return {}
    with lake.open_read(path) as handle:
        manifest = json.load(handle)
    return {key: manifest[key] for key in ("silver", "quarantine", "gold", "tables")}
