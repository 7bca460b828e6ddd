"""The warehouse: a DuckDB file, the local stand-in for Synapse (which reads the gold parquet in Azure).

Each gold table becomes ``gold_<name>`` with the job's ``user`` and ``job_id``; loading a job replaces its
rows in one transaction, so loading twice leaves one copy and a failed load leaves the previous state.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pandas as pd

from orchestrator.config import DATA_DIR_ENV, Settings
from orchestrator.health import ConnectionCheck


def warehouse_path(settings: Settings) -> Path:
    return settings.data_dir / "warehouse" / "warehouse.duckdb"


def load_gold(settings: Settings, user: str, job_id: str, gold: dict[str, pd.DataFrame]) -> int:
    """Replace the job's rows in every gold table; returns the rows loaded."""
    path = warehouse_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    loaded = 0
    with duckdb.connect(str(path)) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            for name, frame in gold.items():
                table = f"gold_{name}"
                staged = frame.assign(user=user, job_id=job_id)
                con.register("staged", staged)
                con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM staged WHERE false")
                con.execute(f"DELETE FROM {table} WHERE job_id = ?", [job_id])
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM staged")
                con.unregister("staged")
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
    with duckdb.connect(str(path)) as con:
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
    """Open the warehouse once and count its gold tables; one that does not exist yet is not created here."""
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
        with duckdb.connect(str(path)) as con:
            tables = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE starts_with(table_name, 'gold_')"
            ).fetchone()[0]
    except duckdb.IOException:
        return ConnectionCheck(
            False,
            f"the warehouse {path} is held by another process (a load in progress?); try again",
            DATA_DIR_ENV,
        )
    except duckdb.Error as error:
        return ConnectionCheck(
            False, f"the warehouse {path} cannot be read ({type(error).__name__})", DATA_DIR_ENV
        )
    return ConnectionCheck(True, f"DuckDB warehouse {path} answers: {tables} gold table(s)")
