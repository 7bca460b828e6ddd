"""Reading a job back: its record in the job store, raw records, clean truth, answer key and duplicate map."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from orchestrator.generation import schema as s
from orchestrator.jobs.store import Job, JobStore


def stored_job(job_id: str) -> Job:
    """The job as the configured job store holds it now."""
    store = JobStore.default()
    try:
        return store.get(job_id)
    finally:
        store.close()


def raw_records(root: Path, path: str) -> list[dict]:
    with (root / path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def truth_records(root: Path, path: str, table: str) -> list[dict]:
    """Truth rows rendered as JSON values (timestamps as ISO text), comparable with raw records."""
    rows = pq.read_table(root / path).to_pylist()
    ts_columns = [c.name for c in s.TABLES[table].columns if c.type == s.TIMESTAMP]
    for row in rows:
        for name in ts_columns:
            if row[name] is not None:
                row[name] = row[name].strftime("%Y-%m-%dT%H:%M:%SZ")
    return rows
