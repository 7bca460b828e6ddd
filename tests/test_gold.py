"""Gold per contract: the tables a contract declares, built by one DuckDB query each over the silver tables,
the same for both engines; what a query may not do, refused when the contract is read and when it runs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from orchestrator.cleaning.engine import clean
from orchestrator.cleaning.gold import GoldError, build_gold, run_query, sandbox, streamed
from orchestrator.cleaning.pipeline import read_manifest, read_raw
from orchestrator.config import Settings
from orchestrator.contracts import job_contract
from orchestrator.domain import model as m
from orchestrator.domain.contract import ContractError, built_in, dump_contract, parse_contract
from orchestrator.generation.generator import generate
from orchestrator.generation.spec import GenerationSpec
from orchestrator.loading.warehouse import load_gold, warehouse_path
from orchestrator.storage import LocalLake

REPOSITORY = Path(__file__).resolve().parents[1]
SHOP_GOLD = (
    "daily_revenue",
    "revenue_by_category",
    "customer_lifetime_value",
    "return_rate",
    "conversion_funnel",
    "payment_mix",
)


def _cleaned(root: Path, contract: str, rows: int) -> tuple[m.Contract, dict[str, pd.DataFrame]]:
    """A generated job of ``contract`` cleaned by the in-process engine: its contract and silver frames."""
    lake = LocalLake(root)
    spec = GenerationSpec(rows=rows, seed=7, error_rate=0.3, contract=contract)
    job = generate(spec, "alice", settings=Settings(data_dir=root), storage=lake)
    manifest = read_manifest(lake, "alice", job.job_id)
    followed = job_contract(lake, "alice", job.job_id).contract
    as_of = int(datetime.fromisoformat(manifest["as_of"]).timestamp())
    results = clean(followed, read_raw(lake, manifest, followed), as_of)
    return followed, {name: result.silver for name, result in results.items()}


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    contract, silver = _cleaned(tmp_path_factory.mktemp("shop"), "shop", 1500)
    return contract, silver, build_gold(contract, silver)


def _cents(values: pd.Series) -> pd.Series:
    return np.round(values.astype("float64"), 2)


def test_the_shops_gold_is_its_six_tables_with_todays_columns_and_types(shop):
    _contract, _silver, gold = shop
    assert tuple(gold) == SHOP_GOLD
    money, time = pa.float64(), pa.timestamp("s", tz="UTC")
    assert gold["daily_revenue"].schema == pa.schema(
        [("day", pa.string()), ("orders", pa.int64()), ("gross_revenue", money), ("net_revenue", money)]
    )
    assert gold["customer_lifetime_value"].schema == pa.schema(
        [
            ("customer_id", pa.int64()),
            ("orders", pa.int64()),
            ("revenue", money),
            ("first_order", time),
            ("last_order", time),
            ("average_order_value", money),
        ]
    )
    assert gold["conversion_funnel"]["stage"].to_pylist() == [
        "product_view",
        "add_to_cart",
        "checkout",
        "purchase",
    ]


def test_the_shops_gold_equals_an_independent_pandas_computation(shop):
    _contract, silver, gold = shop
    orders = silver["orders"]
    sales = orders[orders["status"].notna() & (orders["status"] != "cancelled") & orders["order_ts"].notna()]
    net = sales["total_amount"] - sales["discount_amount"].fillna(0)
    daily = (
        pd.DataFrame(
            {"day": sales["order_ts"].dt.strftime("%Y-%m-%d"), "gross": sales["total_amount"], "net": net}
        )
        .groupby("day", as_index=False)
        .agg(orders=("net", "size"), gross_revenue=("gross", "sum"), net_revenue=("net", "sum"))
    )
    got = gold["daily_revenue"].to_pandas()
    assert got["day"].tolist() == sorted(daily["day"])
    assert got["orders"].tolist() == daily["orders"].tolist()
    assert got["gross_revenue"].tolist() == _cents(daily["gross_revenue"]).tolist()
    assert got["net_revenue"].tolist() == _cents(daily["net_revenue"]).tolist()

    payments = silver["payments"].dropna(subset=["method"])
    mix = payments.groupby("method").agg(payments=("payment_id", "size"), amount=("amount", "sum"))
    got = gold["payment_mix"].to_pandas().set_index("method")
    assert got.index.tolist() == sorted(mix.index)
    assert got["payments"].tolist() == mix["payments"].tolist()
    assert got["amount"].tolist() == _cents(mix["amount"]).tolist()

    items = silver["order_items"].merge(silver["products"][["product_id", "category"]], on="product_id")
    returned = items["item_id"].isin(silver["returns"]["order_item_id"])
    rate = returned.groupby(items["category"]).agg(["size", "sum"])
    got = gold["return_rate"].to_pandas().set_index("category")
    assert got["items"].tolist() == rate["size"].tolist()
    assert got["returned"].tolist() == rate["sum"].tolist()
    assert got["return_rate"].tolist() == np.round(rate["sum"] / rate["size"], 6).tolist()


def test_a_job_of_some_tables_gets_the_gold_whose_tables_it_has(shop):
    contract, silver, _gold = shop
    assert tuple(build_gold(contract, {"orders": silver["orders"]})) == (
        "daily_revenue",
        "customer_lifetime_value",
    )


def test_gold_over_silver_streamed_from_its_parquet_files_is_the_gold_over_its_frames(shop, tmp_path):
    """As the Spark job builds it: each table scanned anew, batch by batch across its row groups, by every
    query reading it (orders by three)."""
    contract, silver, gold = shop
    files = {}
    for name, frame in silver.items():
        files[name] = tmp_path / f"{name}.parquet"
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), files[name], row_group_size=100)
    built = build_gold(contract, {n: streamed(f, contract.tables[n].column_names) for n, f in files.items()})
    assert tuple(built) == SHOP_GOLD
    assert all(built[name].equals(gold[name]) for name in SHOP_GOLD)


@pytest.mark.parametrize("name", ["bank", "iot"])
def test_bank_and_iot_gold_is_built_from_a_cleaned_job(tmp_path, name):
    contract, silver = _cleaned(tmp_path, name, 150)
    gold = build_gold(contract, silver)
    assert tuple(gold) == tuple(g.name for g in contract.gold) and len(gold) == 2
    if name == "bank":
        transactions = silver["transactions"]
        flow = gold["monthly_cash_flow"].to_pandas()
        assert flow["transactions"].sum() == len(transactions)
        assert flow["net"].sum() == pytest.approx(transactions["amount"].sum(), abs=0.01)
        assert (flow["money_in"] - flow["money_out"]).round(2).tolist() == flow["net"].tolist()
        spending = gold["spending_by_category"].to_pandas()
        assert spending["transactions"].sum() == transactions["category"].notna().sum()
    else:
        readings = silver["readings"]
        health = gold["device_health"].to_pandas().set_index("device_id")
        assert health["readings"].sum() == len(readings)
        lowest = readings.groupby("device_id")["battery"].min()
        assert health["lowest_battery"].tolist() == lowest.reindex(health.index).tolist()
        climate = gold["site_monthly_climate"]
        assert pa.compute.sum(climate["readings"]).as_py() == len(readings)


def test_a_contract_without_gold_gets_none():
    example = (REPOSITORY / "docs" / "contracts.md").read_text().split("## A worked example", 1)[1]
    contract = parse_contract(example.split("```yaml\n", 1)[1].split("```", 1)[0]).contract
    assert contract.gold == ()
    frame = pd.DataFrame({"order_id": [1], "status": ["paid"], "total_amount": [1.0]})
    assert build_gold(contract, {"orders": frame}) == {}
    assert "gold" not in dump_contract(contract)


def test_the_gold_declaration_round_trips():
    bank = built_in("bank").contract
    again = parse_contract(dump_contract(bank)).contract
    assert again.gold == bank.gold
    assert again.gold[0].reads == ("transactions", "accounts")
    assert "sql: |-\n      SELECT strftime(t.booked_at" in dump_contract(bank)


def _with_gold(*queries: str) -> str:
    document = yaml.safe_load((REPOSITORY / "contracts" / "iot.yaml").read_text())
    document["customProperties"] = [
        {"property": "gold", "value": [{"name": f"g{i}", "sql": sql} for i, sql in enumerate(queries)]}
    ]
    return yaml.safe_dump(document, sort_keys=False)


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("COPY readings TO 'out.csv'", "one SELECT statement"),
        ("ATTACH 'other.duckdb'", "one SELECT statement"),
        ("INSTALL httpfs", "one SELECT statement"),
        ("LOAD httpfs", "one SELECT statement"),
        ("SET enable_external_access = true", "one SELECT statement"),
        ("PRAGMA version", "one SELECT statement"),
        ("CREATE TABLE t AS SELECT 1", "one SELECT statement"),
        ("SELECT 1; SELECT 2", "one SELECT statement"),
        ("SELECT * FROM read_csv('/etc/passwd')", "reads silver tables by name only"),
        ("SELECT * FROM glob('/etc/*')", "reads silver tables by name only"),
        ("SELECT * FROM main.readings", "reads silver tables by name only"),
        ("SELECT * FROM '/etc/passwd'", "not a table of this contract"),
        ("SELECT * FROM readings JOIN secrets USING (device_id)", "'secrets', which is not a table"),
        ("SELEC 1 FROM", "is not SQL (Invalid expression"),
    ],
)
def test_a_gold_query_that_is_not_one_select_over_its_tables_is_refused(sql, says):
    with pytest.raises(ContractError) as refused:
        parse_contract(_with_gold("SELECT device_id FROM readings", sql))
    assert refused.value.field == "customProperties[gold][1].sql"
    assert says in str(refused.value)


@pytest.mark.parametrize(
    ("gold", "field"),
    [
        ([{"name": "Bad Name", "sql": "SELECT 1"}], "customProperties[gold][0].name"),
        (
            [{"name": "a", "sql": "SELECT 1"}, {"name": "a", "sql": "SELECT 2"}],
            "customProperties[gold][1].name",
        ),
        ([{"name": "a"}], "customProperties[gold][0].sql"),
        ([{"name": "a", "sql": "SELECT 1", "query": "x"}], "customProperties[gold][0].query"),
        ({"name": "a"}, "customProperties[gold]"),
    ],
)
def test_a_malformed_gold_declaration_names_its_path(gold, field):
    document = yaml.safe_load((REPOSITORY / "contracts" / "iot.yaml").read_text())
    document["customProperties"] = [{"property": "gold", "value": gold}]
    with pytest.raises(ContractError) as refused:
        parse_contract(yaml.safe_dump(document))
    assert refused.value.field == field


@pytest.fixture
def iot_sandbox():
    contract = built_in("iot").contract
    readings = pd.DataFrame(
        {c.name: pd.Series([], dtype="object") for c in contract.tables["readings"].columns}
    )
    with sandbox(contract, {"readings": readings}) as con:
        yield contract, con


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM glob('/etc/*')",
        "COPY readings TO '/tmp/gold-escape.csv'",
        "ATTACH '/tmp/gold-escape.duckdb'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "SET threads = 1",
    ],
)
def test_the_connection_a_gold_query_runs_in_reaches_nothing_but_silver(iot_sandbox, statement):
    _contract, con = iot_sandbox
    with pytest.raises(duckdb.Error):
        con.execute(statement)
    assert con.execute("SELECT count(*) FROM readings").fetchone() == (0,)


@pytest.mark.parametrize(
    "sql", ["COPY readings TO '/tmp/gold-escape.csv'", "SELECT * FROM read_csv('/etc/passwd')"]
)
def test_a_query_that_escaped_validation_is_refused_when_it_runs(iot_sandbox, sql):
    _contract, con = iot_sandbox
    with pytest.raises(GoldError, match="gold escape"):
        run_query(con, m.GoldTable("escape", sql, reads=("readings",)))
    assert not Path("/tmp/gold-escape.csv").exists()


def test_the_warehouse_loads_any_contracts_gold_and_widens_a_table_of_the_same_name(settings):
    first = pa.table({"day": ["2024-01-01"], "orders": pa.array([3], pa.int64())})
    second = pa.table({"day": ["2024-01-02"], "readings": pa.array([5], pa.int64())})
    assert load_gold(settings, "alice", "c-1", {"daily": first, "device_health": second}) == 2
    assert load_gold(settings, "alice", "c-2", {"daily": second}) == 1
    with duckdb.connect(str(warehouse_path(settings)), read_only=True) as con:
        rows = con.execute("SELECT job_id, day, orders, readings FROM gold_daily ORDER BY job_id").fetchall()
        assert rows == [("c-1", "2024-01-01", 3, None), ("c-2", "2024-01-02", None, 5)]
        assert con.execute("SELECT count(*) FROM gold_device_health").fetchone() == (1,)
