"""The Spark engine and the pandas engine clean the same raw data into identical silver, quarantine and
gold tables: same rows, values and Arrow types (as published to Parquet) after sorting by key."""

from __future__ import annotations

import io
import os
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orchestrator.cleaning.engine import clean
from orchestrator.cleaning.gold import build_gold
from orchestrator.cleaning.pipeline import read_manifest, read_raw
from orchestrator.cleaning.spark import connect, repairs
from orchestrator.cleaning.spark import read as spark_read
from orchestrator.cleaning.spark.job import clean_job
from orchestrator.cleaning.spark.session import configure, local_session
from orchestrator.config import Settings
from orchestrator.contracts import job_contract
from orchestrator.domain import model as m
from orchestrator.domain import rules as r
from orchestrator.domain import shop as s
from orchestrator.generation import catalogue
from orchestrator.generation.generator import generate
from orchestrator.generation.spec import GenerationSpec
from orchestrator.storage import LocalLake
from tests.test_third_party_contracts import third_party_contract

USER = "alice"
# (contract, seed, rows of its driving table, error rate, child keys per window range): together the cases
# of a contract hold every error kind its catalogue can receive. Spark windows the children of a sum in
# ranges of keys; at its default range a case's children lie in one range, so some cases use small ones:
# nearly every child then lies at a range's edge, where its neighbours come from the ranges around it. The
# other contracts are kept small: the shop's cases already cover the scale.
SHOP_CASES = [
    ("shop", 11, 300, 0.8, None),
    ("shop", 12, 1200, 0.3, 7),
    ("shop", 13, 2000, 0.8, 64),
]
OTHER_CASES = [
    ("bank", 21, 200, 0.8, 5),
    ("bank", 22, 120, 0.5, None),
    ("iot", 31, 12, 0.8, 16),
    ("iot", 32, 25, 0.5, None),
    ("published", 41, 20, 0.8, None),
    ("published", 42, 30, 0.5, None),
]
CASES = SHOP_CASES + OTHER_CASES


def _case_id(case: tuple) -> str:
    return f"{case[0]}-{case[1]}"


@pytest.fixture(scope="module")
def spark(request):
    """A local session; with PARITY_OVER_SPARK_CONNECT=1, a session on the tests' Spark Connect server (the
    engine runs the same over Connect: ``PARITY_OVER_SPARK_CONNECT=1 pytest tests/test_spark_parity.py``)."""
    if os.environ.get("PARITY_OVER_SPARK_CONNECT") == "1":
        server = request.getfixturevalue("spark_connect")
        session = connect.remote_session(connect.run_address(server.point, "c-parity-run"), "c-parity")
    else:
        session = local_session()
    yield session
    session.stop()


@pytest.fixture(scope="module")
def cleaned(spark, tmp_path_factory):
    """Each case generated once and cleaned by both engines: (manifest, pandas tables, Spark tables, Spark
    outputs, contract), by case id."""
    results = {}
    for case in CASES:
        name, seed, rows, rate, key_range = case
        root = tmp_path_factory.mktemp(f"lake-{name}-{seed}")
        settings = Settings(data_dir=root)
        lake = LocalLake(root)
        ref = str(third_party_contract(root / "sales-database.yaml")) if name == "published" else name
        job = generate(
            GenerationSpec(rows=rows, seed=seed, error_rate=rate, contract=ref),
            USER,
            settings=settings,
            storage=lake,
        )
        contract = job_contract(lake, USER, job.job_id).contract
        manifest = read_manifest(lake, USER, job.job_id)
        as_of = int(datetime.fromisoformat(manifest["as_of"]).timestamp())
        engine = clean(contract, read_raw(lake, manifest, contract), as_of)
        expected = {
            "silver": {name: _published(t.silver) for name, t in engine.items()},
            "quarantine": {name: _published(t.quarantine) for name, t in engine.items()},
            "gold": {
                name: _published(frame)
                for name, frame in build_gold(contract, {n: t.silver for n, t in engine.items()}).items()
            },
        }
        with pytest.MonkeyPatch.context() as patch:
            if key_range:
                patch.setattr(repairs, "KEY_RANGE", key_range)
            outputs = clean_job(spark, root, USER, job.job_id, f"c-parity-{name}-{seed}")
        actual = {
            kind: {name: pq.read_table(root / path) for name, path in outputs[kind].items()}
            for kind in ("silver", "quarantine", "gold")
        }
        results[_case_id(case)] = (manifest, expected, actual, outputs, contract)
    return results


def _published(frame) -> pa.Table:
    """A pandas-engine frame as the small path publishes it (through Parquet), and as readers see it."""
    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return pq.read_table(io.BytesIO(buffer.getvalue()))


def _sort_keys(kind: str, table: pa.Table, contract: m.Contract, name: str) -> list[str]:
    if kind == "silver":
        return list(contract.tables[name].primary_key)
    if kind == "quarantine":
        return ["_raw_line"]
    return table.column_names


def _assert_same(label: str, expected: pa.Table, actual: pa.Table, keys: list[str]) -> None:
    assert actual.schema.remove_metadata() == expected.schema.remove_metadata(), label
    expected = expected.sort_by([(k, "ascending") for k in keys])
    actual = actual.sort_by([(k, "ascending") for k in keys])
    assert actual.num_rows == expected.num_rows, f"{label}: row count"
    for column in expected.column_names:
        want, got = expected[column].to_pylist(), actual[column].to_pylist()
        differ = [(i, w, g) for i, (w, g) in enumerate(zip(want, got, strict=True)) if w != g]
        assert not differ, (
            f"{label}.{column}: {len(differ)} cells differ, first (row, pandas, spark): {differ[:3]}"
        )


@pytest.mark.parametrize("contract_name", sorted({case[0] for case in CASES}))
def test_the_cases_inject_every_error_kind(cleaned, contract_name):
    cases = [cleaned[_case_id(case)] for case in CASES if case[0] == contract_name]
    injected = {
        kind
        for manifest, *_ in cases
        for columns in manifest["error_rates"].values()
        for kinds in columns.values()
        for kind, info in kinds.items()
        if info["count"]
    }
    assert injected == set(catalogue.receivable(cases[0][4]))


@pytest.mark.parametrize("case", [_case_id(case) for case in CASES])
@pytest.mark.parametrize("kind", ["silver", "quarantine", "gold"])
def test_spark_output_equals_pandas_output(cleaned, case, kind):
    _manifest, expected, actual, _outputs, contract = cleaned[case]
    assert set(actual[kind]) == set(expected[kind])
    for name, table in expected[kind].items():
        keys = _sort_keys(kind, table, contract, name)
        _assert_same(f"{case} {kind}.{name}", table, actual[kind][name], keys)


def test_every_raw_row_is_accounted_for(cleaned):
    for manifest, _expected, _actual, outputs, _contract in cleaned.values():
        for name, counts in outputs["tables"].items():
            assert counts["rows_in"] == manifest["tables"][name]["rows"]
            assert (
                counts["rows_in"] == counts["rows_out"] + counts["quarantined"] + counts["duplicates_removed"]
            )
            assert counts["duplicates_removed"] >= 0


def test_silver_has_repairs_and_quarantine_names_rules(cleaned):
    """The comparison is not vacuous: the Spark output holds repaired cells and quarantined rows."""
    _manifest, _expected, actual, _outputs, _contract = cleaned[_case_id(CASES[0])]
    issues = {
        rule
        for t in actual["silver"].values()
        for v in t["_issues"].to_pylist()
        if v
        for rule in v.split(";")
    }
    assert {"orders.total_amount.total_matches_items", "orders.status.in_set"} <= issues
    rules = {rule for t in actual["quarantine"].values() for rule in t["_rule"].to_pylist()}
    known = {rule.id for rule in r.all_rules()}
    assert rules and rules <= known


@pytest.mark.parametrize(
    ("case", "repaired", "quarantined"),
    [
        (
            "bank-21",
            {"accounts.balance.balance_is_the_sum_of_transactions", "transactions.booked_at.booked_in_order"},
            {"transfer_legs.amount.legs_balance"},
        ),
        (
            "iot-31",
            {"readings.read_at.readings_in_time_order", "devices.installed_at.installed_after_site"},
            set(),
        ),
    ],
)
def test_other_contracts_are_repaired_by_their_constraints(cleaned, case, repaired, quarantined):
    """The other contracts' comparisons are not vacuous either: their constraints repaired, nulled or
    quarantined cells in the Spark output."""
    _manifest, _expected, actual, _outputs, _contract = cleaned[case]
    issues = {
        rule
        for t in actual["silver"].values()
        for v in t["_issues"].to_pylist()
        if v
        for rule in v.split(";")
    }
    assert repaired <= issues
    rules = {rule for t in actual["quarantine"].values() for rule in t["_rule"].to_pylist()}
    assert quarantined <= rules


@pytest.mark.parametrize("key_range", [1, 7, 64, None])
def test_child_neighbours_are_those_of_one_sort_of_all_children_whatever_the_ranges(spark, key_range):
    """Spark sorts the children of a sum in ranges of keys; each child's neighbours, forward and backward
    fills are still those of one sort of all children (pandas here: rows without a key last, in line order),
    also where they lie in another range, or several away."""
    draw = np.random.default_rng(5)
    ids = np.sort(draw.choice(np.arange(1, 2000), size=600, replace=False))  # gaps, as quarantine leaves
    rows = len(ids)
    children = pd.DataFrame(
        {
            "_key": pd.array(np.where(draw.random(rows) < 0.02, None, ids), "Int64"),
            "_line": pd.array(np.where(draw.random(rows) < 0.1, None, draw.integers(1, 6, rows)), "Int64"),
            "_known": pd.array(np.where(draw.random(rows) < 0.6, None, draw.integers(1, 99, rows)), "Int64"),
            "_value": draw.random(rows),
            "_raw_line": draw.permutation(rows),  # raw lines in no order of the keys
        }
    )
    children.loc[200:320, "_known"] = None  # a run of unknown parents wider than several ranges
    keyless = children["_key"].isna()
    children = pd.concat(
        [children[~keyless].sort_values("_key"), children[keyless].sort_values("_raw_line")],
        ignore_index=True,
    )
    line, known = children["_line"], children["_known"]
    expected = pd.DataFrame(
        {
            "_prev_line": line.shift(1),
            "_prev_known": known.shift(1),
            "_next_line": line.shift(-1),
            "_next_known": known.shift(-1),
            "_ffill": known.ffill(),
            "_bfill": known.bfill(),
            "_bfill_line": line.fillna(0).where(known.notna()).bfill(),
        }
    )
    with pytest.MonkeyPatch.context() as patch:
        if key_range:
            patch.setattr(repairs, "KEY_RANGE", key_range)
        schema = "_key long, _line long, _known long, _value double, _raw_line long"
        records = [
            (_whole(i), _whole(n), _whole(k), float(v), int(at))
            for i, n, k, v, at in children.itertuples(index=False)
        ]
        shuffled = spark.createDataFrame(records[::-1], schema).repartition(3)  # in no order
        actual = repairs._neighbours(shuffled).collect()
    by_value = {row["_value"]: row for row in actual}
    assert sorted(by_value) == sorted(children["_value"])
    ordered = [by_value[v] for v in children["_value"]]
    for column in expected.columns:
        assert [row[column] for row in ordered] == [_whole(v) for v in expected[column]], column


def _whole(value) -> int | None:
    return None if pd.isna(value) else int(value)


def test_raw_values_read_as_the_small_path_reads_them(spark, tmp_path):
    """A JSON number reads as its double prints (10.50 reads 10.5; 12345678.9 and 0.0001 as written, where
    Java would print an exponent), a string as written ("10.50" stays), in both engines: quarantine shows
    what the small path shows."""
    lines = [
        '{"order_id": 1, "customer_id": "7", "discount_amount": 10.50, "total_amount": "10.50"}',
        '{"order_id": 2.0, "customer_id": 70, "discount_amount": 0.00, "total_amount": 1e5}',
        '{"order_id": "3", "customer_id": null, "discount_amount": -0.0, "total_amount": " 12.30 "}',
        '{"order_id": 4, "status": true, "currency": 12, "discount_amount": "N/A", "total_amount": 99.90}',
        '{"order_id": 1.2e7, "customer_id": 1e22, "discount_amount": 0.0001, "total_amount": 12345678.9}',
        '{"order_id": 6, "customer_id": 2.5E-7, "status": "Eur", "currency": "1e5", "total_amount": 1.5e300}',
    ]
    path = "raw/alice/g-hand/orders.jsonl"
    raw = tmp_path / path
    raw.parent.mkdir(parents=True)
    raw.write_text("\n".join(lines) + "\n")
    manifest = {
        "tables": {"orders": {"raw_path": path, "sha256": spark_read._sha256(raw), "rows": len(lines)}}
    }
    table = s.TABLES["orders"]
    configure(spark)  # as clean_job does
    spark_rows = spark_read.read_raw(spark, tmp_path, manifest, table).orderBy(spark_read.ROW).collect()
    read = {
        c.name: pa.array([row[f"_raw_{c.name}"] for row in spark_rows], pa.string()) for c in table.columns
    }
    got = {name: spark_read.small_path_text(text).to_pylist() for name, text in read.items()}
    want = read_raw(LocalLake(tmp_path), manifest, s.CONTRACT)["orders"].to_pydict()
    assert got == want
    assert got["discount_amount"][:3] == ["10.5", "0.0", "-0.0"] and got["total_amount"][0] == "10.50"
    assert got["total_amount"][4] == "12345678.9" and read["total_amount"].to_pylist()[4] == "1.23456789E7"
