"""The warehouse: a DuckDB file, the local stand-in for Synapse (which reads the gold parquet in Azure).

Each gold table becomes ``gold_<name>`` with the job's ``user`` and ``job_id``; loading a job replaces its
rows in one transaction, so loading twice leaves one copy and a failed load leaves the previous state.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from orchestrator.config import Settings


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
