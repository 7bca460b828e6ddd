"""The warehouse: a DuckDB file, the local stand-in for Synapse (which reads the gold parquet in Azure).

Each gold table becomes ``gold_<name>`` with the job's ``user`` and ``job_id``; loading a job replaces its
rows in one transaction, so loading twice leaves one copy and a failed load leaves the previous state.

DuckDB lets one process at a time write the file (another process's load, or a delete): a load or delete
waits for it up to ``LOCK_WAIT_SECONDS``, and a hold longer than that is a transient error, so the job is
tried again. The connection test opens it read-only: it shares the file with other readers and writes
nothing, and a load waits only the moment it takes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from orchestrator.config import DATA_DIR_ENV, Settings
from orchestrator.errors import ServiceError
from orchestrator.health import ConnectionCheck

LOCK_WAIT_SECONDS = 30.0  # how long a load or delete waits while another process holds the warehouse file
_LOCK_HELD = "Could not set lock on file"  # DuckDB's words when another process holds the file


def warehouse_path(settings: Settings) -> Path:
    return settings.data_dir / "warehouse" / "warehouse.duckdb"


def _connect(path: Path, *, read_only: bool = False, wait: float = 0.0) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, waiting up to ``wait`` seconds (pausing longer each time) while another process
    holds its file; a hold that outlasts the wait is a ServiceError naming the file as busy, which a job
    treats as transient and is tried again."""
    deadline = time.monotonic() + wait
    pause = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as error:
            if _LOCK_HELD not in str(error):
                raise
            if time.monotonic() + pause > deadline:
                raise ServiceError(
                    f"the warehouse {path} is busy: another process still holds it after {wait:g} s"
                    " (a load or delete in progress?); try again when it is done"
                ) from None
        time.sleep(pause)
        pause = min(2 * pause, 1.0)


def load_gold(settings: Settings, user: str, job_id: str, gold: Mapping[str, pd.DataFrame | pa.Table]) -> int:
    """Replace the job's rows in every gold table the job has, whatever its contract declares; returns the
    rows loaded. A column the warehouse table lacks (another contract's gold table of that name) is added."""
    path = warehouse_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    loaded = 0
    with _connect(path, wait=LOCK_WAIT_SECONDS) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            for name, frame in gold.items():
                table = f"gold_{name}"
                con.register("frame", frame)
                con.execute(
                    "CREATE TEMP TABLE staged AS SELECT *, ?::VARCHAR AS user, ?::VARCHAR AS job_id"
                    " FROM frame",
                    [user, job_id],
                )
                con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM staged WHERE false")
                held = {row[1] for row in con.execute(f"PRAGMA table_info('{table}')").fetchall()}
                for column, kind, *_ in con.execute("DESCRIBE staged").fetchall():
                    if column not in held:
                        con.execute(f'ALTER TABLE {table} ADD COLUMN "{column}" {kind}')
                con.execute(f"DELETE FROM {table} WHERE job_id = ?", [job_id])
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM staged")
                con.execute("DROP TABLE staged")
                con.unregister("frame")
                loaded += len(frame)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return loaded


def delete_jobs(settings: Settings, job_ids: list[str]) -> int:
    """Remove these cleaning jobs' rows from every gold table in one transaction; returns the rows removed.
    A warehouse that does not exist yet is not created."""
    path = warehouse_path(settings)
    if not job_ids or not path.exists():
        return 0
    marks = ", ".join("?" for _ in job_ids)
    removed = 0
    with _connect(path, wait=LOCK_WAIT_SECONDS) as con:
        tables = [
            name
            for (name,) in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE left(table_name, 5) = 'gold_'"
            ).fetchall()
        ]
        con.execute("BEGIN TRANSACTION")
        try:
            for table in tables:
                (count,) = con.execute(f"DELETE FROM {table} WHERE job_id IN ({marks})", job_ids).fetchone()
                removed += count
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return removed


def test_connection(settings: Settings) -> ConnectionCheck:
    """Open the warehouse once, read-only, and count its gold tables; one that does not exist yet is not
    created here (DuckDB opens no missing file read-only), and one a load is writing is reported in use."""
    path = warehouse_path(settings)
    if not path.exists():
        folder = next(p for p in path.parents if p.exists())
        if not (folder.is_dir() and os.access(folder, os.W_OK)):
            return ConnectionCheck(
                False,
                f"the warehouse {path} cannot be created: {folder} is not a writable folder",
                DATA_DIR_ENV,
            )
        return ConnectionCheck(True, f"no warehouse yet; the first load creates {path}")
    try:
        with _connect(path, read_only=True) as con:
            tables = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE starts_with(table_name, 'gold_')"
            ).fetchone()[0]
    except ServiceError:
        return ConnectionCheck(
            True,
            f"DuckDB warehouse {path} is in use by another process (a load in progress?); loads wait up to"
            f" {LOCK_WAIT_SECONDS:g} s for it",
        )
    except duckdb.Error as error:
        return ConnectionCheck(
            False, f"the warehouse {path} cannot be read ({type(error).__name__})", DATA_DIR_ENV
        )
    return ConnectionCheck(True, f"DuckDB warehouse {path} answers: {tables} gold table(s)")
