"""Scoring against the generator's truth: raw detection, what silver still gets wrong, stored runs."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from orchestrator.domain import shop as s
from orchestrator.generation import catalogue
from orchestrator.generation.generator import generate
from orchestrator.generation.spec import GenerationSpec
from orchestrator.quality import compare, latest_run, load_run, profile_job, run_history, score_silver
from orchestrator.storage import paths

CLEAN_JOB = "c-20250101t000000-aaaaaa"


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """A generated job (all tables, every kind) and its raw quality run, shared by the module's tests."""
    root = tmp_path_factory.mktemp("lake") / "data"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ORCHESTRATOR_DATA_DIR", str(root))
        from orchestrator.config import get_settings

        settings = get_settings()
        result = generate(GenerationSpec(rows=3000, seed=7, error_rate=0.4), "alice", settings=settings)
        run = profile_job("alice", result.job_id, "raw", settings)
    return settings, result.job_id, run


def test_every_targeted_error_kind_is_detected_with_high_recall_and_precision(job):
    _, _, run = job
    scores = {k.kind: k for k in run.score.kinds}
    assert set(scores) == set(catalogue.receivable(s.CONTRACT))  # every kind was injected and scored
    for kind in scores.values():
        assert kind.judgeable > 0, kind.kind
        assert kind.recall >= 0.99, kind
        assert kind.precision >= 0.99, kind
    assert run.score.totals["coverage"] > 0.9


def test_errors_no_rule_can_see_are_reported_as_not_judgeable(job):
    """A value left out of a nullable column (coupon_id) is a legal null: no rule targets it there."""
    settings, job_id, run = job
    missing = next(k for k in run.score.kinds if k.kind == "missing")
    key = pq.read_table(settings.data_dir / paths.answer_key("alice", job_id)).to_pandas()
    nullable = key[(key.kind == "missing") & key.column.isin(["coupon_id", "delivered_at"])]
    assert len(nullable) > 0
    assert missing.injected - missing.judgeable >= len(nullable)


def _silver(settings, job_id: str, change=None) -> None:
    """A silver layer made of the truth tables, optionally damaged by ``change(table_name, arrow_table)``."""
    folder = settings.data_dir / "silver" / "cleaned" / "alice" / job_id / CLEAN_JOB
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "quarantine").mkdir(parents=True)
    for name in ("customers", "orders", "order_items"):
        table = pq.read_table(settings.data_dir / paths.truth_table("alice", job_id, name))
        if change:
            table = change(name, table, folder)
        pq.write_table(table, folder / f"{name}.parquet")


def test_a_perfect_silver_has_every_error_fixed(job):
    settings, job_id, _ = job
    _silver(settings, job_id)
    score = score_silver("alice", CLEAN_JOB, settings)
    assert score.totals["cells_differing"] == 0
    assert score.totals["remaining"] == 0
    assert all(k.fixed == k.injected for k in score.kinds)
    assert score.totals["injected"] > 1000


def test_a_damaged_silver_shows_what_remains_per_kind(job):
    settings, job_id, _ = job
    key = pq.read_table(settings.data_dir / paths.answer_key("alice", job_id)).to_pandas()
    orders_key = key[key.table == "orders"]
    mismatch = int(orders_key[orders_key.kind == "total_mismatch"].key.iloc[0])
    dropped = int(orders_key[orders_key.kind == "wrong_type"].key.iloc[0])
    quarantined = int(orders_key[orders_key.kind == "orphan_fk"].key.iloc[0])
    duplicated = int(key[(key.table == "customers") & (key.kind == "exact_duplicate")].key.iloc[0])
    touched = set(orders_key.key)
    clean_order = next(k for k in range(1, 3000) if k not in touched)

    def damage(name, table, folder):
        if name == "orders":
            ids = table["order_id"]
            total = pc.if_else(pc.equal(ids, mismatch), pa.scalar(0.5), table["total_amount"])
            status = pc.if_else(pc.equal(ids, clean_order), pa.scalar("lost"), table["status"])
            table = table.set_column(7, "total_amount", total).set_column(4, "status", status)
            pq.write_table(table.filter(pc.equal(ids, quarantined)), folder / "quarantine" / "orders.parquet")
            return table.filter(pc.invert(pc.is_in(ids, pa.array([dropped, quarantined]))))
        if name == "customers":
            return pa.concat_tables([table, table.filter(pc.equal(table["customer_id"], duplicated))])
        return table

    _silver(settings, job_id, damage)
    score = score_silver("alice", CLEAN_JOB, settings)
    kinds = {k.kind: k for k in score.kinds}
    assert kinds["total_mismatch"].remaining == 1
    assert kinds["exact_duplicate"].remaining == 1
    assert kinds["wrong_type"].dropped >= 1
    assert kinds["orphan_fk"].quarantined >= 1
    assert score.totals["cells_damaged"] == 1  # the status of an order that carried no error
    assert (score.totals["rows_dropped"], score.totals["rows_quarantined"]) == (1, 1)


def test_runs_are_stored_and_compared_without_a_rerun(job):
    settings, job_id, raw = job
    _silver(settings, job_id)
    silver = profile_job("alice", CLEAN_JOB, "silver", settings)
    assert silver.source_job_id == job_id
    assert latest_run("alice", job_id, "raw", settings).to_dict() == raw.to_dict()
    assert load_run(silver.run_id, settings).to_dict() == silver.to_dict()
    assert {h["run_id"] for h in run_history("alice", settings=settings)} >= {raw.run_id, silver.run_id}
    diff = compare(
        latest_run("alice", job_id, "raw", settings), latest_run("alice", CLEAN_JOB, "silver", settings)
    )
    unique = next(x for x in diff.rules if x.rule_id == "orders.order_id.unique")
    assert unique.failed_a == raw.rule("orders.order_id.unique").failed > 0
    assert (unique.failed_b, unique.change) == (0, -unique.failed_a)
    orders = next(t for t in diff.tables if t["table"] == "orders")
    assert orders["rows_a"] > orders["rows_b"] == 3000
