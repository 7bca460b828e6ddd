"""Reading a job back (its record, raw records, clean truth, answer key, duplicate map), and running a real
scheduler, or another process holding a DuckDB file, beside a test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from orchestrator.jobs.store import Job, JobStore, Scheduler


def start_scheduler() -> subprocess.Popen:
    """A real scheduler (``orchestrator worker``, as make run starts it), returned once the job store has
    heard from it. It drains only once a day, at midnight, so it leaves the test's queued jobs alone."""
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "worker"],
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "ORCHESTRATOR_SMALL_EVERY_MINUTES": "1440"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not live_schedulers():
        assert scheduler.poll() is None and time.monotonic() < deadline, scheduler.communicate()
        time.sleep(0.1)
    return scheduler


# Opens a DuckDB file (argv 1) to write, or to read with argv 2 "read", says so, and holds it for argv 3
# seconds, or until a line arrives on its input when that is empty.
_HOLD = (
    "import duckdb, sys, time\n"
    "con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == 'read')\n"
    "print('held', flush=True)\n"
    "time.sleep(float(sys.argv[3])) if sys.argv[3] else sys.stdin.readline()\n"
)


@contextmanager
def duckdb_held(path: Path, *, read_only: bool = False, seconds: float | None = None) -> Iterator[None]:
    """Another process holding a DuckDB file open (to write unless ``read_only``) from the start of the block
    for ``seconds``, or to its end; the block ends once that process has let go."""
    mode = "read" if read_only else "write"
    args = [sys.executable, "-c", _HOLD, str(path), mode, "" if seconds is None else str(seconds)]
    holder = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held", "the holding process did not open the file"
        yield
    finally:
        holder.communicate("\n", timeout=60)


def live_schedulers() -> list[Scheduler]:
    """The schedulers the configured job store has heard from lately."""
    store = JobStore.default()
    try:
        return store.live_schedulers()
    finally:
        store.close()


def stored_job(job_id: str) -> Job:
    """The job as the configured job store holds it now."""
    store = JobStore.default()
    try:
        return store.get(job_id)
    finally:
        store.close()


def stored_jobs(user: str) -> list[Job]:
    """The user's jobs as the configured job store holds them now, newest first."""
    store = JobStore.default()
    try:
        return store.list_jobs(user)
    finally:
        store.close()


def raw_records(root: Path, path: str) -> list[dict]:
    with (root / path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def truth_records(root: Path, path: str, table: str) -> list[dict]:
    """Truth rows rendered as JSON values (timestamps as ISO text), comparable with raw records."""
    truth = pq.read_table(root / path)
    rows = truth.to_pylist()
    ts_columns = [f.name for f in truth.schema if pa.types.is_timestamp(f.type)]
    for row in rows:
        for name in ts_columns:
            if row[name] is not None:
                row[name] = row[name].strftime("%Y-%m-%dT%H:%M:%SZ")
    return rows


def assert_references_resolve(con, contract) -> None:
    """Every foreign key of the clean truth (tables loaded in ``con`` under their names) names a row of the
    table it references."""
    for table in contract.tables.values():
        for column in table.columns:
            if column.references:
                key = contract.tables[column.references].sole_key
                orphans = con.execute(
                    f"SELECT count(*) FROM {table.name} c WHERE {column.name} IS NOT NULL AND NOT EXISTS "
                    f"(SELECT 1 FROM {column.references} p WHERE p.{key} = c.{column.name})"
                ).fetchone()
                assert orphans == (0,), (table.name, column.name)


def assert_answer_key_reproduces_raw(root: Path, result) -> None:
    """Applying a generation's answer key and duplicate map to its clean truth gives its raw files exactly."""
    key = pq.read_table(root / result.answer_key_path).to_pylist()
    dups = pq.read_table(root / result.duplicates_path).to_pylist()
    for name, table in result.tables.items():
        raw = raw_records(root, table.raw_path)
        truth = truth_records(root, table.truth_path, name)
        copies = {d["line"]: d["source_line"] for d in dups if d["table"] == name}
        rows = iter(truth)
        rebuilt: list = [None if line in copies else next(rows) for line in range(len(raw))]
        assert next(rows, None) is None
        entries = [e for e in key if e["table"] == name and e["column"] is not None]
        for entry in entries:  # errors of original rows first: a duplicate copies the dirty row
            if entry["line"] not in copies:
                rebuilt[entry["line"]][entry["column"]] = json.loads(entry["dirty"])
        for line, source in copies.items():
            rebuilt[line] = dict(rebuilt[source])
        for entry in entries:
            if entry["line"] in copies:
                rebuilt[entry["line"]][entry["column"]] = json.loads(entry["dirty"])
        assert rebuilt == raw, name
