"""The rules a contract's declarations give, read from freshly declared tables, and the typo distance that
decides which category values cleaning may repair."""

from __future__ import annotations

import pytest

from orchestrator.domain import model as m
from orchestrator.domain import rules as r


def _rules(*columns: m.Column, business_key: tuple[str, ...] = ("id",)) -> dict[str, r.Rule]:
    table = m.Table(name="t", columns=(m.Column("id", m.ID), *columns), business_key=business_key)
    contract = m.Contract(id="c", name="c", version="1", tables={"t": table})
    r.table_rules.cache_clear()  # an equal table declared before would answer from the cache
    return {rule.id: rule for rule in r.rules_of(contract)["t"]}


@pytest.mark.parametrize(("minimum", "maximum"), [(0, None), (None, 100), (1, 5)])
def test_a_range_with_either_bound_is_a_range_rule_that_keeps_both(minimum, maximum):
    rule = _rules(m.Column("n", m.INT, minimum=minimum, maximum=maximum))["t.n.range"]
    assert rule.params == {"minimum": minimum, "maximum": maximum}
    assert rule.kinds == ("negative", "zero", "outlier") and rule.severity == r.ERROR


def test_a_number_without_bounds_has_no_range_rule():
    assert set(_rules(m.Column("n", m.MONEY))) == {"t.id.unique", "t.id.not_null", "t.id.numeric"} | {
        "t.n.not_null",
        "t.n.numeric",
    }


def test_each_column_type_gets_its_checks_and_the_kinds_they_catch():
    rules = _rules(
        m.Column("email", m.EMAIL, pattern=m.EMAIL_PATTERN, case="lower"),
        m.Column("phone", m.PHONE, pattern=m.PHONE_PATTERN, nullable=True),
        m.Column("code", m.CODE, pattern="^[A-Z]{3}$"),
        m.Column("at", m.TIMESTAMP, pattern=m.TIMESTAMP_PATTERN),
        m.Column("state", m.CATEGORY, categories=("a", "b"), case="lower"),
        m.Column("note", m.TEXT),
        m.Column("name", m.TEXT, case="title"),
        m.Column("ref", m.FK, references="u"),
        m.Column("label", m.TEXT, references="v"),
    )
    kinds = {rule_id: rule.kinds for rule_id, rule in rules.items()}
    assert kinds["t.email.pattern"] == ("email_malformed", "whitespace", "case")
    assert kinds["t.phone.pattern"] == ("phone_malformed", "phone_format", "whitespace")
    assert kinds["t.code.pattern"] == ("whitespace", "case")
    assert kinds["t.at.timestamp"] == ("wrong_type", "impossible_date")
    assert kinds["t.at.not_future"] == ("future_date",)
    assert "t.at.pattern" not in rules  # a timestamp's shape is the timestamp rule's
    assert kinds["t.state.in_set"] == ("whitespace", "case", "typo", "unknown_category")
    assert rules["t.state.in_set"].params == {"values": ("a", "b"), "case": "lower"}
    assert kinds["t.note.canonical_text"] == ("whitespace",)
    assert kinds["t.name.canonical_text"] == ("whitespace", "case")
    assert rules["t.name.canonical_text"].description == "name has no stray spaces and is in title case"
    assert rules["t.name.canonical_text"].params == {"case": "title"}
    assert kinds["t.ref.foreign_key"] == ("orphan_fk",)
    assert kinds["t.label.foreign_key"] == ("orphan_fk", "whitespace", "case")
    assert rules["t.ref.foreign_key"].params == {"references": "u"}
    assert "t.phone.not_null" not in rules  # nullable
    assert rules["t.email.not_null"].severity == r.WARNING  # an attribute: reported, the row kept
    assert rules["t.ref.not_null"].severity == r.ERROR  # a key: the row is unusable without it
    assert "t.ref.numeric" in rules and "t.label.numeric" not in rules


def test_a_table_with_its_own_business_key_gets_a_second_uniqueness_rule():
    rules = _rules(m.Column("code", m.CODE, pattern="^[A-Z]{3}$"), business_key=("code",))
    assert (
        rules["t.id.unique"].columns == ("id",)
        and rules["t.id.unique"].description == "id identifies one row"
    )
    assert rules["t.business_key.unique"].columns == ("code",)
    assert rules["t.business_key.unique"].kinds == ()
    assert "t.business_key.unique" not in _rules()


ONE_EDIT = [
    ("paid", "pad"),  # dropped
    ("paid", "paaid"),  # doubled
    ("paid", "pxid"),  # replaced
    ("paid", "apid"),  # neighbours swapped
    ("paid", "padi"),  # last two swapped
    ("paid", "xpaid"),  # inserted first
]
NOT_ONE_EDIT = [
    ("paid", "paid"),  # no edit
    ("paid", "pxix"),  # two letters changed
    ("paid", "xaix"),  # two letters changed, apart
    ("paid", "daip"),  # two letters swapped, apart
    ("paid", "diap"),  # reversed
    ("paid", "dpai"),  # moved
    ("paid", "pa"),  # two dropped
    ("paid", "paidxx"),  # two inserted
    ("paid", "xaidx"),  # one changed, one inserted
    ("abc", "bca"),
]


@pytest.mark.parametrize(("a", "b"), ONE_EDIT)
def test_one_edit_is_one_letter_dropped_added_replaced_or_two_neighbours_swapped(a, b):
    assert r._one_edit(a, b) and r._one_edit(b, a)
    assert r.closest_value(b, ("cancelled", a, "shipped")) == a


@pytest.mark.parametrize(("a", "b"), NOT_ONE_EDIT)
def test_two_edits_are_never_repaired(a, b):
    assert not r._one_edit(a, b) and not r._one_edit(b, a)
    assert r.closest_value(b, ("cancelled", a, "shipped")) in ((a,) if a == b else (None,))


def test_a_value_near_two_allowed_values_is_not_repaired():
    assert r.closest_value("cat", ("bat", "cut")) is None
    assert r.closest_value("bat", ("bat", "cat")) == "bat"


def test_every_rule_names_its_table_check_kinds_and_what_it_means():
    rules = _rules(
        m.Column("n", m.INT, minimum=1, maximum=5, required=True),
        m.Column("at", m.TIMESTAMP, pattern=m.TIMESTAMP_PATTERN),
        m.Column("code", m.CODE, pattern="^[A-Z]{3}$"),
        m.Column("state", m.CATEGORY, categories=("a", "b")),
        m.Column("note", m.TEXT, nullable=True),
        m.Column("ref", m.FK, references="u"),
    )
    expected = [
        ("t.id.unique", ("id",), r.UNIQUE, ("exact_duplicate", "near_duplicate"), "id identifies one row"),
        ("t.n.not_null", ("n",), r.NOT_NULL, ("missing",), "n is present"),
        ("t.n.numeric", ("n",), r.NUMERIC, ("wrong_type",), "n is a number"),
        ("t.n.range", ("n",), r.RANGE, ("negative", "zero", "outlier"), "n lies between 1 and 5"),
        (
            "t.at.timestamp",
            ("at",),
            r.TIMESTAMP,
            ("wrong_type", "impossible_date"),
            "at is an ISO-8601 UTC timestamp of a real date",
        ),
        (
            "t.at.not_future",
            ("at",),
            r.NOT_FUTURE,
            ("future_date",),
            "at is not after the data set's as-of time",
        ),
        ("t.code.pattern", ("code",), r.PATTERN, ("whitespace", "case"), "code matches ^[A-Z]{3}$"),
        (
            "t.state.in_set",
            ("state",),
            r.IN_SET,
            ("whitespace", "case", "typo", "unknown_category"),
            "state is one of a, b",
        ),
        ("t.note.canonical_text", ("note",), r.CANONICAL_TEXT, ("whitespace",), "note has no stray spaces"),
        ("t.ref.foreign_key", ("ref",), r.FOREIGN_KEY, ("orphan_fk",), "ref refers to an existing u row"),
    ]
    for rule_id, columns, check, kinds, description in expected:
        rule = rules[rule_id]
        assert (rule.table, rule.columns, rule.check, rule.severity) == ("t", columns, check, r.ERROR), (
            rule_id
        )
        assert (rule.kinds, rule.description) == (kinds, description), rule_id
    assert rules["t.code.pattern"].params == {"pattern": "^[A-Z]{3}$"}
    assert rules["t.state.in_set"].params == {"values": ("a", "b"), "case": None}
    assert rules["t.note.canonical_text"].params == {"case": None}


def test_a_composite_key_and_a_separate_business_key_are_each_one_uniqueness_rule():
    table = m.Table(
        name="t",
        columns=(m.Column("a", m.ID), m.Column("b", m.ID), m.Column("code", m.CODE), m.Column("day", m.CODE)),
        business_key=("code", "day"),
        primary_key=("a", "b"),
    )
    r.table_rules.cache_clear()
    rules = {rule.id: rule for rule in r.table_rules(table)}
    key, business = rules["t.primary_key.unique"], rules["t.business_key.unique"]
    assert (key.table, key.columns, key.check, key.severity) == ("t", ("a", "b"), r.UNIQUE, r.ERROR)
    assert key.kinds == ("exact_duplicate", "near_duplicate") and key.description == "a, b identify one row"
    assert (business.table, business.check, business.severity) == ("t", r.UNIQUE, r.ERROR)
    assert business.description == "code, day identify one row" and business.params == {}
    assert key.params == {}


def test_a_constraints_rule_carries_the_constraint_its_table_severity_and_description():
    table = m.Table(name="t", columns=(m.Column("id", m.ID), m.Column("n", m.INT)), business_key=("id",))
    constraint = m.Constraint(
        id="n_rises", kind=m.SEQUENCE, table="t", column="n", group="id", severity="warning",
        catches=("out_of_sequence",), description="n rises within its group",
    )  # fmt: skip
    contract = m.Contract(id="c", name="c", version="1", tables={"t": table}, constraints=(constraint,))
    r.table_rules.cache_clear()
    rule = r.rules_of(contract)["t"][-1]
    assert (rule.id, rule.table, rule.columns, rule.check) == ("t.n.n_rises", "t", ("n",), m.SEQUENCE)
    assert (rule.severity, rule.kinds) == ("warning", ("out_of_sequence",))
    assert rule.description == "n rises within its group" and rule.params == {"constraint": constraint}


def test_the_shop_has_every_rule_of_each_of_its_tables_once():
    every = r.all_rules()
    assert [rule.id for rule in every] == [rule.id for table in r._SHOP_RULES for rule in r.rules_for(table)]
    assert len({rule.id for rule in every}) == len(every)
