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


def _cells(column: m.Column, clean: list[str], idx=None) -> corrupt.Cells:
    """Cells of a column declared here (not the shop's), for the string corruptions."""
    table = m.Table(name="t", columns=(m.Column("id", m.ID), column), business_key=("id",))
    values = pa.array(clean, pa.string())
    idx = np.arange(len(clean)) if idx is None else np.asarray(idx)
    return corrupt.Cells(
        table, column, idx, values, jsonfmt.quote(values), Stream(5, "t", column.name), AS_OF, {}
    )


def test_each_email_malformation_is_one_of_five_exact_rewrites_and_all_occur():
    dirty, changed = _kind_on_strings("email_malformed", "customers", "email", ["ab@mail.example.com"] * N)
    assert changed.all()
    assert set(dirty) == {
        "abmail.example.com",  # no @
        "ab@@mail.example.com",  # two
        "ab at mail.example.com",  # spelt out
        "ab@mail.example.com.",  # trailing dot
        "a b@mail.example.com",  # a space after the first letter
    }


def test_each_phone_malformation_is_one_of_three_exact_rewrites_and_all_occur():
    dirty, changed = _kind_on_strings("phone_malformed", "customers", "phone", ["+4915112345678"] * N)
    assert changed.all()
    assert set(dirty) == {"+4915xx2345678", "+49151", "+491511234567899999999"}


def test_a_whitespace_error_is_one_of_five_exact_rewrites_and_all_occur():
    dirty, changed = _kind_on_strings("whitespace", "customers", "first_name", ["Anna Maria Lena"] * N)
    assert changed.all()
    assert set(dirty) == {
        " Anna Maria Lena",
        "Anna Maria Lena ",
        "  Anna Maria Lena ",
        "Anna Maria Lena\t",
        "Anna  Maria Lena",  # the first space doubled, the others kept
    }


def test_a_value_the_drawn_variant_cannot_change_gets_the_next_variant():
    """A name without a space has none to double: the cells that drew that variant get the next one
    (a leading space); every other cell keeps its variant."""
    spaced, _ = _kind_on_strings("whitespace", "customers", "first_name", ["a b"] * N)
    plain, changed = _kind_on_strings("whitespace", "customers", "first_name", ["ab"] * N)
    assert changed.all()
    expected = [" ab" if s == "a  b" else s.replace("a b", "ab") for s in spaced]
    assert plain == expected


def test_a_cell_is_corrupted_the_same_alone_as_among_others():
    """What a cell becomes depends on its row only, never on which other cells share its kind."""
    column = m.Column("name", m.TEXT)
    clean = [f"x{i}" for i in range(40)]
    together, _ = corrupt.whitespace(_cells(column, clean))
    for i in (0, 7, 39):
        alone, changed = corrupt.whitespace(_cells(column, [clean[i]], idx=[i]))
        assert alone.to_pylist() == [together.to_pylist()[i]] and changed.tolist() == [True]


def test_a_null_cell_is_never_counted_as_corrupted():
    """Only changed cells are written (and counted in the answer key): a null has no text to change."""
    column = m.Column("name", m.TEXT, nullable=True)
    for corruption in (corrupt.whitespace, corrupt.case):
        _, changed = corruption(_cells(column, ["a b", None, "c"]))
        assert changed.tolist() == [True, False, True]


def _edits(value: str) -> dict[str, list[set[str]]]:
    """Every typo of ``value`` by kind and position: two neighbours swapped, a letter dropped, doubled or
    replaced by a lower-case letter."""
    n = len(value)
    return {
        "swap": [{value[:p] + value[p + 1] + value[p] + value[p + 2 :]} for p in range(n - 1)],
        "drop": [{value[:p] + value[p + 1 :]} for p in range(n)],
        "double": [{value[: p + 1] + value[p:]} for p in range(n)],
        "replace": [{value[:p] + x + value[p + 1 :] for x in "abcdefghijklmnopqrstuvwxyz"} for p in range(n)],
    }


def test_typos_are_swaps_drops_doubles_and_replacements_at_every_end_of_the_word():
    column = _column("orders", "status")[1]
    for value in ("delivered", "shipped"):
        dirty, changed = _kind_on_strings("typo", "orders", "status", [value] * N)
        assert changed.all()
        edits = _edits(value)
        every = set().union(*(s for kind in edits.values() for s in kind))
        assert set(dirty) <= every - {value}, value
        for kind, at in edits.items():
            # the first and the last position of each kind of edit occur
            assert set(dirty) & at[0] and set(dirty) & at[-1], (value, kind)
        assert all(r.closest_value(d, column.categories) == value for d in dirty)


def test_a_typo_is_never_one_edit_from_a_second_allowed_value():
    """'toys' and 'tools' are two edits apart, so some typos of either ('tols') are one edit from both:
    those are never written, the value gets another typo."""
    column = _column("products", "category")[1]
    for value in ("toys", "tools", "baby"):
        dirty, changed = _kind_on_strings("typo", "products", "category", [value] * N)
        assert changed.all()
        assert all(r.closest_value(d, column.categories) == value for d in dirty), value


def test_typos_of_a_column_without_a_canonical_case_keep_the_values_case():
    column = m.Column("grade", m.CATEGORY, categories=("Bat", "Cow", "Dog"))
    dirty, changed = corrupt.typo(_cells(column, ["Cow"] * N))
    assert changed.all()
    assert {r.closest_value(json.loads(d), column.categories) for d in dirty.to_pylist()} == {"Cow"}


def test_a_total_of_zero_is_never_left_equal_its_mismatch_is_one_unit():
    dirty, changed = _corrupt("total_mismatch", "orders", "total_amount", [0, 0, 1])
    assert dirty[:2] == ["1.00", "1.00"] and changed.all()


def test_a_totals_direction_and_size_are_drawn_apart():
    """Too low and too high are each off by small and by large shares."""
    dirty, _ = _corrupt("total_mismatch", "orders", "total_amount", np.full(N, 100_000))
    ratios = np.array(_values(dirty)) / 1000.0
    assert ((ratios < 0.9) & (ratios > 0.5 - 1e-9)).any() and ((ratios > 0.9) & (ratios < 1)).any()
    assert ((ratios > 1.4) & (ratios < 1.5 + 1e-9)).any() and ((ratios > 1) & (ratios < 1.1)).any()


def test_a_rating_keeps_one_decimal_when_negated_or_made_an_outlier():
    dirty, changed = _corrupt("negative", "sellers", "rating", [45, 10])
    assert dirty == ["-4.5", "-1.0"] and changed.all()
    outliers, _ = _corrupt("outlier", "sellers", "rating", np.full(N, 45))
    assert all(len(f.split(".")[1]) == 1 and 7.5 <= float(f) < 100 for f in outliers)


def test_an_impossible_date_changes_only_its_month_day_or_hour_to_an_exact_impossible_value():
    clean = np.full(N, 1_709_287_200)  # 2024-03-01T10:00:00Z
    dirty, changed = _corrupt("impossible_date", "orders", "order_ts", clean)
    text = _values(dirty)
    assert changed.all() and {t[:5] + t[13:] for t in text} == {"2024-:00:00Z"}
    assert {t[5:7] for t in text} == {"03", "02"} | {str(m) for m in range(13, 20)}
    assert {t[8:10] for t in text if t[5:7] == "02"} == {"30", "31"}
    assert {t[8:10] for t in text} == {"01", "30", "31"} | {str(d) for d in range(32, 40)}
    assert {t[11:13] for t in text} == {"10"} | {str(h) for h in range(24, 30)}
