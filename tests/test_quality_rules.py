"""Known answers: each rule check on small hand-built tables fails exactly the rows that break it."""

from __future__ import annotations

import copy
import itertools
import json

import pytest

from orchestrator.domain import shop as s
from orchestrator.quality import UnreadableFile, layers, profile_job
from orchestrator.quality.model import FAILED, PASSED, SKIPPED
from orchestrator.storage import LocalLake, paths

AS_OF = "2025-01-01T00:00:00+00:00"
COUNTRY, CURRENCY, CATEGORY = s.COUNTRIES[0], s.CURRENCIES[0], s.PRODUCT_CATEGORIES[0]


def valid_shop() -> dict[str, list[dict]]:
    """Rows passing every rule: two customers, a seller, a product, two orders of three items, a shipment."""

    def customer(i: int, first: str, email: str) -> dict:
        return {
            "customer_id": i,
            "first_name": first,
            "last_name": "Berg",
            "email": email,
            "phone": "+4915112345678",
            "city": "Berlin",
            "country": COUNTRY,
            "segment": "consumer",
            "signup_at": "2024-01-01T00:00:00Z",
        }

    def item(i: int, order: int, line: int, qty: int) -> dict:
        return {
            "item_id": i,
            "order_id": order,
            "line_no": line,
            "product_id": 1,
            "quantity": qty,
            "unit_price": 10.0,
            "line_total": qty * 10.0,
        }

    def order(i: int, customer_id: int, total: float) -> dict:
        return {
            "order_id": i,
            "customer_id": customer_id,
            "coupon_id": None,
            "order_ts": "2024-03-01T10:00:00Z",
            "status": "delivered",
            "currency": CURRENCY,
            "discount_amount": 0.0,
            "total_amount": total,
        }

    return {
        "customers": [customer(1, "Anna", "anna@example.com"), customer(2, "Ben", "ben@example.com")],
        "sellers": [
            {
                "seller_id": 1,
                "name": "Shop",
                "email": "shop@example.com",
                "country": COUNTRY,
                "rating": 4.5,
                "joined_at": "2023-01-01T00:00:00Z",
            }
        ],
        "products": [
            {
                "product_id": 1,
                "sku": "SKU-00000001",
                "name": "Steel Chair",
                "category": CATEGORY,
                "price": 10.0,
                "seller_id": 1,
                "created_at": "2023-06-01T00:00:00Z",
            }
        ],
        "orders": [order(1, 1, 30.0), order(2, 2, 10.0)],
        "order_items": [item(1, 1, 1, 1), item(2, 1, 2, 2), item(3, 2, 1, 1)],
        "shipments": [
            {
                "shipment_id": 1,
                "order_id": 1,
                "carrier": "dhl",
                "tracking_number": "AB0123456789",
                "status": "delivered",
                "shipped_at": "2024-03-02T10:00:00Z",
                "delivered_at": "2024-03-04T10:00:00Z",
            }
        ],
    }


def shop_with(**changes: dict[int, dict]) -> dict[str, list[dict]]:
    """The valid shop with rows changed, as ``orders={0: {"total_amount": 5}}``; a list appends rows."""
    shop = copy.deepcopy(valid_shop())
    for table, change in changes.items():
        if isinstance(change, list):
            shop[table].extend(change)
            continue
        for index, values in change.items():
            shop[table][index].update(values)
    return shop


def write_raw_job(lake: LocalLake, user: str, job_id: str, tables: dict[str, list[dict] | bytes]) -> None:
    """Raw files (rows as JSON Lines, or the exact bytes given) and a manifest naming them."""
    for name, rows in tables.items():
        data = rows if isinstance(rows, bytes) else "".join(json.dumps(r) + "\n" for r in rows).encode()
        with lake.open_write(paths.raw_table(user, job_id, name)) as handle:
            handle.write(data)
    manifest = {"job_id": job_id, "user": user, "as_of": AS_OF, "tables": {name: {} for name in tables}}
    with lake.open_write(paths.raw_manifest(user, job_id)) as handle:
        handle.write(json.dumps(manifest).encode())


_jobs = itertools.count()


def _profile(settings, tables) -> dict[str, list[int]]:
    job = f"g-test-{next(_jobs)}"
    write_raw_job(LocalLake(settings.data_dir), "alice", job, tables)
    run = profile_job("alice", job, "raw", settings, sample_rows=100, save=False)
    return run, {x.rule_id: [s["line"] for s in x.samples] for x in run.rules if x.status == FAILED}


def test_the_valid_shop_passes_every_rule_that_can_run(settings):
    run, failed = _profile(settings, valid_shop())
    assert failed == {}
    statuses = {x.rule_id: x.status for x in run.rules}
    assert statuses["orders.coupon_id.foreign_key"] == SKIPPED  # coupons are not part of this job
    assert statuses["orders.total_amount.total_matches_items"] == PASSED
    assert run.rule("orders.total_amount.total_matches_items").checked == 2


CASES = [
    ("customers", 1, {"first_name": None}, "customers.first_name.not_null"),
    ("customers", 1, {"first_name": " \t"}, "customers.first_name.not_null"),
    ("orders", 1, {"total_amount": "N/A"}, "orders.total_amount.numeric"),
    ("orders", 1, {"discount_amount": -5.0}, "orders.discount_amount.range"),
    ("sellers", 0, {"rating": 7.5}, "sellers.rating.range"),
    ("products", 0, {"created_at": "2023-02-30T10:00:00Z"}, "products.created_at.timestamp"),
    ("products", 0, {"created_at": "yesterday"}, "products.created_at.timestamp"),
    ("sellers", 0, {"joined_at": "2031-05-01T00:00:00Z"}, "sellers.joined_at.not_future"),
    ("customers", 1, {"email": "Ben@example.com"}, "customers.email.pattern"),
    ("customers", 1, {"phone": "+49 151 1234"}, "customers.phone.pattern"),
    ("customers", 1, {"segment": "VIP"}, "customers.segment.in_set"),
    ("customers", 1, {"segment": "consumer "}, "customers.segment.in_set"),
    ("customers", 1, {"city": "berlin"}, "customers.city.canonical_text"),
    ("customers", 1, {"last_name": "Berg  Berg"}, "customers.last_name.canonical_text"),
    ("orders", 1, {"customer_id": 99}, "orders.customer_id.foreign_key"),
    ("orders", 1, {"order_ts": "2023-12-01T10:00:00Z"}, "orders.order_ts.order_after_signup"),
    ("orders", 1, {"total_amount": 12.5}, "orders.total_amount.total_matches_items"),
    ("shipments", 0, {"shipped_at": "2024-02-01T10:00:00Z"}, "shipments.shipped_at.shipped_after_order"),
    ("order_items", 2, {"unit_price": 9.0}, "order_items.line_total.line_total"),
]


# No backslash in an id: pytest escapes it, and the escaped id no longer selects its test (mutmut runs
# each mutant's tests by id).
IDS = [c[3] + str(c[2]).replace("\\t", "<tab>") for c in CASES]


@pytest.mark.parametrize(("table", "row", "change", "rule_id"), CASES, ids=IDS)
def test_a_broken_value_fails_its_rule_and_no_other(settings, table, row, change, rule_id):
    _, failed = _profile(settings, shop_with(**{table: {row: change}}))
    assert failed == {rule_id: [row]}


def test_a_repeated_key_fails_on_its_later_lines_only(settings):
    shop = shop_with(
        customers=[valid_shop()["customers"][0], {**valid_shop()["customers"][1], "city": "Bonn"}]
    )
    _, failed = _profile(settings, shop)
    # line 2 repeats customer 1 exactly; line 3 repeats customer 2 (and its e-mail) with another city
    assert failed == {
        "customers.customer_id.unique": [2, 3],
        "customers.business_key.unique": [2, 3],
    }


def test_duplicate_rows_are_counted_exactly_and_near(settings):
    shop = shop_with(
        customers=[
            valid_shop()["customers"][0],
            {**valid_shop()["customers"][1], "email": "BEN@example.com "},
        ]
    )
    run, _ = _profile(settings, shop)
    customers = next(t for t in run.tables if t.table == "customers")
    assert (customers.rows, customers.exact_duplicate_rows, customers.near_duplicate_rows) == (4, 1, 1)


def test_a_total_is_not_judged_when_an_item_of_its_order_was_lost(settings):
    """Item 2 lost its order id: order 1's visible items sum to 10, but its total of 30 is not blamed."""
    _, failed = _profile(settings, shop_with(order_items={1: {"order_id": None}}))
    assert failed == {"order_items.order_id.not_null": [1]}


def test_an_order_is_not_judged_against_a_signup_that_breaks_its_own_rules(settings):
    _, failed = _profile(
        settings,
        shop_with(
            customers={0: {"signup_at": "2024-13-01T00:00:00Z"}},
            orders={0: {"order_ts": "2023-01-01T00:00:00Z"}},
        ),
    )
    assert failed == {"customers.signup_at.timestamp": [0]}


def test_profile_counts_completeness_distinct_range_and_top_values(settings):
    run, _ = _profile(settings, shop_with(customers={1: {"first_name": ""}}))
    columns = {(c.table, c.column): c for t in run.tables for c in t.columns}
    first = columns[("customers", "first_name")]
    assert (first.rows, first.present, first.completeness) == (2, 1, 0.5)
    total = columns[("orders", "total_amount")]
    assert (total.minimum, total.maximum, total.distinct) == (10.0, 30.0, 2)
    assert columns[("customers", "segment")].top == [{"value": "consumer", "count": 2}]
    assert columns[("orders", "order_ts")].minimum == "2024-03-01T10:00:00Z"


def test_a_failing_rule_reports_count_share_and_keyed_samples(settings):
    run, _ = _profile(settings, shop_with(customers={0: {"segment": "gold"}, 1: {"segment": "gold"}}))
    rule = run.rule("customers.segment.in_set")
    assert (rule.checked, rule.failed, rule.share) == (2, 2, 1.0)
    assert rule.samples[0] == {"line": 0, "key": "1", "segment": "gold"}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"order_id": 1}\n{"order_id": 2}\n{"order_id": 3, "customer_id\n', "line 3: not valid JSON"),
        (b'{"order_id": 1}\n{"order_id": 2, "status": "p\xe4id"}\n', "line 2: invalid UTF-8"),
    ],
    ids=["truncated line", "wrong encoding"],
)
def test_a_malformed_raw_file_is_named_with_its_line(settings, data, reason):
    with pytest.raises(UnreadableFile) as caught:
        _profile(settings, {"orders": data})
    assert "orders.jsonl" in str(caught.value)
    assert reason in str(caught.value)


def test_a_raw_file_read_on_several_threads_numbers_every_row_by_its_line(tmp_path, monkeypatch):
    # 60 MB in read buffers of 2 MB: four threads read the pieces and may finish them out of order
    monkeypatch.setattr(layers, "MAX_OBJECT_BYTES", 1024 * 1024)
    rows = 1_000_000
    path = tmp_path / "orders.jsonl"
    path.write_text("".join(f'{{"order_id": {i}, "status": "{"x" * (i % 50)}"}}\n' for i in range(rows)))
    with layers.connect() as con:
        con.execute("SET threads = 4")
        table = layers.load_raw(con, "orders", str(path), "raw/u/j/orders.jsonl")
        counted, misplaced = con.execute(
            f"SELECT count(*), count_if(__line <> {table.columns['order_id'].value}) "
            f"FROM {layers.q(table.relation)}"
        ).fetchone()
    assert (counted, misplaced) == (rows, 0)
