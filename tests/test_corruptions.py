"""Each error kind's corruption, checked for what the kind claims: a negative is below zero, an outlier
beyond the range, money keeps two decimals and its magnitude, a typo is one edit from its value and
repaired to it, a malformed value breaks its pattern, an impossible date is no real date."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from orchestrator.cleaning import columns as cleaning
from orchestrator.domain import model as m
from orchestrator.domain import rules as r
from orchestrator.domain import shop as s
from orchestrator.generation import corrupt, jsonfmt
from orchestrator.generation.rng import Stream

AS_OF = 1_735_689_600  # 2025-01-01T00:00:00Z
N = 400  # cells per kind: enough draws for every variant and position of a kind


def _column(table: str, name: str) -> tuple[s.Table, s.Column]:
    return s.TABLES[table], next(c for c in s.TABLES[table].columns if c.name == name)


def _fragments(column: s.Column, clean) -> pa.Array:
    if column.type in s.STRING_TYPES:
        return jsonfmt.quote(clean)
    if column.type == s.TIMESTAMP:
        return jsonfmt.timestamps(clean)
    if column.type == s.MONEY:
        return jsonfmt.scaled(clean, 2)
    if column.type == s.DECIMAL1:
        return jsonfmt.scaled(clean, 1)
    return jsonfmt.integers(clean)


def _corrupt(kind: str, table: str, name: str, clean, aux: dict | None = None):
    """The dirty values (as JSON reads them) of ``kind`` applied to ``clean``, and which cells changed."""
    t, column = _column(table, name)
    if column.type in s.STRING_TYPES:
        clean = pa.array(clean, pa.string())
    else:
        clean = np.asarray(clean, dtype=np.int64)
    cells = corrupt.Cells(
        t, column, np.arange(len(clean)), clean, _fragments(column, clean), Stream(5, table, name, kind),
        AS_OF, aux or {},
    )  # fmt: skip
    dirty, changed = (corrupt.CORRUPTIONS.get(kind) or corrupt.CONTRADICTIONS[kind])(cells)
    return dirty.to_pylist(), changed


def _values(fragments: list[str]) -> list:
    return [json.loads(f) for f in fragments]


def test_a_negative_amount_is_the_clean_amount_below_zero_in_money_with_two_decimals():
    cents = [1234, 5, 999_999, 0, 0]  # a zero amount has nothing to negate: a draw stands in
    dirty, changed = _corrupt("negative", "order_items", "unit_price", cents)
    assert dirty[:3] == ["-12.34", "-0.05", "-9999.99"]
    assert all(f.startswith("-") and len(f.split(".")[1]) == 2 for f in dirty)
    assert all(-100 <= v < 0 for v in _values(dirty[3:]))  # 1..99 whole units
    assert changed.all()


def test_a_negative_count_is_the_clean_count_below_zero():
    dirty, changed = _corrupt("negative", "order_items", "quantity", [3, 1, 0])
    assert _values(dirty)[:2] == [-3, -1] and -100 <= _values(dirty)[2] < 0 and changed.all()


def test_an_outlier_lies_beyond_the_columns_maximum_and_within_twenty_times_it():
    for table, name, decimals in (("order_items", "unit_price", 2), ("order_items", "quantity", 0)):
        column = _column(table, name)[1]
        dirty, changed = _corrupt("outlier", table, name, np.full(N, 100))
        values = _values(dirty)
        assert all(1.5 * column.maximum <= v < 20 * column.maximum for v in values), name
        assert changed.all()
        if decimals:
            assert all(len(f.split(".")[1]) == decimals for f in dirty)
        else:
            assert all("." not in f for f in dirty)


def test_zero_is_zero_and_only_changes_a_value_that_was_not():
    dirty, changed = _corrupt("zero", "order_items", "unit_price", [250, 0])
    assert dirty == ["0.00", "0.00"] and changed.tolist() == [True, False]


def test_a_total_mismatch_is_off_by_five_to_fifty_percent_and_never_equal():
    dirty, changed = _corrupt("total_mismatch", "orders", "total_amount", np.full(N, 10_000))
    ratios = np.array(_values(dirty)) / 100.0
    assert (np.abs(ratios - 1) >= 0.05 - 1e-9).all() and (np.abs(ratios - 1) <= 0.5 + 1e-9).all()
    assert (ratios < 1).any() and (ratios > 1).any() and changed.all()


def test_an_orphan_key_points_past_every_generated_key():
    dirty, changed = _corrupt("orphan_fk", "orders", "customer_id", np.arange(1, N + 1))
    assert all(900_000_000 <= v < 1_000_000_000 for v in _values(dirty)) and changed.all()


def test_a_wrong_type_is_text_that_is_not_a_number_or_not_a_date():
    numbers, _ = _corrupt("wrong_type", "order_items", "quantity", np.arange(N))
    assert {json.loads(f) for f in numbers} == set(corrupt.WRONG_TYPE_NUMBERS)
    dates, _ = _corrupt("wrong_type", "orders", "order_ts", np.full(N, AS_OF))
    assert {json.loads(f) for f in dates} == set(corrupt.WRONG_TYPE_DATES)


def test_a_future_date_is_a_day_to_two_years_after_the_as_of_time():
    dirty, changed = _corrupt("future_date", "orders", "order_ts", np.full(N, AS_OF - 86_400))
    seconds, real = cleaning.iso_seconds(pa.array(_values(dirty)))
    assert real.all() and changed.all()
    assert (seconds >= AS_OF + 86_400).all() and (seconds < AS_OF + 731 * 86_400).all()


def test_an_order_before_signup_is_an_hour_to_ninety_days_before_it():
    signup = np.full(N, AS_OF - 400 * 86_400)
    dirty, _ = _corrupt("order_before_signup", "orders", "order_ts", np.full(N, AS_OF), {"signup": signup})
    seconds, real = cleaning.iso_seconds(pa.array(_values(dirty)))
    assert real.all() and (seconds <= signup - 3600).all() and (seconds > signup - 90 * 86_400).all()


def test_an_impossible_date_has_the_timestamps_shape_but_no_real_calendar_moment():
    dirty, changed = _corrupt("impossible_date", "orders", "order_ts", AS_OF + 86_400 * np.arange(N))
    text = pa.array(_values(dirty))
    _, real = cleaning.iso_seconds(text)
    assert not real.any() and changed.all()
    assert all(len(t) == 20 and t[4] == "-" and t[10] == "T" and t.endswith("Z") for t in text.to_pylist())
    # every variant occurs: month 13-19, 30 or 31 February, day 32-39, hour 24-29
    months, days, hours = ({int(t[a:b]) for t in text.to_pylist()} for a, b in ((5, 7), (8, 10), (11, 13)))
    assert months & set(range(13, 20)) and days & {30, 31} and days & set(range(32, 40)) and hours >= {24}


def _kind_on_strings(kind: str, table: str, name: str, clean: list[str]):
    dirty, changed = _corrupt(kind, table, name, clean)
    return _values(dirty), changed


EMAILS = [f"user.{i}@mail{i % 7}.example.com" for i in range(N)]
PHONES = [f"+4915{i:08d}" for i in range(N)]


def test_a_malformed_email_breaks_the_pattern_and_cleaning_cannot_repair_it():
    dirty, changed = _kind_on_strings("email_malformed", "customers", "email", EMAILS)
    table, column = _column("customers", "email")
    cleaned = cleaning.clean_column(table, column, pa.array(dirty), as_of=AS_OF)
    assert changed.all() and cleaned.values.null_count == N
    assert set(cleaned.issues(np.arange(N))) == {"customers.email.pattern"}


def test_a_reformatted_phone_number_is_repaired_to_the_clean_number():
    dirty, changed = _kind_on_strings("phone_format", "customers", "phone", PHONES)
    table, column = _column("customers", "phone")
    cleaned = cleaning.clean_column(table, column, pa.array(dirty), as_of=AS_OF)
    assert changed.all() and cleaned.values.to_pylist() == PHONES
    assert {"00", "+4", "(+"} == {d[:2] for d in dirty}  # 00 prefix, groups, bracketed country code


def test_a_malformed_phone_number_breaks_the_pattern_and_cleaning_cannot_repair_it():
    dirty, changed = _kind_on_strings("phone_malformed", "customers", "phone", PHONES)
    table, column = _column("customers", "phone")
    cleaned = cleaning.clean_column(table, column, pa.array(dirty), as_of=AS_OF)
    assert changed.all() and cleaned.values.null_count == N


@pytest.mark.parametrize("kind", ["whitespace", "case"])
def test_spacing_and_case_errors_are_the_same_value_once_normalised(kind):
    names = [f"Anna Maria {i}" for i in range(N)]
    dirty, changed = _kind_on_strings(kind, "customers", "first_name", names)
    assert changed.all() and all(d != n for d, n in zip(dirty, names, strict=True))
    if kind == "whitespace":
        assert [" ".join(d.split()) for d in dirty] == names
        assert {d != d.strip() or "  " in d for d in dirty} == {True}
    else:
        assert [d.lower() for d in dirty] == [n.lower() for n in names]
        assert {d for d in dirty if d == d.upper()} and {d for d in dirty if d == d.lower()}


def test_every_typo_is_one_edit_from_its_value_and_repaired_to_it():
    column = _column("orders", "status")[1]
    clean = [column.categories[i % len(column.categories)] for i in range(N)]
    dirty, changed = _kind_on_strings("typo", "orders", "status", clean)
    assert changed.all()
    for typo, value in zip(dirty, clean, strict=True):
        assert r._one_edit(typo, value) and r.closest_value(typo, column.categories) == value, typo
    lengths = {len(t) - len(v) for t, v in zip(dirty, clean, strict=True)}
    assert lengths == {-1, 0, 1}  # letters dropped, doubled, and replaced or swapped
    swapped = [t for t, v in zip(dirty, clean, strict=True) if sorted(t) == sorted(v)]
    assert swapped, "no two neighbours swapped"


def test_an_unknown_category_is_neither_allowed_nor_one_typo_from_an_allowed_value():
    dirty, changed = _kind_on_strings("unknown_category", "orders", "currency", ["EUR"] * N)
    assert changed.all() and set(dirty) == {"XXX", "ABC", "QQQ"}
    statuses, _ = _kind_on_strings("unknown_category", "orders", "status", ["paid"] * N)
    assert set(statuses) == set(corrupt.UNKNOWN_DEFAULT)


def test_a_missing_value_is_null_or_an_empty_string_for_text():
    dirty, changed = _corrupt("missing", "customers", "email", EMAILS)
    assert set(dirty) == {"null", '""'} and changed.all()
    numbers, _ = _corrupt("missing", "order_items", "quantity", np.arange(N))
    assert set(numbers) == {"null"}


def test_a_time_before_its_reference_is_an_hour_to_ninety_days_before_it():
    reference = np.full(N, AS_OF - 400 * 86_400)
    aux = {corrupt.after_key("order_ts"): reference}
    dirty, changed = _corrupt(m.AFTER, "orders", "order_ts", np.full(N, AS_OF), aux)
    seconds, real = cleaning.iso_seconds(pa.array(_values(dirty)))
    assert real.all() and changed.all()
    assert (seconds <= reference - 3600).all() and (seconds > reference - 90 * 86_400).all()


def test_out_of_sequence_lies_below_the_previous_value_and_spares_the_first_of_a_group():
    previous = np.where(np.arange(N) % 4 == 0, corrupt.NO_PREVIOUS, AS_OF - 86_400)
    aux = {corrupt.previous_key("order_ts"): previous}
    dirty, changed = _corrupt(m.SEQUENCE, "orders", "order_ts", np.full(N, AS_OF), aux)
    seconds, real = cleaning.iso_seconds(pa.array(_values(dirty)))
    has = previous != corrupt.NO_PREVIOUS
    assert real.all() and changed.tolist() == has.tolist()
    assert (seconds[has] < previous[has]).all() and (seconds[has] >= previous[has] - 3600).all()

    previous = np.where(np.arange(N) % 4 == 0, corrupt.NO_PREVIOUS, 5_000)
    aux = {corrupt.previous_key("unit_price"): previous}
    dirty, changed = _corrupt(m.SEQUENCE, "order_items", "unit_price", np.full(N, 9_000), aux)
    cents = np.round(np.array(_values(dirty)) * 100).astype(int)
    has = previous != corrupt.NO_PREVIOUS
    assert changed.tolist() == has.tolist() and all(len(f.split(".")[1]) == 2 for f in dirty)
    assert (cents[has] < 5_000).all() and (cents[has] >= 5_000 - 10 * 100).all()
