"""One cleaning job end to end, on either engine: raw -> silver (+ quarantine) -> gold -> loaded.

An engine cleans raw into silver, quarantine and gold files: pandas in this process (the small path), or
Spark in a run of the notebook on the runner the settings choose, whose outputs are then read back. Then the
same steps follow for both: the loads (unless the Spark run loaded its outputs itself) and the silver
manifest. Raw is only read (and its checksums verified against the manifest); each output file is published
atomically, the silver manifest last, so a reader never sees a half-written job. Loads are transactional
and replace the job's earlier rows, so a retry after a crash leaves exactly one copy.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Protocol

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from orchestrator.cleaning import engines, stages
from orchestrator.cleaning.engine import TableResult, clean
from orchestrator.cleaning.gold import build_gold
from orchestrator.cleaning.stages import Stage, stage_timer
from orchestrator.config import Settings
from orchestrator.contracts import job_contract
from orchestrator.domain import model as m
from orchestrator.domain.sizes import DISK_RESERVE_BYTES, size_text
from orchestrator.errors import InvalidInput, NotFound, WorkbenchError
from orchestrator.jobs.store import JobCancelled
from orchestrator.loading.operational import load_silver
from orchestrator.loading.warehouse import load_gold
from orchestrator.runners import SparkTarget
from orchestrator.runners.base import SUCCEEDED, RunnerError, RunRequest, RunStatus, wait_for
from orchestrator.storage import LocalLake, Storage, paths

# What a cleaning writes on the local lake's disk, per byte of raw JSON Lines: silver, quarantine and gold
# Parquet with the warehouse took 0.10-0.17 (measured at 20,000 and 100,000 orders, pandas and Spark), the
# operational database in SQLite 0.84 (nothing on this disk when it is MySQL, on a server of its own)
LAKE_SHARE = 0.2
OPERATIONAL_SHARE = 0.85


class RawDataError(WorkbenchError):
    """Raw data cannot be read as it was generated (missing, changed or unreadable)."""


@dataclass
class CleaningOutcome:
    """What a cleaning run produced, for the job record and the command line."""

    rows_in: int
    rows_out: int
    quarantined: int
    duplicates_removed: int
    tables: dict[str, dict[str, int]]
    silver: dict[str, str] = field(default_factory=dict)
    quarantine: dict[str, str] = field(default_factory=dict)
    gold: dict[str, str] = field(default_factory=dict)
    loaded: dict[str, int] = field(default_factory=dict)


def read_manifest(lake: Storage, user: str, job_id: str) -> dict:
    """The generation job's manifest; NotFound if the job does not exist (for this user)."""
    path = paths.raw_manifest(user, job_id)
    if not lake.exists(path):
        raise NotFound(f"no generated job {job_id} for user {user}")
    with lake.open_read(path) as handle:
        return json.load(handle)


def cleaning_bytes(settings: Settings, manifest: dict) -> int:
    """About what cleaning a generated job writes on the local lake's disk."""
    raw = sum(table["bytes"] for table in manifest["tables"].values())
    return round(raw * (LAKE_SHARE + (OPERATIONAL_SHARE if settings.mysql is None else 0)))


def check_room(settings: Settings, lake: Storage, manifest: dict) -> None:
    """Refuse a cleaning that would leave less than the reserve free on the lake's disk (1 GB, or a tenth of
    what is free if less), which the job store and every other job share; a lake without a disk of its own
    (ADLS) is not checked."""
    free = lake.free_bytes()
    if free is None:
        return
    need, reserve = cleaning_bytes(settings, manifest), min(DISK_RESERVE_BYTES, free // 10)
    if free - need < reserve:
        raise InvalidInput(
            "job_id",
            f"the lake's disk would fill up: cleaning {manifest['job_id']} writes about {size_text(need)} "
            f"(silver, gold, the warehouse and the operational database) and the disk has {size_text(free)} "
            f"free, less than that and the {size_text(reserve)} kept free for the job store and other jobs; "
            "free space on the disk (the Jobs page deletes jobs no longer needed), then clean it again",
        )


@contextmanager
def _local_file(lake: Storage, path: str, sha256: str) -> Iterator[Path]:
    """A local file with the raw bytes, checked against the manifest's checksum."""
    digest = hashlib.sha256()
    if isinstance(lake, LocalLake):
        local = lake.resolve(path)
        with local.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        temp = None
    else:
        temp = tempfile.TemporaryDirectory()
        local = Path(temp.name) / Path(path).name
        with lake.open_read(path) as source, local.open("wb") as target:
            for block in iter(lambda: source.read(1 << 20), b""):
                digest.update(block)
                target.write(block)
    try:
        if digest.hexdigest() != sha256:
            raise RawDataError(f"{path} changed since it was generated (checksum differs from the manifest)")
        yield local
    finally:
        if temp is not None:
            temp.cleanup()


def read_raw(lake: Storage, manifest: dict, contract: m.Contract) -> dict[str, pa.Table]:
    """Every raw table as text columns in line order (JSON numbers and dirty strings alike)."""
    tables = {}
    for name, info in manifest["tables"].items():
        columns = {c.name: "VARCHAR" for c in contract.tables[name].columns}
        with _local_file(lake, info["raw_path"], info["sha256"]) as local:
            try:
                relation = duckdb.read_json(str(local), format="newline_delimited", columns=columns)
                tables[name] = relation.to_arrow_table()
            except duckdb.Error as exc:
                raise RawDataError(f"{info['raw_path']} cannot be read: {str(exc).splitlines()[0]}") from None
    return tables


def _publish(lake: Storage, path: str, frame: pd.DataFrame | pa.Table) -> str:
    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    with lake.open_write(path, overwrite=True) as writer:
        writer.write(buffer.getvalue())
    return path


def _silent(_name: str, _seconds: float) -> None:
    return None


@dataclass(frozen=True)
class CleaningJob:
    """One cleaning to run: the settings and lake it runs with, whose it is, the generation it cleans and its
    own id; and who hears how it goes. ``stage`` hears each stage's end with its seconds; ``should_stop`` is
    asked as each stage ends (a cancelled job stops there with JobCancelled). A job cleaned by a run
    elsewhere (Spark) tells ``on_run`` the service running it and the run's first status and each change of
    its state, and ``running`` each status while the run goes on with the seconds since it was submitted."""

    settings: Settings
    lake: Storage
    user: str
    parent_id: str
    job_id: str
    stage: Stage = _silent
    should_stop: Callable[[], bool] = lambda: False
    on_run: Callable[[str, RunStatus], None] = lambda _service, _status: None
    running: Callable[[RunStatus, float], None] = lambda _status, _seconds: None

    def stage_ends(self) -> Callable[[str], None]:
        """A function ending a stage: it tells the stage, timed from the end of the one before (the first from
        now), then stops the job if it should stop."""
        ended = stage_timer(self.stage)

        def done(name: str) -> None:
            ended(name)
            if self.should_stop():
                raise JobCancelled(self.job_id)

        return done


@dataclass(frozen=True)
class Cleaned:
    """What an engine made of a job: the counts and output paths, and the silver and gold tables to load."""

    outcome: CleaningOutcome
    silver: dict[str, pd.DataFrame]
    gold: dict[str, pd.DataFrame | pa.Table]


class Engine(Protocol):
    """A cleaning engine: its name (engines.ENGINES), the stages a job on it is timed in, in order (its own,
    then the loads unless it loads its outputs itself), and the cleaning of a job into its output files."""

    name: str

    @property
    def stages(self) -> tuple[str, ...]: ...

    @property
    def loads_outputs(self) -> bool: ...

    def clean(self, job: CleaningJob, manifest: dict) -> Cleaned:
        """Clean the generated job ``manifest`` describes into silver, quarantine and gold files."""
        ...


class InProcess:
    """The pandas engine, in this process: read raw, clean, publish silver and quarantine, build gold."""

    name = engines.PANDAS
    stages = stages.PANDAS
    loads_outputs = False

    def clean(self, job: CleaningJob, manifest: dict) -> Cleaned:
        done = job.stage_ends()
        contract = job_contract(job.lake, job.user, job.parent_id).contract
        raw = read_raw(job.lake, manifest, contract)
        as_of = int(datetime.fromisoformat(manifest["as_of"]).timestamp())
        done("read_raw")
        results = clean(contract, raw, as_of)
        done("clean")
        outcome = _outcome(results)
        silver = {name: r.silver for name, r in results.items()}
        for name, result in results.items():
            outcome.silver[name] = _publish(
                job.lake, paths.silver_table(job.user, job.parent_id, job.job_id, name), result.silver
            )
            outcome.quarantine[name] = _publish(
                job.lake, paths.quarantine_table(job.user, job.parent_id, job.job_id, name), result.quarantine
            )
        done("write_silver")
        gold = build_gold(contract, silver)
        for name, frame in gold.items():
            outcome.gold[name] = _publish(
                job.lake, paths.gold_table(job.user, job.parent_id, job.job_id, name), frame
            )
        done("gold")
        return Cleaned(outcome, silver, gold)


@dataclass(frozen=True)
class OnSpark:
    """The Spark engine: a run of the cleaning notebook on ``target``'s runner, polled every
    ``poll_seconds`` until it ends (a cancelled job cancels it), then its outputs read back. A run that
    tells the notebook's stages has them timed one by one, then the rest of the run's time; another run is
    timed as one stage. With ``resume``, the run of that id (one a lost worker started) is followed instead of
    a new one submitted, its stages told again from its first."""

    target: SparkTarget
    poll_seconds: float = 2.0
    resume: str | None = None
    name = engines.SPARK

    @property
    def stages(self) -> tuple[str, ...]:
        if self.target.loads_outputs:
            return stages.SPARK_LOADED_BY_RUN
        return stages.SPARK_TOLD if self.target.tells_stages else stages.SPARK

    @property
    def loads_outputs(self) -> bool:
        return self.target.loads_outputs

    def clean(self, job: CleaningJob, manifest: dict) -> Cleaned:
        runner = self.target.runner
        started = time.perf_counter()
        if self.resume:
            status = replace(runner.status(self.resume), stages=())
        else:
            request = RunRequest(job.job_id, job.user, job.parent_id, dict(self.target.parameters))
            status = runner.submit(request)
        job.on_run(runner.name, status)

        def heard(now: RunStatus) -> None:
            nonlocal status
            before, status = status, now
            for name, seconds in now.stages[len(before.stages) :]:
                job.stage(name, seconds)  # raises JobCancelled once the job is cancelled, as should_stop says
            if now.state != before.state:
                job.on_run(runner.name, now)
            if not now.terminal:
                job.running(now, time.perf_counter() - started)
                if job.should_stop():
                    raise JobCancelled(job.job_id)

        try:
            status = wait_for(runner, status.run_id, math.inf, self.poll_seconds, heard=heard)
        except JobCancelled:
            runner.cancel(status.run_id)
            job.on_run(runner.name, wait_for(runner, status.run_id, timeout=60, poll_interval=1))
            raise
        except (
            KeyboardInterrupt
        ):  # this process was stopped (SIGTERM, Ctrl-C): its run must not go on writing
            runner.cancel(status.run_id)
            raise
        if status.state != SUCCEEDED:
            raise RunnerError(f"the {runner.name} run {status.run_id} ended {status.state}: {status.message}")
        took = time.perf_counter() - started
        if status.stages:
            job.stage(stages.RUN_REST, max(took - sum(seconds for _, seconds in status.stages), 0.0))
        else:
            job.stage("spark", took)
        done = job.stage_ends()
        cleaned = read_outputs(job.lake, manifest, job.user, job.parent_id, job.job_id)
        done("read_outputs")
        return cleaned


def engine_named(name: str, settings: Settings) -> Engine:
    """The engine a job recorded as ``name`` runs on, as the settings place it."""
    if name == engines.PANDAS:
        return InProcess()
    if name == engines.SPARK:
        from orchestrator.runners import spark_target

        return OnSpark(spark_target(settings))
    raise InvalidInput("engine", f"the {name} engine is not available in this version")


def run_cleaning(job: CleaningJob, engine: Engine) -> CleaningOutcome:
    """Clean one generated job with ``engine``, load the result unless the engine's run loaded it, and write
    the silver manifest last."""
    manifest = read_manifest(job.lake, job.user, job.parent_id)
    cleaned = engine.clean(job, manifest)
    outcome = cleaned.outcome
    if not engine.loads_outputs:
        done = job.stage_ends()
        outcome.loaded["warehouse"] = load_gold(job.settings, job.user, job.job_id, cleaned.gold)
        done("load_warehouse")
        contract = job_contract(job.lake, job.user, job.parent_id).contract
        outcome.loaded["operational"] = load_silver(
            job.settings, job.user, job.job_id, cleaned.silver, contract
        )
        done("load_operational")
    record = _manifest(manifest, job.job_id, engine.name, outcome)
    with job.lake.open_write(
        paths.silver_manifest(job.user, job.parent_id, job.job_id), overwrite=True
    ) as writer:
        writer.write(json.dumps(record, indent=2).encode())  # tables in the order they were cleaned
    return outcome


def _read(lake: Storage, path: str) -> pd.DataFrame:
    with lake.open_read(path) as handle:
        table = pq.read_table(io.BytesIO(handle.read()))
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def _rows(lake: Storage, path: str) -> int:
    with lake.open_read(path) as handle:
        return pq.ParquetFile(io.BytesIO(handle.read())).metadata.num_rows


def read_outputs(lake: Storage, manifest: dict, user: str, parent_id: str, job_id: str) -> Cleaned:
    """The counts, silver and gold frames of a job a Spark run cleaned (every output must exist)."""
    silver, gold, tables = {}, {}, {}
    outcome = CleaningOutcome(0, 0, 0, 0, tables)
    for name, info in manifest["tables"].items():
        outcome.silver[name] = paths.silver_table(user, parent_id, job_id, name)
        outcome.quarantine[name] = paths.quarantine_table(user, parent_id, job_id, name)
        silver[name] = _read(lake, outcome.silver[name])
        held = _rows(lake, outcome.quarantine[name])
        tables[name] = {
            "rows_in": info["rows"],
            "rows_out": len(silver[name]),
            "quarantined": held,
            "duplicates_removed": info["rows"] - len(silver[name]) - held,
        }
    for path in lake.list(paths.gold_dir(user, parent_id, job_id)):
        name = Path(path).stem
        outcome.gold[name] = path
        gold[name] = _read(lake, path)
    for key in ("rows_in", "rows_out", "quarantined", "duplicates_removed"):
        setattr(outcome, key, sum(t[key] for t in tables.values()))
    return Cleaned(outcome, silver, gold)


def _outcome(results: dict[str, TableResult]) -> CleaningOutcome:
    tables = {
        name: {
            "rows_in": r.rows_in,
            "rows_out": r.rows_out,
            "quarantined": r.quarantined,
            "duplicates_removed": r.duplicates_removed,
        }
        for name, r in results.items()
    }
    return CleaningOutcome(
        rows_in=sum(t["rows_in"] for t in tables.values()),
        rows_out=sum(t["rows_out"] for t in tables.values()),
        quarantined=sum(t["quarantined"] for t in tables.values()),
        duplicates_removed=sum(t["duplicates_removed"] for t in tables.values()),
        tables=tables,
    )


def _manifest(raw_manifest: dict, job_id: str, engine: str, outcome: CleaningOutcome) -> dict:
    return {
        "manifest_version": 1,
        "job_id": job_id,
        "parent_id": raw_manifest["job_id"],
        "user": raw_manifest["user"],
        "as_of": raw_manifest["as_of"],
        "engine": engine,
        "tables": outcome.tables,
        "silver": outcome.silver,
        "quarantine": outcome.quarantine,
        "gold": outcome.gold,
    }
