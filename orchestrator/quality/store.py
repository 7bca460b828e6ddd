"""Every run's metrics, kept in a DuckDB file under the data root, so history and comparisons need no rerun.

One row per run (with its full JSON, which renders a page at once), per (run, table, rule), per
(run, table, column) and per (run, kind) of the score.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb

from orchestrator.config import Settings
from orchestrator.domain.rules import ERROR, WARNING
from orchestrator.errors import NotFound, ServiceError
from orchestrator.quality.model import QualityRun

_LOCK_WAIT_SECONDS = 10.0
_DDL = (
    "CREATE TABLE IF NOT EXISTS runs (run_id VARCHAR PRIMARY KEY, user_name VARCHAR, job_id VARCHAR, "
    "layer VARCHAR, source_job_id VARCHAR, created_at TIMESTAMP, seconds DOUBLE, payload VARCHAR)",
    "CREATE TABLE IF NOT EXISTS rule_metrics (run_id VARCHAR, user_name VARCHAR, job_id VARCHAR, "
    "layer VARCHAR, "
    "table_name VARCHAR, rule_id VARCHAR, check_name VARCHAR, severity VARCHAR, status VARCHAR, "
    "checked BIGINT, failed BIGINT, share DOUBLE)",
    "CREATE TABLE IF NOT EXISTS column_metrics (run_id VARCHAR, user_name VARCHAR, job_id VARCHAR, "
    "layer VARCHAR, table_name VARCHAR, column_name VARCHAR, kind VARCHAR, rows BIGINT, present BIGINT, "
    "completeness DOUBLE, distinct_count BIGINT, min_value VARCHAR, max_value VARCHAR)",
    "CREATE TABLE IF NOT EXISTS score_metrics (run_id VARCHAR, user_name VARCHAR, job_id VARCHAR, "
    "layer VARCHAR, kind VARCHAR, injected BIGINT, judgeable BIGINT, detected BIGINT, recall DOUBLE, "
    "flagged BIGINT, precision DOUBLE, fixed BIGINT, nulled BIGINT, remaining BIGINT, quarantined BIGINT, "
    "dropped BIGINT)",
)


def store_path(settings: Settings) -> Path:
    return settings.state_dir / "quality.duckdb"


@contextmanager
def _connect(settings: Settings, *, write: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """The metrics file, waiting while another process holds its lock; a hold past the wait is a
    ServiceError naming the store as busy. Readers (``write=False``) open it read-only, so the pages of
    many sessions read it at once and wait only for a process that writes (a profile being saved)."""
    path = store_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not write and not path.exists():
        write = True  # the first use makes the file and its tables
    deadline = time.monotonic() + _LOCK_WAIT_SECONDS
    pause = 0.05
    while True:
        try:
            con = duckdb.connect(str(path), read_only=not write)
            break
        except duckdb.IOException as error:
            if "Could not set lock" not in str(error):
                raise
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"the quality store {path.name} is busy: other processes held it for "
                    f"{_LOCK_WAIT_SECONDS:g} s (profiles being saved); try again in a moment"
                ) from None
            time.sleep(pause * random.uniform(0.5, 1.5))  # apart, so no waiting process always loses
            pause = min(2 * pause, 0.5)
    try:
        if write:
            for ddl in _DDL:
                con.execute(ddl)
        yield con
    finally:
        con.close()


def save(run: QualityRun, settings: Settings) -> None:
    """Store a run and its metrics in one transaction."""
    ids = (run.run_id, run.user, run.job_id, run.layer)
    with _connect(settings) as con:
        con.execute("BEGIN")
        con.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                *ids,
                run.source_job_id,
                datetime.fromisoformat(run.created_at).replace(tzinfo=None),
                run.seconds,
                json.dumps(run.to_dict()),
            ],
        )
        rules = [
            (*ids, x.table, x.rule_id, x.check, x.severity, x.status, x.checked, x.failed, x.share)
            for x in run.rules
        ]
        if rules:
            con.executemany("INSERT INTO rule_metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rules)
        columns = [
            (
                *ids,
                c.table,
                c.column,
                c.kind,
                c.rows,
                c.present,
                c.completeness,
                c.distinct,
                None if c.minimum is None else str(c.minimum),
                None if c.maximum is None else str(c.maximum),
            )
            for t in run.tables
            for c in t.columns
        ]
        if columns:
            con.executemany(
                "INSERT INTO column_metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", columns
            )
        if run.score:
            kinds = [
                (
                    *ids,
                    k.kind,
                    k.injected,
                    k.judgeable,
                    k.detected,
                    k.recall,
                    k.flagged,
                    k.precision,
                    k.fixed,
                    k.nulled,
                    k.remaining,
                    k.quarantined,
                    k.dropped,
                )
                for k in run.score.kinds
            ]
            if kinds:
                con.executemany(
                    "INSERT INTO score_metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", kinds
                )
        con.execute("COMMIT")


def load(run_id: str, settings: Settings) -> QualityRun:
    """A stored run by id; NotFound if there is none."""
    with _connect(settings, write=False) as con:
        row = con.execute("SELECT payload FROM runs WHERE run_id = ?", [run_id]).fetchone()
    if row is None:
        raise NotFound(f"no quality run {run_id} is stored")
    return QualityRun.from_dict(json.loads(row[0]))


def latest(user: str, job_id: str, layer: str, settings: Settings) -> QualityRun | None:
    """The newest stored run of a job's layer, or None."""
    with _connect(settings, write=False) as con:
        row = con.execute(
            "SELECT payload FROM runs WHERE user_name = ? AND job_id = ? AND layer = ? "
            "ORDER BY created_at DESC, run_id DESC LIMIT 1",
            [user, job_id, layer],
        ).fetchone()
    return QualityRun.from_dict(json.loads(row[0])) if row else None


def history(user: str, job_id: str | None, settings: Settings) -> list[dict]:
    """The stored runs of a user (of one job, if given), newest first, with their failing rules and the
    rows failing them, errors and warnings apart."""
    per_severity = (
        "count(m.rule_id) FILTER (WHERE m.status = 'failed' AND m.severity = ?), "
        "coalesce(sum(m.failed) FILTER (WHERE m.severity = ?), 0)"
    )
    with _connect(settings, write=False) as con:
        rows = con.execute(
            f"SELECT r.run_id, r.job_id, r.layer, r.created_at, r.seconds, {per_severity}, {per_severity} "
            "FROM runs r LEFT JOIN rule_metrics m USING (run_id) WHERE r.user_name = ? "
            "AND (CAST(? AS VARCHAR) IS NULL OR r.job_id = ?) "
            "GROUP BY ALL ORDER BY r.created_at DESC, r.run_id DESC",
            [ERROR, ERROR, WARNING, WARNING, user, job_id, job_id],
        ).fetchall()
    keys = (
        "run_id",
        "job_id",
        "layer",
        "created_at",
        "seconds",
        "failed_errors",
        "error_rows",
        "failed_warnings",
        "warning_rows",
    )
    return [dict(zip(keys, row, strict=True)) | {"created_at": row[3].isoformat()} for row in rows]


def delete_jobs(job_ids: list[str], settings: Settings) -> int:
    """Forget every stored run of these jobs (and of the layers descending from them) with its metrics;
    returns how many runs went. A store that does not exist yet is not created."""
    if not job_ids or not store_path(settings).exists():
        return 0
    marks = ", ".join("?" for _ in job_ids)
    with _connect(settings) as con:
        con.execute("BEGIN")
        runs = f"SELECT run_id FROM runs WHERE job_id IN ({marks}) OR source_job_id IN ({marks})"
        (gone,) = con.execute(f"SELECT count(*) FROM ({runs})", [*job_ids, *job_ids]).fetchone()
        for table in ("rule_metrics", "column_metrics", "score_metrics", "runs"):
            con.execute(f"DELETE FROM {table} WHERE run_id IN ({runs})", [*job_ids, *job_ids])
        con.execute("COMMIT")
    return gone
