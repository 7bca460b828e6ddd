"""One cleaning job end to end on the small path: raw -> silver (+ quarantine) -> gold -> loaded.

Raw is only read (and its checksums verified against the manifest); each output file is published
atomically, the silver manifest last, so a reader never sees a half-written job. Loads are transactional
and replace the job's earlier rows, so a retry after a crash leaves exactly one copy.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from orchestrator.cleaning.engine import TableResult, clean
from orchestrator.cleaning.gold import build_gold
from orchestrator.cleaning.stages import Stage, stage_timer
from orchestrator.config import Settings
from orchestrator.domain import shop as s
from orchestrator.domain.sizes import DISK_RESERVE_BYTES, size_text
from orchestrator.errors import InvalidInput, NotFound, WorkbenchError
from orchestrator.jobs.store import JobCancelled
from orchestrator.loading.operational import load_silver
from orchestrator.loading.warehouse import load_gold
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


def read_raw(lake: Storage, manifest: dict) -> dict[str, pa.Table]:
    """Every raw table as text columns in line order (JSON numbers and dirty strings alike)."""
    tables = {}
    for name, info in manifest["tables"].items():
        columns = {c.name: "VARCHAR" for c in s.TABLES[name].columns}
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


def run_cleaning(
    settings: Settings,
    lake: Storage,
    *,
    user: str,
    parent_id: str,
    job_id: str,
    stage: Stage | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> CleaningOutcome:
    """Clean one generated job with the in-process engine and load the result."""
    ended = stage_timer(stage or (lambda _name, _seconds: None))

    def done(name: str) -> None:
        ended(name)
        if should_stop():
            raise JobCancelled(job_id)

    manifest = read_manifest(lake, user, parent_id)
    raw = read_raw(lake, manifest)
    as_of = int(datetime.fromisoformat(manifest["as_of"]).timestamp())
    done("read_raw")
    results = clean(raw, as_of)
    done("clean")
    outcome = _outcome(results)
    silver = {name: r.silver for name, r in results.items()}
    for name, result in results.items():
        outcome.silver[name] = _publish(
            lake, paths.silver_table(user, parent_id, job_id, name), result.silver
        )
        outcome.quarantine[name] = _publish(
            lake, paths.quarantine_table(user, parent_id, job_id, name), result.quarantine
        )
    done("write_silver")
    gold = build_gold(silver)
    for name, frame in gold.items():
        outcome.gold[name] = _publish(lake, paths.gold_table(user, parent_id, job_id, name), frame)
    done("gold")
    outcome.loaded["warehouse"] = load_gold(settings, user, job_id, gold)
    done("load_warehouse")
    outcome.loaded["operational"] = load_silver(settings, user, job_id, silver)
    done("load_operational")
    with lake.open_write(paths.silver_manifest(user, parent_id, job_id), overwrite=True) as writer:
        writer.write(json.dumps(_manifest(manifest, job_id, outcome), indent=2, sort_keys=True).encode())
    return outcome


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


def _manifest(raw_manifest: dict, job_id: str, outcome: CleaningOutcome) -> dict:
    return {
        "manifest_version": 1,
        "job_id": job_id,
        "parent_id": raw_manifest["job_id"],
        "user": raw_manifest["user"],
        "as_of": raw_manifest["as_of"],
        "engine": "pandas",
        "tables": outcome.tables,
        "silver": outcome.silver,
        "quarantine": outcome.quarantine,
        "gold": outcome.gold,
    }
