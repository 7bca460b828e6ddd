"""Pipeline throughput: a small batch end to end, the pandas cleaning engine, the operational load and the
local queue.

Each measurement prints beside a baseline run in the same process: the small batch and the cleaning
engine beside reading the same raw files (``read_raw``) and writing them as Parquet without cleaning; the
operational load beside inserting its rows, already converted, with a plain ``executemany``; the queue
beside raw SQLite inserts (bench/queues.py). Run from the repository root:
``.venv/bin/python bench/pipeline.py [--quick]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import io
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar
from unittest import mock

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench import queues as queue_bench
from orchestrator.cleaning.engine import clean
from orchestrator.cleaning.pipeline import CleaningJob, InProcess, read_manifest, read_raw, run_cleaning
from orchestrator.config import Settings
from orchestrator.domain import shop as s
from orchestrator.generation.generator import generate
from orchestrator.generation.spec import GenerationSpec
from orchestrator.jobs.store import KIND_CLEAN, new_job_id
from orchestrator.loading.operational import load_silver, row_batches, statements
from orchestrator.storage import LocalLake

TARGET_BATCH_SECONDS = 1.0
TARGET_CLEAN_ROWS_PER_SECOND = 1_000_000
USER = "bench"
T = TypeVar("T")


def _timed(run: Callable[[], T]) -> tuple[float, T]:
    """Wall seconds of ``run`` and its result."""
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def _verdict(ok: bool) -> str:
    return "ok" if ok else "BELOW TARGET"


def _generated(settings: Settings, orders: int) -> tuple[dict, int]:
    """A generated job of all tables for ``orders`` orders: its manifest and its raw row count."""
    job = generate(GenerationSpec(rows=orders), USER, settings=settings).job_id
    manifest = read_manifest(LocalLake(settings.data_dir), USER, job)
    return manifest, sum(t["rows"] for t in manifest["tables"].values())


def copy_raw(lake: LocalLake, manifest: dict) -> dict[str, pa.Table]:
    """The baseline: read the raw tables and publish them as Parquet, as the pipeline does, uncleaned."""
    raw = read_raw(lake, manifest, s.CONTRACT)
    write_parquet(lake, f"baseline/{new_job_id(KIND_CLEAN)}", raw)
    return raw


def write_parquet(lake: LocalLake, prefix: str, tables: dict[str, pa.Table]) -> None:
    for name, table in tables.items():
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        with lake.open_write(f"{prefix}/{name}.parquet") as writer:
            writer.write(buffer.getvalue())


def _clean_job(settings: Settings, lake: LocalLake, parent: str) -> dict[str, float]:
    """Seconds of each stage of one cleaning job, and its total."""
    stages: dict[str, float] = {}

    def stage(name: str, seconds: float) -> None:
        stages[name] = seconds

    total, _ = _timed(
        lambda: run_cleaning(
            CleaningJob(settings, lake, USER, parent, new_job_id(KIND_CLEAN), stage=stage), InProcess()
        )
    )
    return {**stages, "total": total}


def small_batch(settings: Settings, orders: int, repeats: int) -> None:
    """A generated job of about 10k rows cleaned end to end, ``repeats`` times, beside the raw copy."""
    lake = LocalLake(settings.data_dir)
    manifest, rows = _generated(settings, orders)
    parent = manifest["job_id"]
    runs = [_clean_job(settings, lake, parent) for _ in range(repeats)]
    baseline = [_timed(lambda: copy_raw(lake, manifest))[0] for _ in range(repeats)]

    base = statistics.median(baseline)
    tables = len(manifest["tables"])
    print(f"\nsmall batch: {orders:,} orders, {rows:,} raw rows in {tables} tables; median of {repeats} runs")
    print(f"{'stage':<20}{'seconds':>9}{'first run':>11}{'time/baseline':>15}")
    for name in runs[0]:
        median = statistics.median(run[name] for run in runs)
        print(f"{name:<20}{median:>9.3f}{runs[0][name]:>11.3f}{median / base:>14.2f}x")
    print(f"{'baseline: raw copy':<20}{base:>9.3f}{baseline[0]:>11.3f}{1:>14.2f}x")
    end_to_end = statistics.median(run["total"] for run in runs)
    print(f"target: end to end < {TARGET_BATCH_SECONDS:.0f} s: {_verdict(end_to_end < TARGET_BATCH_SECONDS)}")


def cleaning_throughput(settings: Settings, orders: int) -> None:
    """The cleaning engine alone on about 1M raw rows, beside reading and writing them uncleaned."""
    lake = LocalLake(settings.data_dir)
    manifest, rows = _generated(settings, orders)
    as_of = int(datetime.fromisoformat(manifest["as_of"]).timestamp())
    read, raw = _timed(lambda: read_raw(lake, manifest, s.CONTRACT))
    write, _ = _timed(lambda: write_parquet(lake, f"baseline/{new_job_id(KIND_CLEAN)}", raw))
    cpu = time.process_time()
    cleaning, results = _timed(lambda: clean(s.CONTRACT, raw, as_of))
    cpu = time.process_time() - cpu

    base = read + write
    print(f"\ncleaning engine: {orders:,} orders, {rows:,} raw rows in {len(raw)} tables")
    print(f"{'step':<30}{'seconds':>9}{'rows/s':>12}{'rate/baseline':>15}")
    print(f"{'baseline: read_raw':<30}{read:>9.2f}{rows / read:>12,.0f}")
    print(f"{'baseline: write parquet':<30}{write:>9.2f}{rows / write:>12,.0f}")
    print(f"{'baseline: read + write':<30}{base:>9.2f}{rows / base:>12,.0f}{1:>14.2f}x")
    print(f"{'clean (engine.clean)':<30}{cleaning:>9.2f}{rows / cleaning:>12,.0f}{base / cleaning:>14.2f}x")
    print(f"(clean used {cpu:.2f} s of CPU over {cleaning:.2f} s of wall time)")
    fast = rows / cleaning >= TARGET_CLEAN_ROWS_PER_SECOND
    print(f"target: cleaning >= {TARGET_CLEAN_ROWS_PER_SECOND:,} rows/s: {_verdict(fast)}")
    operational_load(settings, {name: result.silver for name, result in results.items()})


def operational_load(settings: Settings, silver: dict[str, pd.DataFrame]) -> None:
    """``load_silver`` into a fresh SQLite database, beside inserting the same rows, already converted to
    Python tuples, with a plain ``executemany`` into another: the conversion's cost over SQLite's own."""
    rows = sum(len(frame) for frame in silver.values())
    loading, _ = _timed(lambda: load_silver(settings, USER, new_job_id(KIND_CLEAN), silver, s.CONTRACT))
    tuples = {
        name: [r for batch in row_batches(frame, s.TABLES[name], USER, "c-x") for r in batch]
        for name, frame in silver.items()
    }
    con = sqlite3.connect(settings.data_dir / "baseline.sqlite", isolation_level=None)

    def insert() -> None:
        con.execute("BEGIN")
        for name, values in tuples.items():
            create, _, statement = statements(s.TABLES[name], f"silver_{name}", mysql=False)
            con.execute(create)
            con.executemany(statement, values)
        con.execute("COMMIT")

    try:
        base, _ = _timed(insert)
    finally:
        con.close()
    print(f"\noperational load (SQLite): {rows:,} silver rows in {len(silver)} tables")
    print(f"{'step':<30}{'seconds':>9}{'rows/s':>12}{'time/baseline':>15}")
    print(f"{'baseline: executemany tuples':<30}{base:>9.2f}{rows / base:>12,.0f}{1:>14.2f}x")
    print(f"{'load_silver':<30}{loading:>9.2f}{rows / loading:>12,.0f}{loading / base:>14.2f}x")


def queue_throughput(messages: int) -> None:
    """The local queue's send, receive and delete rates, measured by bench/queues.py."""
    print(f"\nqueue (bench/queues.py, target >= {queue_bench.TARGET_PER_SECOND:,} messages/s)")
    with mock.patch.object(sys, "argv", ["queues", "--messages", str(messages)]):
        queue_bench.main()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    batch_orders, repeats, clean_orders, messages = (
        (100, 2, 5_000, 500) if args.quick else (830, 5, 85_000, 5_000)
    )
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        settings = Settings(data_dir=Path(tmp))
        small_batch(settings, batch_orders, repeats)
        cleaning_throughput(settings, clean_orders)
    queue_throughput(messages)


if __name__ == "__main__":
    main()
