"""Sync: copy a job's files from the cloud it lives on to another configured cloud, verified, resumable,
idempotent, never overwriting.

A generation is copied with its raw data, contract and manifest, its truth and answer key, and the silver,
quarantine and gold of every succeeded cleaning of it on the same cloud (a cleaning named alone brings its
generation along). Files are copied in an order that keeps a partial copy invisible: truth and raw tables
before the raw manifest (a raw job exists for readers only once its manifest does), gold and silver tables
before the silver manifest; and the job store names the target among the job's copies only after every file
has been copied and verified, so the pages never offer a copy that is not whole.

Every file's SHA-256 is taken while it is read from the source and checked against the target's copy read
back. A file already at the target is kept when its SHA-256 matches (so a second sync copies nothing, and a
sync killed half-way goes on where it stopped) and refused when it does not: nothing at the target is ever
overwritten, raw least of all. Storage writes are atomic, so a kill never leaves half a file.

The warehouse and the operational database are not copied: they belong to the deployment that loads them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from orchestrator.config import Settings, get_settings
from orchestrator.errors import AlreadyExists, InvalidInput, WorkbenchError
from orchestrator.jobs import placement
from orchestrator.jobs.store import KIND_CLEAN, KIND_GENERATE, SUCCEEDED, Job, JobStore
from orchestrator.storage import Storage, open_lake, paths

CHUNK = 1 << 20
Progress = Callable[[int, int, str], None]  # files done, files in all, the file just done and how


class SyncConflict(WorkbenchError):
    """The target holds a different file under a path the sync would write; nothing was overwritten."""


@dataclass(frozen=True)
class Synced:
    """What a sync did: the jobs copied, the files it copied now and those already there (verified), the
    bytes it copied, and how long it took."""

    jobs: tuple[Job, ...]
    source: str
    target: str
    copied: int
    kept: int
    bytes_copied: int
    seconds: float

    @property
    def line(self) -> str:
        """How it ended, as the command line and the Jobs page say it."""
        rate = self.bytes_copied / self.seconds / 1e6 if self.seconds else 0.0
        return (
            f"{', '.join(job.job_id for job in self.jobs)}: {self.source} -> {self.target}: "
            f"{self.copied} file(s) copied ({self.bytes_copied / 1e6:.1f} MB, {rate:.1f} MB/s), "
            f"{self.kept} already there and verified"
        )


def sync_job(
    job_id: str,
    to: str,
    *,
    user: str | None = None,
    is_admin: bool = False,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> Synced:
    """Copy ``job_id`` (a generation with its cleanings, or a cleaning with its generation) of ``user`` (any
    user's for an administrator) to the configured cloud ``to``; see the module's description."""
    settings = settings or get_settings()
    started = time.perf_counter()
    target_settings = settings.on_cloud(to)  # refuses a cloud that is not configured, naming the setting
    generation, cleanings = _family(job_id, user, is_admin, settings)
    source = placement.home(generation, settings)
    if to == source:
        raise InvalidInput(
            "to", f"{generation.job_id} lives on {to} already; choose another cloud to copy it to"
        )
    source_lake, target_lake = open_lake(settings.on_cloud(source)), open_lake(target_settings)
    files = _files(source_lake, generation, cleanings)
    copied = kept = size = 0
    for done, path in enumerate(files, 1):
        written = _copy(source_lake, target_lake, path)
        if written is None:
            kept += 1
        else:
            copied, size = copied + 1, size + written
        if progress:
            progress(done, len(files), f"{path} ({'kept, verified' if written is None else 'copied'})")
    jobs = _record(generation, cleanings, to, settings)
    return Synced(jobs, source, to, copied, kept, size, time.perf_counter() - started)


def targets(job: Job, settings: Settings | None = None) -> list[str]:
    """The configured clouds ``job`` can be copied to now: those not holding it yet. None for a cleaning made
    on a copy of its generation, since a sync copies from the generation's own cloud and carries only the
    cleanings made there."""
    settings = settings or get_settings()
    if job.kind == KIND_CLEAN and job.parent_id:
        store = JobStore.default(settings=settings)
        try:
            generation = store.get(job.parent_id)
        except WorkbenchError:  # its generation is gone: nothing whole to copy
            return []
        finally:
            store.close()
        if placement.home(job, settings) != placement.home(generation, settings):
            return []
    holding = placement.clouds_of(job, settings)
    return [cloud for cloud in settings.clouds if cloud not in holding]


def _family(job_id: str, user: str | None, is_admin: bool, settings: Settings) -> tuple[Job, list[Job]]:
    """The generation to copy and the succeeded cleanings of it that live on its cloud (or the one named)."""
    store = JobStore.default(settings=settings)
    try:
        job = store.get(paths.check_job_id(job_id), user=user, is_admin=is_admin)
        generation = store.get(job.parent_id) if job.kind == KIND_CLEAN else job
        if job.kind == KIND_CLEAN:
            cleanings = [job]
        else:
            cleanings = store.list_jobs(
                generation.user, kind=KIND_CLEAN, parent_id=generation.job_id, limit=10_000
            )
    finally:
        store.close()
    if generation.kind != KIND_GENERATE or generation.state != SUCCEEDED:
        raise InvalidInput(
            "job_id", f"{generation.job_id} is a {generation.state} job; only a finished generation is copied"
        )
    if job.kind == KIND_CLEAN and job.state != SUCCEEDED:
        raise InvalidInput("job_id", f"{job.job_id} is {job.state}; only a succeeded cleaning is copied")
    home = placement.home(generation, settings)
    kept = [c for c in cleanings if c.state == SUCCEEDED and placement.home(c, settings) == home]
    return generation, kept


def _files(lake: Storage, generation: Job, cleanings: Iterable[Job]) -> list[str]:
    """Every file to copy, in the order that keeps a partial copy invisible (manifests last)."""
    user, job_id = generation.user, generation.job_id
    manifest = paths.raw_manifest(user, job_id)
    if not lake.exists(manifest):
        raise InvalidInput(
            "job_id", f"{job_id} has no raw manifest on its cloud; there is nothing whole to copy"
        )
    raw = [path for path in lake.list(paths.raw_dir(user, job_id)) if path != manifest]
    files = [*lake.list(paths.truth_dir(user, job_id)), *raw, manifest]
    for cleaning in cleanings:
        silver = paths.silver_manifest(user, job_id, cleaning.job_id)
        if not lake.exists(silver):
            continue  # its outputs are not whole on this cloud
        files += lake.list(paths.gold_dir(user, job_id, cleaning.job_id))
        files += [p for p in lake.list(paths.silver_dir(user, job_id, cleaning.job_id)) if p != silver]
        files.append(silver)
    return files


def _sha256(lake: Storage, path: str) -> str:
    digest = hashlib.sha256()
    with lake.open_read(path) as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy(source: Storage, target: Storage, path: str) -> int | None:
    """Copy one file, verified; None when the target holds it already with the same SHA-256. A different file
    at the target is a SyncConflict and is left as it is."""
    if target.exists(path):
        return _kept(source, target, path)
    digest = hashlib.sha256()
    try:
        with source.open_read(path) as reader, target.open_write(path) as writer:
            while chunk := reader.read(CHUNK):
                digest.update(chunk)
                writer.write(chunk)
    except AlreadyExists:  # another sync of the same job wrote it first
        return _kept(source, target, path)
    if writer.result.sha256 != digest.hexdigest() or _sha256(target, path) != digest.hexdigest():
        raise SyncConflict(f"{path}: the copy at the target does not read back as written; sync it again")
    return writer.result.size


def _kept(source: Storage, target: Storage, path: str) -> None:
    if _sha256(target, path) != _sha256(source, path):
        raise SyncConflict(
            f"{path}: the target holds a different file under this path; it is never overwritten. Remove "
            "that file at the target and sync again"
        )


def _record(generation: Job, cleanings: list[Job], to: str, settings: Settings) -> tuple[Job, ...]:
    """Name ``to`` among the copies of the jobs now whole there: only now are they offered on it."""
    store = JobStore.default(settings=settings)
    try:
        recorded = []
        for job in (generation, *cleanings):
            current = store.get(job.job_id)
            copies = placement.copies(current)
            if to not in copies:
                current = store.record_params(job.job_id, **{placement.COPIES: [*copies, to]})
            recorded.append(current)
        return tuple(recorded)
    finally:
        store.close()
