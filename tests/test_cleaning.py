"""The small-batch cleaning path: accounting, repairs against the truth, silver rules, gold, loading, CLI."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pymysql
import pytest

from orchestrator.cleaning import columns, engine
from orchestrator.cleaning.pipeline import cleaning_bytes, read_manifest
from orchestrator.cli import main
from orchestrator.config import get_settings
from orchestrator.domain import rules as r
from orchestrator.domain import rules as r_rules
from orchestrator.domain import shop as s
from orchestrator.domain.sizes import size_text
from orchestrator.errors import InvalidInput, ServiceError
from orchestrator.generation import catalogue
from orchestrator.generation.spec import GenerationSpec
from orchestrator.jobs.store import JobStore
from orchestrator.loading.operational import load_silver
from orchestrator.loading.warehouse import load_gold, warehouse_path
from orchestrator.service import execute_job, generate_job, job_outputs, launch_clean
from orchestrator.storage import LocalLake
from tests.gen_helpers import stored_jobs
from tests.mariadb import MARIADB

REPAIRABLE = {k for k, kind in catalogue.KINDS.items() if kind.repairable and not kind.row_level}


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory: pytest.TempPathFactory):
    """One default data set (error rate 0.3, ~36k rows) cleaned end to end through the job store."""
    root = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ORCHESTRATOR_DATA_DIR", str(root))
        mp.setenv("ORCHESTRATOR_SMALL_BATCH_MAX_ROWS", "100000")
        generated = generate_job(GenerationSpec(rows=3000, seed=21), "alice")
        launched = launch_clean("alice", generated.job_id)
        job = execute_job(launched.job.job_id)
        outputs = job_outputs(job)
    return root, generated, job, outputs


def _silver(root: Path, outputs: dict, table: str) -> pd.DataFrame:
    return pq.read_table(root / outputs["silver"][table]).to_pandas()


def _truth(root: Path, generated, table: str) -> pd.DataFrame:
    return pq.read_table(root / generated.tables[table].truth_path).to_pandas()


def test_the_job_succeeds_and_accounts_for_every_row(cleaned):
    root, generated, job, outputs = cleaned
    assert job.state == "succeeded" and job.route == "small" and job.engine == "pandas"
    assert set(job.timings) >= {
        "read_raw",
        "clean",
        "write_silver",
        "gold",
        "load_warehouse",
        "load_operational",
    }
    for name, counts in outputs["tables"].items():
        assert counts["rows_in"] == generated.tables[name].rows
        assert (
            counts["rows_in"] == counts["rows_out"] + counts["quarantined"] + counts["duplicates_removed"]
        ), name
        assert len(_silver(root, outputs, name)) == counts["rows_out"]
        quarantine = pq.read_table(root / outputs["quarantine"][name]).to_pandas()
        assert len(quarantine) == counts["quarantined"]
        assert quarantine["_rule"].notna().all() and set(quarantine["_rule"]) <= {
            x.id for x in r.rules_for(name)
        }
    assert job.rows_out == sum(c["rows_out"] for c in outputs["tables"].values())


def test_raw_files_are_unchanged_by_cleaning(cleaned):
    root, generated, _job, _outputs = cleaned
    manifest = json.loads((root / generated.manifest_path).read_text())
    for table in manifest["tables"].values():
        assert hashlib.sha256((root / table["raw_path"]).read_bytes()).hexdigest() == table["sha256"]


def _silver_cells(root, generated, outputs, kinds: set[str]) -> pd.DataFrame:
    """Answer-key entries of ``kinds`` joined to the silver value and the clean truth of their cell."""
    key = pq.read_table(root / generated.answer_key_path).to_pandas()
    key = key[key["kind"].isin(kinds)]
    parts = []
    for name in key["table"].unique():
        table = s.TABLES[name]
        silver = _silver(root, outputs, name).set_index(table.key)
        truth = _truth(root, generated, name).set_index(table.key)
        entries = key[(key["table"] == name) & key["key"].isin(silver.index)]
        for column, group in entries.groupby("column"):
            parts.append(
                group.assign(
                    silver=silver.loc[group["key"], column].to_numpy(),
                    truth=truth.loc[group["key"], column].to_numpy(),
                )
            )
    return pd.concat(parts, ignore_index=True)


def _equal(a, b) -> bool:
    if pd.isna(a) or pd.isna(b):
        return pd.isna(a) and pd.isna(b)
    if isinstance(a, float | int) and isinstance(b, float | int):
        return abs(a - b) < 0.005
    return a == b


def _blind_totals(root, generated) -> set[int]:
    """Orders whose total has no intact witness left: an item lost its order reference and the payment
    (or the discount) is damaged too. Their total_mismatch carries no information to repair."""
    key = pq.read_table(root / generated.answer_key_path).to_pandas()
    items = _truth(root, generated, "order_items")
    lost_items = key[(key["table"] == "order_items") & (key["column"] == "order_id")]["key"]
    items_broken = set(items[items["item_id"].isin(lost_items)]["order_id"])
    payment = key[(key["table"] == "payments") & key["column"].isin(["order_id", "amount"])]["key"]
    discount = key[(key["table"] == "orders") & (key["column"] == "discount_amount")]["key"]
    return items_broken & (set(payment) | set(discount))


def test_repairable_errors_are_restored_to_their_clean_value(cleaned):
    root, generated, _job, outputs = cleaned
    cells = _silver_cells(root, generated, outputs, REPAIRABLE)
    blind = (cells["kind"] == "total_mismatch") & cells["key"].isin(_blind_totals(root, generated))
    cells = cells[~blind]
    restored = cells.apply(lambda row: _equal(row["silver"], row["truth"]), axis=1)
    by_kind = restored.groupby(cells["kind"]).mean()
    assert set(by_kind.index) == REPAIRABLE
    assert (by_kind >= 0.99).all(), by_kind.to_dict()


def test_unrepairable_errors_never_survive_as_valid_values(cleaned):
    """A cell that kept a dirty value would differ from the truth while not null. The undetectable case is
    excluded: an order before signup whose customer's signup date is itself damaged."""
    root, generated, _job, outputs = cleaned
    kinds = set(catalogue.CELL_KINDS) - REPAIRABLE - {"missing"}
    cells = _silver_cells(root, generated, outputs, kinds)
    wrong = cells[
        cells.apply(lambda row: pd.notna(row["silver"]) and not _equal(row["silver"], row["truth"]), axis=1)
    ]
    key = pq.read_table(root / generated.answer_key_path).to_pandas()
    damaged_signup = set(key[(key["table"] == "customers") & (key["column"] == "signup_at")]["key"])
    orders = _truth(root, generated, "orders").set_index("order_id")
    blind = wrong[
        (wrong["kind"] == "order_before_signup")
        & wrong["key"].map(orders["customer_id"]).isin(damaged_signup)
    ]
    assert len(wrong) - len(blind) <= len(cells) * 0.001, wrong[
        ["table", "column", "kind", "silver", "truth"]
    ]


def test_silver_rows_name_the_rules_their_raw_values_broke(cleaned):
    root, generated, _job, outputs = cleaned
    key = pq.read_table(root / generated.answer_key_path).to_pandas()
    silver = _silver(root, outputs, "orders").set_index("order_id")
    hits = key[(key["table"] == "orders") & (key["column"] == "status") & (key["kind"] == "whitespace")]
    hits = hits[hits["key"].isin(silver.index)]
    assert len(hits) > 5
    for order_id in hits["key"]:
        assert "orders.status.in_set" in silver.loc[order_id, "_issues"].split(";")
    untouched = set(silver.index) - set(key[key["table"] == "orders"]["key"])
    assert silver.loc[sorted(untouched), "_issues"].isna().all()


def test_silver_keys_are_unique_and_references_resolve(cleaned):
    root, _generated, _job, outputs = cleaned
    for name in outputs["silver"]:
        table = s.TABLES[name]
        silver = _silver(root, outputs, name)
        assert silver[table.key].is_unique, name
        for column in table.columns:
            if column.type == s.FK:
                parent = _silver(root, outputs, column.references)[s.TABLES[column.references].key]
                values = silver[column.name].dropna()
                assert values.isin(parent).all(), (name, column.name)
            if column.is_required:
                assert silver[column.name].notna().all(), (name, column.name)
            if column.type == s.CATEGORY:
                assert silver[column.name].dropna().isin(column.categories).all(), (name, column.name)
            if column.pattern and column.type != s.TIMESTAMP:
                assert silver[column.name].dropna().str.fullmatch(column.pattern.strip("^$")).all(), (
                    column.name
                )


def test_gold_aggregates_add_up_to_silver(cleaned):
    root, _generated, _job, outputs = cleaned
    gold = {name: pq.read_table(root / path).to_pandas() for name, path in outputs["gold"].items()}
    orders = _silver(root, outputs, "orders")
    sales = orders[(orders["status"] != "cancelled") & orders["order_ts"].notna()]
    assert gold["daily_revenue"]["orders"].sum() == len(sales)
    assert gold["daily_revenue"]["gross_revenue"].sum() == pytest.approx(
        sales["total_amount"].sum(), abs=0.05
    )
    # Each customer's row agrees with silver in cents, and its average with its own revenue and orders.
    clv = gold["customer_lifetime_value"].set_index("customer_id")
    cents = (sales["total_amount"] * 100).round().astype("int64").groupby(sales["customer_id"]).sum()
    assert ((clv["revenue"] * 100).round().astype("int64") == cents.reindex(clv.index)).all()
    exact = clv["revenue"].to_numpy(float) / clv["orders"].to_numpy(float)
    assert (abs(clv["average_order_value"].to_numpy(float) - exact) <= 0.005 + 1e-9).all()
    funnel = gold["conversion_funnel"].set_index("stage")["sessions"]
    assert funnel["product_view"] >= funnel["add_to_cart"] >= funnel["checkout"] >= funnel["purchase"] > 0
    assert set(gold) == {
        "daily_revenue",
        "revenue_by_category",
        "customer_lifetime_value",
        "return_rate",
        "conversion_funnel",
        "payment_mix",
    }


def test_loads_hold_the_job_once_in_the_warehouse_and_the_operational_db(cleaned):
    root, _generated, job, outputs = cleaned
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ORCHESTRATOR_DATA_DIR", str(root))
        settings = get_settings()
        gold = {name: pq.read_table(root / path).to_pandas() for name, path in outputs["gold"].items()}
        silver = {name: _silver(root, outputs, name) for name in outputs["silver"]}
        load_gold(settings, job.user, job.job_id, gold)  # a second load of the same job
        load_silver(settings, job.user, job.job_id, silver, s.CONTRACT)
        with duckdb.connect(str(warehouse_path(settings)), read_only=True) as con:
            count = con.execute(
                "SELECT count(*) FROM gold_daily_revenue WHERE job_id = ?", [job.job_id]
            ).fetchone()
        assert count[0] == len(gold["daily_revenue"])
        with sqlite3.connect(settings.data_dir / "operational.sqlite") as con:
            rows = con.execute(
                "SELECT count(*) FROM silver_orders WHERE job_id = ?", (job.job_id,)
            ).fetchone()
        assert rows[0] == outputs["tables"]["orders"]["rows_out"]


def test_mysql_loader_is_transactional_and_idempotent(cleaned, mysql_database, monkeypatch):
    root, _generated, job, outputs = cleaned
    monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", str(root))
    monkeypatch.setenv("ORCHESTRATOR_MYSQL_HOST", mysql_database.host)
    monkeypatch.setenv("ORCHESTRATOR_MYSQL_DATABASE", mysql_database.database)
    settings = get_settings()
    silver = {name: _silver(root, outputs, name) for name in ("customers", "orders")}
    assert load_silver(settings, job.user, job.job_id, silver, s.CONTRACT) == sum(
        len(f) for f in silver.values()
    )
    load_silver(settings, job.user, job.job_id, silver, s.CONTRACT)
    broken = {**silver, "orders": silver["orders"].assign(order_ts=pd.NaT).astype({"order_ts": "object"})}
    broken["orders"].loc[0, "order_ts"] = "not a time"
    with pytest.raises(Exception):  # noqa: B017 - any failure mid-load must roll back
        load_silver(settings, job.user, job.job_id, broken, s.CONTRACT)
    import pymysql

    with pymysql.connect(database=mysql_database.database, host="127.0.0.1", user="root") as con:
        cur = con.cursor()
        cur.execute("SELECT count(*) FROM silver_orders WHERE job_id = %s", (job.job_id,))
        assert cur.fetchone()[0] == len(silver["orders"])
        cur.execute("SELECT count(*) FROM silver_customers WHERE job_id = %s", (job.job_id,))
        assert cur.fetchone()[0] == len(silver["customers"])


OPERATIONAL = ["sqlite", "mysql", "mysql refusing local files"]
AWKWARD = [
    "a,b",
    'say "hi"',
    "two\nlines",
    "back\\slash",
    "NULL",
    "\\N",
    "",
    "tab\there",
    "it's",
    "Zoë 東京 😀",
]


@pytest.fixture
def operational(request, monkeypatch) -> Callable[[str, Path], Callable[[str], list]]:
    """Points the loader at the operational database under test and returns a function that runs one SQL
    statement there. A server refusing local files (``local_infile`` off, as on Azure by default) gets
    rows as INSERTs instead of files; the setting is restored afterwards."""
    restore = []

    def use(database: str, root: Path) -> Callable[[str], list]:
        monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", str(root))
        if database == "sqlite":

            def run(sql: str) -> list:
                con = sqlite3.connect(root / "operational.sqlite", isolation_level=None)
                try:
                    return con.execute(sql).fetchall()
                finally:
                    con.close()

            return run
        mysql_database = request.getfixturevalue("mysql_database")
        monkeypatch.setenv("ORCHESTRATOR_MYSQL_HOST", mysql_database.host)
        monkeypatch.setenv("ORCHESTRATOR_MYSQL_DATABASE", mysql_database.database)

        def run(sql: str) -> list:
            with pymysql.connect(database=mysql_database.database, autocommit=True, **MARIADB) as con:
                cur = con.cursor()
                cur.execute(sql)
                return list(cur.fetchall())

        if database == "mysql refusing local files":
            restore.append(run("SELECT @@GLOBAL.local_infile")[0][0])
            run("SET GLOBAL local_infile = 0")
        return run

    yield use
    if restore:
        with pymysql.connect(**MARIADB) as con:
            con.cursor().execute(f"SET GLOBAL local_infile = {int(restore[0])}")


@pytest.mark.parametrize("database", ["sqlite", "mysql"])
def test_the_operational_tables_find_a_jobs_rows_by_index_even_in_tables_made_before_it(
    cleaned, database, operational
):
    """Loading a job deletes its earlier rows and deleting a job removes them: with every job's rows in
    the table, both must go by index, not by reading them all."""
    root, _generated, job, outputs = cleaned
    run = operational(database, root)
    if database == "mysql":
        drop, plan = "DROP INDEX silver_orders_by_job ON silver_orders", "EXPLAIN DELETE"
    else:
        drop, plan = "DROP INDEX silver_orders_by_job", "EXPLAIN QUERY PLAN DELETE"
    settings = get_settings()
    silver = {"orders": _silver(root, outputs, "orders")}
    load_silver(settings, job.user, job.job_id, silver, s.CONTRACT)
    run(drop)
    load_silver(
        settings, job.user, job.job_id, silver, s.CONTRACT
    )  # a table an earlier version made gets it too
    assert "silver_orders_by_job" in str(run(f"{plan} FROM silver_orders WHERE job_id = 'c-x'"))


@pytest.mark.parametrize("database", OPERATIONAL)
def test_the_operational_rows_hold_the_silver_values(cleaned, database, operational):
    """Every cell arrives as silver has it: timestamps as UTC text to the second, empty cells as NULL,
    numbers and text unchanged (text that looks like a null, or holds quotes, commas, new lines,
    backslashes or any script among it), the rules each row broke beside it."""
    root, _generated, job, outputs = cleaned
    run = operational(database, root)
    names = ("customers", "orders", "shipments")  # text, money, and timestamps that may be empty
    silver = {name: _silver(root, outputs, name) for name in names}
    silver["customers"].loc[: len(AWKWARD) - 1, "city"] = AWKWARD
    files = "SHOW GLOBAL STATUS LIKE 'Com_load'"  # LOAD DATA statements the server has run
    files_before = run(files) if database != "sqlite" else None
    load_silver(get_settings(), job.user, job.job_id, silver, s.CONTRACT)
    if database != "sqlite":  # one file per table where the server accepts them, none where it does not
        sent = int(run(files)[0][1]) - int(files_before[0][1])
        assert sent == (len(names) if database == "mysql" else 0)

    def cell(value, column: s.Column):
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return None
        if isinstance(value, datetime | pd.Timestamp):
            return value.strftime("%Y-%m-%d %H:%M:%S")
        if column.type in (s.MONEY, s.DECIMAL1):
            return round(float(value), 2)
        return value.item() if isinstance(value, np.generic) else value

    quote = '"' if database == "sqlite" else "`"
    for name in names:
        table = s.TABLES[name]
        columns = [*table.columns, s.Column("_issues", s.TEXT)]  # stored as "issues"
        listed = ", ".join(f"{quote}{c.name.lstrip('_')}{quote}" for c in columns)
        stored = run(f"SELECT {listed} FROM silver_{name} WHERE job_id = '{job.job_id}' ORDER BY {table.key}")
        frame = silver[name].sort_values(table.key)[[c.name for c in columns]]
        expected = [tuple(map(cell, row, columns)) for row in frame.itertuples(index=False)]
        assert [tuple(map(cell, row, columns)) for row in stored] == expected
        assert any(None in row for row in expected) and expected
    cities = run(f"SELECT city FROM silver_customers WHERE job_id = '{job.job_id}' ORDER BY customer_id")
    assert [city for (city,) in cities[: len(AWKWARD)]] == AWKWARD


@pytest.mark.parametrize("database", OPERATIONAL[1:])  # SQLite's TEXT holds text of any length
def test_a_value_the_operational_database_cannot_hold_loads_nothing_of_the_job(
    cleaned, database, operational
):
    """A currency longer than its column holds fails the load, however the rows are sent (a file sent to
    MySQL only warns of it), and the job's rows from before stay as they were, in the tables loaded ahead
    of the failing one too."""
    root, _generated, job, outputs = cleaned
    run = operational(database, root)
    silver = {name: _silver(root, outputs, name) for name in ("customers", "orders")}
    load_silver(get_settings(), job.user, job.job_id, silver, s.CONTRACT)
    where = f"FROM silver_customers WHERE job_id = '{job.job_id}'"
    cities = f"SELECT city, count(*) {where} GROUP BY city ORDER BY city"
    before = run(cities)
    changed = {"customers": silver["customers"].assign(city="Elsewhere"), "orders": silver["orders"].copy()}
    changed["orders"].loc[len(changed["orders"]) - 1, "currency"] = "X" * 300  # VARCHAR(255)
    with pytest.raises((ServiceError, pymysql.err.DataError)):
        load_silver(get_settings(), job.user, job.job_id, changed, s.CONTRACT)
    assert run(cities) == before
    assert run(f"SELECT count(*) FROM silver_orders WHERE job_id = '{job.job_id}'")[0][0] == len(
        silver["orders"]
    )


def test_a_running_cleaning_tells_which_of_its_stages_it_is_in(data_dir, monkeypatch):
    generated = generate_job(GenerationSpec(rows=40, seed=3), "alice")
    told = []
    record_progress = JobStore.record_progress

    def observed(self, job_id: str, done: float, text: str):  # the real store, watched
        told.append((round(done, 3), text))
        return record_progress(self, job_id, done, text)

    monkeypatch.setattr(JobStore, "record_progress", observed)
    job = execute_job(launch_clean("alice", generated.job_id).job.job_id)
    assert told == [
        (0.0, "now: read raw"),
        (0.167, "now: clean"),
        (0.333, "now: write silver and quarantine"),
        (0.5, "now: build gold"),
        (0.667, "now: load the warehouse"),
        (0.833, "now: load the operational database"),
        (1.0, "now: write the silver manifest"),
    ]
    assert (job.state, job.progress) == ("succeeded", 1.0)


def test_launching_twice_queues_one_job(data_dir, monkeypatch):
    generated = generate_job(GenerationSpec(rows=100, seed=1, tables=("customers", "orders")), "alice")
    first = launch_clean("alice", generated.job_id)
    second = launch_clean("alice", generated.job_id)
    assert first.created and not second.created and second.job.job_id == first.job.job_id


def test_another_users_job_cannot_be_launched(data_dir):
    generated = generate_job(GenerationSpec(rows=50, seed=1, tables=("orders",)), "alice")
    with pytest.raises(Exception, match="no generated job"):
        launch_clean("bob", generated.job_id)


def test_a_large_batch_is_routed_to_spark_and_pandas_only_when_asked(data_dir, monkeypatch, capsys):
    monkeypatch.setenv("ORCHESTRATOR_SMALL_BATCH_MAX_ROWS", "100")
    generated = generate_job(GenerationSpec(rows=200, seed=1, tables=("orders",)), "alice")
    launched = launch_clean("alice", generated.job_id)  # queued for the daily large run, not run here
    assert launched.job.route == "large" and launched.engine == "spark"
    assert launched.job.params == {"engine": "spark", "start": "now", "cloud": "local"}
    store = JobStore.default()
    store.cancel(launched.job.job_id)
    store.close()
    assert main(["run", generated.job_id, "--engine", "pandas", "--wait", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["state"] == "succeeded" and out["route"] == "large" and out["engine"] == "pandas"
    assert Path(data_dir / out["silver"]["orders"]).is_file()


def test_run_json_reports_state_route_counts_and_paths(data_dir, capsys):
    assert main(["generate", "--user", "alice", "--rows", "300", "--seed", "2", "--json"]) == 0
    job_id = json.loads(capsys.readouterr().out)["job_id"]
    assert main(["run", job_id, "--wait", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["state"] == "succeeded" and out["route"] == "small" and out["engine"] == "pandas"
    assert out["rows_in"] == out["rows_out"] + out["rows_quarantined"] + sum(
        t["duplicates_removed"] for t in out["tables"].values()
    )
    for group in ("silver", "quarantine", "gold"):
        assert all((data_dir / p).is_file() for p in out[group].values())
    assert main(["jobs", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [j["kind"] for j in listed] == ["clean", "generate"]
    assert listed[1]["progress"] == 1.0 and listed[1]["progress_text"] == "orders: 300 of 300"
    assert listed[0]["remote_run"] is None  # cleaned in-process, by pandas


def test_a_missing_job_is_a_clear_error(data_dir, capsys):
    assert main(["run", "g-nothing-here", "--user", "alice"]) == 1
    assert "no generated job g-nothing-here" in capsys.readouterr().err
    assert read_manifest is not None and not (data_dir / "silver").exists()
    assert not LocalLake(data_dir).exists("raw/alice/g-nothing-here/manifest.json")


def _disk_of(monkeypatch, free: int) -> None:
    monkeypatch.setattr(LocalLake, "free_bytes", lambda lake: free)  # the lake's disk, made small


def test_a_cleaning_that_would_fill_the_disk_is_refused_and_records_nothing(data_dir, monkeypatch, capsys):
    generated = generate_job(GenerationSpec(rows=300, seed=1), "alice")
    manifest = read_manifest(LocalLake(data_dir), "alice", generated.job_id)
    need = cleaning_bytes(get_settings(), manifest)
    raw = sum(table.bytes for table in generated.tables.values())
    assert raw < need < 1.1 * raw  # silver, gold and the warehouse, and the operational database in SQLite
    _disk_of(monkeypatch, need)
    with pytest.raises(InvalidInput, match=r"^job_id: the lake's disk would fill up: cleaning ") as refused:
        launch_clean("alice", generated.job_id)
    assert f"writes about {size_text(need)} " in str(refused.value)
    assert main(["run", generated.job_id, "--wait"]) == 2
    assert capsys.readouterr().err.startswith("error: job_id: the lake's disk would fill up")
    assert [j.kind for j in stored_jobs("alice")] == ["generate"]  # nothing recorded
    assert not (data_dir / "silver").exists() and not (data_dir / "operational.sqlite").exists()

    monkeypatch.setenv("ORCHESTRATOR_MYSQL_HOST", "127.0.0.1")  # the operational database on its own server
    assert cleaning_bytes(get_settings(), manifest) < 0.25 * need
    assert launch_clean("alice", generated.job_id).created  # fits beside silver, gold and the warehouse


def test_a_queued_cleaning_whose_disk_filled_before_its_run_fails_saying_why(data_dir, monkeypatch):
    generated = generate_job(GenerationSpec(rows=300, seed=1), "alice")
    queued = launch_clean("alice", generated.job_id, scheduled=True).job  # room enough at launch
    manifest = read_manifest(LocalLake(data_dir), "alice", generated.job_id)
    _disk_of(monkeypatch, cleaning_bytes(get_settings(), manifest))  # other jobs filled the disk since
    failed = execute_job(queued.job_id)  # the scheduled run
    assert failed.state == "failed"
    assert failed.error.startswith(f"job_id: the lake's disk would fill up: cleaning {generated.job_id} ")
    assert not (data_dir / "silver").exists() and not (data_dir / "operational.sqlite").exists()


def test_silver_passes_every_error_rule_of_the_quality_engine(cleaned, monkeypatch):
    """The quality engine, reading the same rule spec, finds no error-rule violation in silver; warnings
    are only the optional values cleaning had to leave null."""
    from orchestrator import quality

    root, _generated, job, _outputs = cleaned
    monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", str(root))
    run = quality.profile_job("alice", job.job_id, "silver")
    failing = {r.rule_id: r.failed for r in run.rules if r.severity == r_rules.ERROR and r.failed}
    assert failing == {}
    warnings = {r.rule_id for r in run.rules if r.failed}
    assert warnings and all(rule.endswith(".not_null") for rule in warnings)
    kinds = {k.kind: k for k in run.score.kinds}
    assert (
        kinds["whitespace"].fixed / (kinds["whitespace"].injected - kinds["whitespace"].quarantined) >= 0.99
    )
    for kind in ("email_malformed", "phone_malformed", "wrong_type", "unknown_category", "future_date"):
        assert kinds[kind].remaining == 0 and kinds[kind].nulled > 0, kind  # caught and set aside


def test_timestamps_are_real_only_in_canonical_form_on_real_calendar_days():
    """The timestamp rule read straight from the string buffer agrees with Python's calendar, cell by cell."""
    texts = [
        "2024-02-29T23:59:59Z",  # leap day
        "2023-02-29T10:00:00Z",  # not a leap year
        "1900-02-29T10:00:00Z",  # century, not a leap year
        "2000-02-29T00:00:00Z",  # divisible by 400, a leap year
        "2024-04-31T10:00:00Z",
        "2024-13-01T10:00:00Z",
        "2024-00-10T10:00:00Z",
        "2024-06-00T10:00:00Z",
        "2024-06-10T24:00:00Z",
        "2024-06-10T10:60:00Z",
        "2024-06-10T10:00:60Z",
        "2024-06-10 10:00:00Z",
        "2024-06-10T10:00:00",
        " 2024-06-10T10:00:00Z",
        "2024-6-10T10:00:00Z",
        "2024-06-10T10:00:00+00:00",
        "2024-06-1٠T10:00:00Z",  # a non-ASCII digit
        "1969-12-31T23:59:59Z",
        "not a date",
        "",
        None,
    ]
    array = pa.array(["padding", *texts]).slice(1)  # an offset into the buffers, as a chunk may have
    seconds, real = columns.iso_seconds(array)

    def truth(text: str | None) -> int | None:
        try:
            moment = datetime.strptime(text or "", "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return None
        return int(moment.timestamp()) if moment.strftime("%Y-%m-%dT%H:%M:%SZ") == text else None

    expected = [truth(text) for text in texts]
    assert [bool(flag) for flag in real] == [value is not None for value in expected]
    assert [int(v) for v, flag in zip(seconds, real, strict=True) if flag] == [
        v for v in expected if v is not None
    ]


def _raw_table(table: str, rows: list[dict[str, str | None]]) -> pa.Table:
    """Raw text of ``rows`` in the schema's columns; categories default to an allowed value."""
    defaults = {c.name: c.categories[0] for c in s.TABLES[table].columns if c.type == s.CATEGORY}
    return pa.table(
        {
            c.name: pa.array([{**defaults, **row}.get(c.name) for row in rows], pa.string())
            for c in s.TABLES[table].columns
        }
    )


def test_an_order_total_is_not_taken_from_items_whose_completeness_is_unproven():
    """Order 2's first item lost its order id and its second item its line number: the items cannot prove
    they are all there, so the lost total comes from the payment (50.99 + 8.99), not from the one item."""
    ts = "2024-05-30T15:00:00Z"
    item = {"product_id": "1", "quantity": "1"}
    raw = {
        "orders": _raw_table(
            "orders",
            [
                {
                    "order_id": "1",
                    "customer_id": "1",
                    "order_ts": ts,
                    "discount_amount": "0",
                    "total_amount": "59.98",
                },
                {
                    "order_id": "2",
                    "customer_id": "1",
                    "order_ts": ts,
                    "discount_amount": "8.99",
                    "total_amount": "none",
                },
                {
                    "order_id": "3",
                    "customer_id": "1",
                    "order_ts": ts,
                    "discount_amount": "0",
                    "total_amount": "10",
                },
            ],
        ),
        "order_items": _raw_table(
            "order_items",
            [
                {
                    **item,
                    "item_id": "10",
                    "order_id": "1",
                    "line_no": "1",
                    "unit_price": "31.99",
                    "line_total": "31.99",
                },
                {
                    **item,
                    "item_id": "11",
                    "order_id": "1",
                    "line_no": "2",
                    "unit_price": "27.99",
                    "line_total": "27.99",
                },
                {
                    **item,
                    "item_id": "12",
                    "order_id": None,
                    "line_no": "1",
                    "unit_price": "31.99",
                    "line_total": "31.99",
                },
                {
                    **item,
                    "item_id": "13",
                    "order_id": "2",
                    "line_no": "?",
                    "unit_price": "27.99",
                    "line_total": "27.99",
                },
                {
                    **item,
                    "item_id": "14",
                    "order_id": "3",
                    "line_no": "1",
                    "unit_price": "10",
                    "line_total": "10",
                },
            ],
        ),
        "payments": _raw_table(
            "payments",
            [
                {"payment_id": str(n), "order_id": str(n), "amount": amount, "paid_at": ts}
                for n, amount in ((1, "59.98"), (2, "50.99"), (3, "10"))
            ],
        ),
    }
    orders = engine.clean(s.CONTRACT, raw, as_of=2_000_000_000)["orders"].silver.set_index("order_id")
    assert orders["total_amount"].to_dict() == {1: 59.98, 2: 59.98, 3: 10.0}


def test_a_category_typo_is_repaired_only_to_the_one_allowed_value_an_edit_away():
    """Known answers for the orders' status: letters dropped, doubled, replaced or swapped are repaired;
    spacing and case are normalised first; anything else (or a value two allowed values are near) is
    nulled and blamed on the set rule."""
    table = s.TABLES["orders"]
    status = next(c for c in table.columns if c.name == "status")
    cases = {
        "paid": ("paid", None),
        "shiped": ("shipped", "orders.status.in_set"),
        "shippped": ("shipped", "orders.status.in_set"),
        "delivxred": ("delivered", "orders.status.in_set"),
        "dleivered": ("delivered", "orders.status.in_set"),
        "piad": ("paid", "orders.status.in_set"),
        "  Cancelled ": ("cancelled", "orders.status.in_set"),
        "zzzz": (None, "orders.status.in_set"),
        "refunded": (None, "orders.status.in_set"),
    }
    cleaned = columns.clean_column(table, status, pa.array(list(cases)), as_of=0)
    issues = cleaned.issues(np.arange(len(cases)))
    got = dict(zip(cases, zip(cleaned.values.to_pylist(), issues, strict=True), strict=True))
    assert got == cases
    assert r.closest_value("cat", ("bat", "cut")) is None  # two allowed values one edit away: no repair
