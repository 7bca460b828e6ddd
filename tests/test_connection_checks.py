"""The settings page's connection tests of the warehouse and the operational database, against the real
engines: DuckDB and SQLite files in a data folder, and the MariaDB server for MySQL."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from orchestrator.config import MySQLSettings, Settings, get_settings
from orchestrator.generation.spec import GenerationSpec
from orchestrator.health import ConnectionCheck
from orchestrator.loading import operational, warehouse
from orchestrator.service import execute_job, generate_job, launch_clean
from orchestrator.ui_support import connection_checks
from tests.gen_helpers import duckdb_held


def test_before_the_first_load_nothing_is_created_and_after_it_the_tables_are_counted(settings: Settings):
    checks = connection_checks(settings)
    assert checks["warehouse"].ok and checks["warehouse"].message.startswith("no warehouse yet")
    assert checks["operational database"].ok
    assert checks["operational database"].message.startswith("no operational database yet")
    assert not warehouse.warehouse_path(settings).exists()
    assert not operational.sqlite_path(settings).exists()

    job = generate_job(GenerationSpec(rows=60, seed=2), "alice")
    cleaned = execute_job(launch_clean("alice", job.job_id).job.job_id)
    assert cleaned.state == "succeeded"
    gold = list(
        (settings.data_dir / "gold" / "analytics" / "alice" / job.job_id / cleaned.job_id).glob("*.parquet")
    )
    silver = list(
        (settings.data_dir / "silver" / "cleaned" / "alice" / job.job_id / cleaned.job_id).glob("*.parquet")
    )
    checks = connection_checks(settings)
    assert checks["warehouse"].ok
    assert checks["warehouse"].message.endswith(f"answers: {len(gold)} gold table(s)")
    assert checks["operational database"].ok
    assert checks["operational database"].message == (
        f"SQLite {operational.sqlite_path(settings)} answers: {len(silver)} silver table(s)"
    )


def test_the_warehouse_check_reads_beside_other_readers_and_names_a_writer(settings: Settings):
    """The check opens the warehouse read-only: it counts the tables while another process reads them, and a
    load writing it is reported in use, not as a fault of the settings."""
    path = warehouse.warehouse_path(settings)
    warehouse.load_gold(settings, "alice", "c-1", {"payment_mix": pd.DataFrame({"orders": [1]})})
    with duckdb_held(path, read_only=True):
        check = warehouse.test_connection(settings)
    assert check == ConnectionCheck(True, f"DuckDB warehouse {path} answers: 1 gold table(s)")
    with duckdb_held(path):
        check = warehouse.test_connection(settings)
    assert check.ok and check.field is None
    assert check.message == (
        f"DuckDB warehouse {path} is in use by another process (a load in progress?); loads wait up to 30 s"
        " for it"
    )
    assert warehouse.test_connection(settings).message.endswith("answers: 1 gold table(s)")  # free again


def test_a_warehouse_folder_that_cannot_be_written_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the data folder should be")
    monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", str(blocked / "data"))
    check = warehouse.test_connection(get_settings())
    assert not check.ok and check.field == "ORCHESTRATOR_DATA_DIR"
    assert "cannot be created" in check.message


def _mysql(monkeypatch: pytest.MonkeyPatch, database: MySQLSettings, **overrides: str) -> Settings:
    values = {
        "HOST": database.host,
        "PORT": str(database.port),
        "DATABASE": database.database,
        "PASSWORD": database.password,
        **overrides,
    }
    for name, value in values.items():
        monkeypatch.setenv(f"ORCHESTRATOR_MYSQL_{name}", value)
    return get_settings()


def test_mysql_answers_and_each_wrong_setting_is_named(data_dir, mysql_database, monkeypatch):
    settings = _mysql(monkeypatch, mysql_database)
    check = operational.test_connection(settings)
    assert check.ok, check.message
    assert check.message == (
        f"MySQL at {mysql_database.host}:{mysql_database.port}, database {mysql_database.database} "
        "answers: 0 silver table(s)"
    )
    job = generate_job(GenerationSpec(rows=40, seed=5, tables=("customers", "orders")), "alice")
    assert execute_job(launch_clean("alice", job.job_id).job.job_id).state == "succeeded"
    assert operational.test_connection(settings).message.endswith("answers: 2 silver table(s)")

    cases = [
        ({"PASSWORD": "not-the-password"}, "ORCHESTRATOR_MYSQL_PASSWORD", "refused user 'root'"),
        (
            {"DATABASE": "no_such_database"},
            "ORCHESTRATOR_MYSQL_DATABASE",
            "has no database 'no_such_database'",
        ),
        ({"PORT": "9"}, "ORCHESTRATOR_MYSQL_HOST", "at 127.0.0.1:9 is not reachable"),
    ]
    for overrides, field, said in cases:
        check = operational.test_connection(_mysql(monkeypatch, mysql_database, **overrides))
        assert (check.ok, check.field) == (False, field), check
        assert said in check.message and "not-the-password" not in check.message
