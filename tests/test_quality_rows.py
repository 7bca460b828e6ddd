"""A rule's failing rows are read whole, the very lines the profile numbered, and read as it reads them."""

from __future__ import annotations

import json

from orchestrator.quality import failing_rows, profile_job
from orchestrator.storage import LocalLake
from tests.test_quality_rules import shop_with, write_raw_job


def test_a_failing_raw_row_is_read_whole_from_the_line_the_profile_named(settings):
    shop = shop_with(orders={1: {"total_amount": "N/A", "status": " shipped"}})
    orders = shop.pop("orders")
    lines = f"{json.dumps(orders[0])}\n\n{json.dumps(orders[1])}\n"  # a blank line is no row
    write_raw_job(LocalLake(settings.data_dir), "alice", "g-rows-1", {**shop, "orders": lines.encode()})
    run = profile_job("alice", "g-rows-1", "raw", settings, save=False)

    [row] = failing_rows(run, "orders.total_amount.numeric", settings)
    assert (row.line, row.raw_line) == (1, 1)
    assert set(row.values) == set(orders[1])  # every column, not only the rule's
    assert (row.values["order_id"], row.values["status"], row.values["coupon_id"]) == ("2", " shipped", None)
    assert row.values["total_amount"] == run.rule("orders.total_amount.numeric").samples[0]["total_amount"]
    assert row.raw == row.values and row.answers == []  # raw is its own raw line; this job has no truth
