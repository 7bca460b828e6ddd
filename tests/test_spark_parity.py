"""The Spark engine and the pandas engine clean the same raw data into identical silver, quarantine and
gold tables: same rows, values and Arrow types (as published to Parquet) after sorting by key."""

from __future__ import annotations

import io
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orchestrator.cleaning.engine import clean
from orchestrator.cleaning.gold import build_gold
from orchestrator.cleaning.pipeline import read_manifest, read_raw
from orchestrator.cleaning.spark import read as spark_read
from orchestrator.cleaning.spark import repairs
from orchestrator.cleaning.spark.job import clean_job
from orchestrator.cleaning.spark.session import configure, local_session
from orchestrator.config import Settings
from orchestrator.domain import rules as r
from orchestrator.domain import shop as s
from orchestrator.generation import catalogue
from orchestrator.generation.generator import generate
from orchestrator.generation.spec import GenerationSpec
from orchestrator.storage import LocalLake

USER = "alice"
# (seed, orders, error rate, item ids per window range): together they hold every error kind of the
# catalogue. Spark windows the order items in ranges of ids; at its default range a case's items lie in one
# range, so two cases use small ones: nearly every item then lies at a range's edge, where its neighbours
# come from the ranges around it.
CASES = [
    (11, 300, 0.8, None),
    (12, 1200, 0.3, 7),
    (13, 2000, 0.8, 64),
]


@pytest.fixture(scope="module")
def spark():
    session = local_session()
    yield session
    session.stop()


@pytest.fixture(scope="module")
def cleaned(spark, tmp_path_factory):
    """Each case generated once and cleaned by both engines: (manifest, pandas tables, Spark tables)."""
    results = {}
    for seed, rows, rate, item_range in CASES:
        root = tmp_path_factory.mktemp(f"lake-{seed}")
        settings = Settings(data_dir=root)
        lake = LocalLake(root)
        job = generate(
            GenerationSpec(rows=rows, seed=seed, error_rate=rate), USER, settings=settings, storage=lake
        )
        manifest = read_manifest(lake, USER, job.job_id)
        as_of = int(datetime.fromisoformat(manifest["as_of"]).timestamp())
        engine = clean(s.CONTRACT, read_raw(lake, manifest, s.CONTRACT), as_of)
        expected = {
            "silver": {name: _published(t.silver) for name, t in engine.items()},
            "quarantine": {name: _published(t.quarantine) for name, t in engine.items()},
            "gold": {
                name: _published(frame)
                for name, frame in build_gold(s.CONTRACT, {n: t.silver for n, t in engine.items()}).items()
            },
        }
        with pytest.MonkeyPatch.context() as patch:
            if item_range:
                patch.setattr(repairs, "ITEM_RANGE", item_range)
            outputs = clean_job(spark, root, USER, job.job_id, f"c-parity-{seed}")
        actual = {
            kind: {name: pq.read_table(root / path) for name, path in outputs[kind].items()}
            for kind in ("silver", "quarantine", "gold")
        }
        results[seed] = (manifest, expected, actual, outputs)
    return results


def _published(frame) -> pa.Table:
    """A pandas-engine frame as the small path publishes it (through Parquet), and as readers see it."""
    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return pq.read_table(io.BytesIO(buffer.getvalue()))


def _sort_keys(kind: str, name: str, table: pa.Table) -> list[str]:
    if kind == "silver":
        return [s.TABLES[name].key]
    if kind == "quarantine":
        return ["_raw_line"]
    return [table.column_names[0]]


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


def test_the_cases_inject_every_error_kind(cleaned):
    injected = {
        kind
        for manifest, *_ in cleaned.values()
        for columns in manifest["error_rates"].values()
        for kinds in columns.values()
        for kind, info in kinds.items()
        if info["count"]
    }
    assert injected == set(catalogue.receivable(s.CONTRACT))


@pytest.mark.parametrize("seed", [case[0] for case in CASES])
@pytest.mark.parametrize("kind", ["silver", "quarantine", "gold"])
def test_spark_output_equals_pandas_output(cleaned, seed, kind):
    _manifest, expected, actual, _outputs = cleaned[seed]
    assert set(actual[kind]) == set(expected[kind])
    for name, table in expected[kind].items():
        _assert_same(f"seed {seed} {kind}.{name}", table, actual[kind][name], _sort_keys(kind, name, table))


def test_every_raw_row_is_accounted_for(cleaned):
    for manifest, _expected, _actual, outputs in cleaned.values():
        for name, counts in outputs["tables"].items():
            assert counts["rows_in"] == manifest["tables"][name]["rows"]
            assert (
                counts["rows_in"] == counts["rows_out"] + counts["quarantined"] + counts["duplicates_removed"]
            )
            assert counts["duplicates_removed"] >= 0


def test_silver_has_repairs_and_quarantine_names_rules(cleaned):
    """The comparison is not vacuous: the Spark output holds repaired cells and quarantined rows."""
    _manifest, _expected, actual, _outputs = cleaned[CASES[0][0]]
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


@pytest.mark.parametrize("item_range", [1, 7, 64, None])
def test_item_neighbours_are_those_of_one_sort_of_all_items_whatever_the_ranges(spark, item_range):
    """Spark sorts the items in ranges of ids; each item's neighbours, forward and backward fills are still
    those of one sort of all items (pandas here), also where they lie in another range, or several away."""
    draw = np.random.default_rng(5)
    ids = np.sort(draw.choice(np.arange(1, 2000), size=600, replace=False))  # gaps, as quarantine leaves
    rows = len(ids)
    items = pd.DataFrame(
        {
            "item_id": ids,
            "_line": pd.array(np.where(draw.random(rows) < 0.1, None, draw.integers(1, 6, rows)), "Int64"),
            "_known": pd.array(np.where(draw.random(rows) < 0.6, None, draw.integers(1, 99, rows)), "Int64"),
            "line_total": draw.random(rows),
        }
    )
    items.loc[200:320, "_known"] = None  # a run of unknown orders wider than several ranges
    line, known = items["_line"], items["_known"]
    expected = pd.DataFrame(
        {
            "item_id": ids,
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
        if item_range:
            patch.setattr(repairs, "ITEM_RANGE", item_range)
        schema = "item_id long, _line long, _known long, line_total double"
        records = [
            (int(i), _whole(n), _whole(k), float(t))
            for i, n, k, t in zip(ids, line, known, items["line_total"], strict=True)
        ]
        shuffled = spark.createDataFrame(records[::-1], schema).repartition(3)  # in no order
        actual = sorted(repairs._neighbours(shuffled).collect(), key=lambda row: row["item_id"])
    assert [row["item_id"] for row in actual] == ids.tolist()
    for column in expected.columns[1:]:
        assert [row[column] for row in actual] == [_whole(v) for v in expected[column]], column


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
    want = read_raw(LocalLake(tmp_path), manifest)["orders"].to_pydict()
    assert got == want
    assert got["discount_amount"][:3] == ["10.5", "0.0", "-0.0"] and got["total_amount"][0] == "10.50"
    assert got["total_amount"][4] == "12345678.9" and read["total_amount"].to_pylist()[4] == "1.23456789E7"
