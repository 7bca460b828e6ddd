"""Column cleaning by known answers: each bad value's repair (or null) and the rule ``_issues`` blames it
on, and the boundaries of the calendar and of numbers."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from orchestrator.cleaning import columns
from orchestrator.domain import shop as s


def _clean(table: str, name: str, raw: list[str | None], as_of: int = 2_000_000_000) -> list[tuple]:
    """(clean value, blamed rule) per raw cell of one of the shop's columns."""
    column = next(c for c in s.TABLES[table].columns if c.name == name)
    cleaned = columns.clean_column(s.TABLES[table], column, pa.array(raw, pa.string()), as_of)
    return list(zip(cleaned.values.to_pylist(), cleaned.issues(np.arange(len(raw))), strict=True))


def test_emails_are_repaired_by_case_and_spacing_else_nulled_and_blamed_on_the_pattern():
    rule = "customers.email.pattern"
    assert _clean(
        "customers", "email", ["a.b@mail.com", " A.B@Mail.COM ", "ab.mail.com", "a@@b.com", None]
    ) == [
        ("a.b@mail.com", None),
        ("a.b@mail.com", rule),
        (None, rule),
        (None, rule),
        (None, "customers.email.not_null"),
    ]


def test_phones_are_repaired_from_spaced_dashed_and_00_forms_else_nulled():
    rule = "customers.phone.pattern"
    raw = ["+4915112345678", "0049 151 1234-5678", "+49 (151) 12345678", "+49151xx345678", "+49151"]
    assert _clean("customers", "phone", raw) == [
        ("+4915112345678", None),
        ("+4915112345678", rule),
        ("+4915112345678", rule),
        (None, rule),
        (None, rule),
    ]


def test_codes_are_repaired_to_upper_case_else_nulled_and_blamed_on_the_pattern():
    rule = "products.sku.pattern"
    assert _clean("products", "sku", ["SKU-12345678", " sku-12345678", "SKU-1234", "SKU 12345678"]) == [
        ("SKU-12345678", None),
        ("SKU-12345678", rule),
        (None, rule),
        (None, rule),
    ]


def test_a_phone_repair_does_not_touch_other_codes():
    """Only phone numbers lose their spaces and dashes; a code keeps them and so stays broken."""
    assert _clean("shipments", "tracking_number", ["DH 1234567890", "dh1234567890"]) == [
        (None, "shipments.tracking_number.pattern"),
        ("DH1234567890", "shipments.tracking_number.pattern"),
    ]


def test_invalid_and_future_timestamps_are_nulled_and_blamed_on_their_rules():
    as_of = int(datetime(2024, 6, 1, tzinfo=UTC).timestamp())
    got = _clean(
        "orders",
        "order_ts",
        ["2024-05-31T23:59:59Z", "2024-06-01T00:00:01Z", "2024-04-31T10:00:00Z", "yesterday", ""],
        as_of,
    )
    assert [issue for _, issue in got] == [
        None,
        "orders.order_ts.not_future",
        "orders.order_ts.timestamp",
        "orders.order_ts.timestamp",
        "orders.order_ts.not_null",
    ]
    assert got[0][0] == datetime(2024, 5, 31, 23, 59, 59, tzinfo=UTC)
    assert [value for value, _ in got[1:]] == [None] * 4


def test_a_blank_in_a_nullable_column_is_null_and_blamed_but_a_null_is_not():
    assert _clean("orders", "coupon_id", ["7", "", "  ", None]) == [
        (7, None),
        (None, "orders.coupon_id.not_null"),
        (None, "orders.coupon_id.not_null"),
        (None, None),
    ]
    assert _clean("shipments", "delivered_at", ["", None]) == [
        (None, "shipments.delivered_at.not_null"),
        (None, None),
    ]


def test_a_missing_value_of_a_required_column_is_blamed_whether_null_or_blank():
    assert _clean("orders", "customer_id", [None, "", "\t"]) == [(None, "orders.customer_id.not_null")] * 3


def test_numbers_with_several_points_or_stray_signs_are_not_numbers():
    rule = "order_items.unit_price.numeric"
    raw = ["1.2.3", "1..2", ".5", "5.", "-", "1e3", "12,50", "+3", " 4", "twelve"]
    assert _clean("order_items", "unit_price", raw) == [(None, rule)] * len(raw)


def test_money_is_rounded_to_cents_and_held_to_its_range():
    """Rounding is half to even on the cents, and the range is checked on the rounded amount."""
    got = _clean(
        "order_items", "unit_price", ["12.345", "12.355", "12.3", "7", "0.004", "-1.50", "10000", "10000.01"]
    )
    rng = "order_items.unit_price.range"
    assert got == [
        (12.34, None),  # a half cent rounds to the even cent
        (12.36, None),
        (12.3, None),
        (7.0, None),
        (None, rng),  # rounds to 0.00, below the minimum of 0.01
        (None, rng),
        (10000.0, None),
        (None, rng),
    ]


def test_a_half_cent_goes_to_the_nearest_cent_of_the_amount_as_a_binary_number():
    """Money is read as a float and rounded to cents by scaling by 100 and rounding half to even. A written
    half cent is a tie only when the float times 100 is exactly a half: then the even cent wins. Otherwise
    the float lies a little above or below the half and that side wins (docs/testing.md: half cents)."""
    assert 12.345 * 100 == 1234.5 and 12.355 * 100 == 1235.5  # ties (0.125 and 0.375 are exact floats)
    assert 0.545 * 100 > 54.5 and 1.015 * 100 < 101.5  # not ties: 0.545 is stored a little above
    raw = ["12.345", "12.355", "0.125", "0.375", "0.545", "1.015", "12.3449", "12.3451"]
    assert _clean("order_items", "unit_price", raw) == [
        (12.34, None),  # a tie: to the even cent, down
        (12.36, None),  # a tie: to the even cent, up
        (0.12, None),
        (0.38, None),
        (0.55, None),  # above the half: up, though 4 is the even cent
        (1.01, None),  # below the half: down, though 2 is the even cent
        (12.34, None),  # below a half cent: down
        (12.35, None),  # above: up
    ]


def test_a_rating_has_one_decimal():
    assert _clean("sellers", "rating", ["4.25", "4.35", "5.0", "5.1", "0.9"]) == [
        (4.2, None),  # half to even
        (4.4, None),
        (5.0, None),
        (None, "sellers.rating.range"),
        (None, "sellers.rating.range"),
    ]


def test_integers_accept_a_zero_fraction_only():
    rule = "order_items.quantity.numeric"
    assert _clean("order_items", "quantity", ["3", "3.0", "3.00", "3.5", "-2", "0", "101", "100"]) == [
        (3, None),
        (3, None),
        (3, None),
        (None, rule),
        (None, "order_items.quantity.range"),
        (None, "order_items.quantity.range"),
        (None, "order_items.quantity.range"),
        (100, None),
    ]


def test_a_range_with_only_a_minimum_has_no_maximum():
    assert _clean("events", "session_id", ["1", "0", "999999999"]) == [
        (1, None),
        (None, "events.session_id.range"),
        (999_999_999, None),
    ]


def test_text_is_trimmed_and_title_cased_and_blamed_only_when_it_changed():
    rule = "customers.first_name.canonical_text"
    assert _clean("customers", "first_name", ["Anna", " anna  maria\t", "ANNA"]) == [
        ("Anna", None),
        ("Anna Maria", rule),
        ("Anna", rule),
    ]


YEARS = (2023, 2024, 1900, 2000)  # common, leap, century not leap, 400th leap


def test_the_last_day_of_every_month_is_real_and_the_next_is_not():
    texts, expected = [], []
    for year in YEARS:
        for month in range(1, 13):
            last = calendar.monthrange(year, month)[1]
            for day in (last, last + 1):
                texts.append(f"{year}-{month:02d}-{day:02d}T12:00:00Z")
                expected.append(day == last)
    seconds, real = columns.iso_seconds(pa.array(texts))
    assert real.tolist() == expected
    for text, second, ok in zip(texts, seconds, real, strict=True):
        if ok:
            assert second == datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def test_the_edges_of_a_day_are_real():
    texts = ["2024-01-01T00:00:00Z", "2024-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "2024-01-01T23:59:60Z"]
    seconds, real = columns.iso_seconds(pa.array(texts))
    assert real.tolist() == [True, True, True, False]
    assert seconds.tolist() == [1_704_067_200, 1_735_689_599, 0, 0]
