"""What "valid" means, declared once: the rules the quality engine checks and the cleaning engines enforce.

Rules are derived from a data set's contract (``rules_of``): a column's type, range, allowed values and
references, and each constraint across columns and tables, are written in exactly one place. A constraint's
rule checks the one operation of its kind (``after``, ``aggregate``, ``row``, ``balance``, ``sequence``).
Each rule names the error kinds of the generator's catalogue it is meant to catch, which is how detection is
scored against the answer key. ``rules_for`` and ``all_rules`` are the shop's (contracts/shop.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from orchestrator.domain import model as m
from orchestrator.domain import shop

# Severity: silver passes every error rule; a warning (an incomplete optional value) is reported only.
ERROR, WARNING = "error", "warning"

# Checks. Column checks look at one value; key checks at a column across rows; cross-table checks join.
NOT_NULL = "not_null"  # present: not null and not an empty or blank string
NUMERIC = "numeric"  # a number (JSON number or numeric text)
TIMESTAMP = "timestamp"  # ISO-8601 UTC text of a real calendar date and time
RANGE = "range"  # minimum <= value <= maximum
NOT_FUTURE = "not_future"  # timestamp <= the data set's as-of time
PATTERN = "pattern"  # full match of a regular expression
IN_SET = "in_set"  # one of the allowed values, exactly (case and spacing included)
CANONICAL_TEXT = "canonical_text"  # no stray spaces; in the column's canonical case if it has one
UNIQUE = "unique"  # no two rows share the value(s)
FOREIGN_KEY = "foreign_key"  # the referenced row exists
# A constraint's rule is checked by its kind (orchestrator.domain.model.CONSTRAINT_KINDS); its id is the
# constraint's.

# A title-cased value: no lower-case letter starting a word, no upper-case letter inside one (str.title()).
TITLE_CASE_VIOLATION = r"(^|[^\p{L}])\p{Ll}|\p{L}\p{Lu}"


@dataclass(frozen=True)
class Rule:
    """One declarative check: where it applies, what it checks, how serious it is, what it catches."""

    id: str
    table: str
    columns: tuple[str, ...]
    check: str
    params: dict = field(default_factory=dict, hash=False, compare=False)
    severity: str = ERROR
    kinds: tuple[str, ...] = ()  # generator error kinds this rule detects
    description: str = ""

    @property
    def column(self) -> str:
        return self.columns[0]


def _column_rules(table: m.Table, col: m.Column) -> list[Rule]:
    t, c = table.name, col.name
    rules: list[Rule] = []

    def add(check: str, kinds: tuple[str, ...], description: str, severity: str = ERROR, **params) -> None:
        rules.append(Rule(f"{t}.{c}.{check}", t, (c,), check, params, severity, kinds, description))

    if not col.nullable:
        # A missing key or essential fact makes the row unusable (error: cleaning quarantines it); a missing
        # attribute is reported as incomplete (warning: cleaning keeps the row with the value null).
        add(NOT_NULL, ("missing",), f"{c} is present", ERROR if col.is_required else WARNING)
    if col.type in (m.ID, m.FK, *m.NUMERIC_TYPES):
        add(NUMERIC, ("wrong_type",), f"{c} is a number")
    if col.type in m.NUMERIC_TYPES and (col.minimum is not None or col.maximum is not None):
        add(
            RANGE,
            ("negative", "zero", "outlier"),
            f"{c} lies between {col.minimum} and {col.maximum}",
            minimum=col.minimum,
            maximum=col.maximum,
        )
    if col.type == m.TIMESTAMP:
        add(TIMESTAMP, ("wrong_type", "impossible_date"), f"{c} is an ISO-8601 UTC timestamp of a real date")
        add(NOT_FUTURE, ("future_date",), f"{c} is not after the data set's as-of time")
    if col.pattern and col.type != m.TIMESTAMP:
        kinds = {
            m.EMAIL: ("email_malformed", "whitespace", "case"),
            m.PHONE: ("phone_malformed", "phone_format", "whitespace"),
        }.get(col.type, ("whitespace", "case"))
        add(PATTERN, kinds, f"{c} matches {col.pattern}", pattern=col.pattern)
    if col.type == m.CATEGORY:
        add(
            IN_SET,
            ("whitespace", "case", "typo", "unknown_category"),
            f"{c} is one of {', '.join(col.categories)}",
            values=col.categories,
            case=col.case,
        )
    if col.type == m.TEXT:
        add(
            CANONICAL_TEXT,
            ("whitespace", "case") if col.case else ("whitespace",),
            f"{c} has no stray spaces" + (f" and is in {col.case} case" if col.case else ""),
            case=col.case,
        )
    if col.references:
        add(
            FOREIGN_KEY,
            # a reference held as text (to a text key) no longer matches once its spacing or case changes
            ("orphan_fk", "whitespace", "case") if col.type in m.STRING_TYPES else ("orphan_fk",),
            f"{c} refers to an existing {col.references} row",
            references=col.references,
        )
    return rules


def _table_rules(table: m.Table) -> list[Rule]:
    t, key = table.name, table.primary_key
    rules = [
        Rule(
            f"{t}.{table.sole_key or 'primary_key'}.unique",
            t,
            key,
            UNIQUE,
            {},
            ERROR,
            ("exact_duplicate", "near_duplicate"),
            f"{', '.join(key)} identif{'ies' if len(key) == 1 else 'y'} one row",
        )
    ]
    if table.business_key != key:
        rules.append(
            Rule(
                f"{t}.business_key.unique",
                t,
                table.business_key,
                UNIQUE,
                {},
                ERROR,
                (),
                f"{', '.join(table.business_key)} identify one row",
            )
        )
    for col in table.columns:
        rules.extend(_column_rules(table, col))
    return rules


@cache
def table_rules(table: m.Table) -> tuple[Rule, ...]:
    """The rules a table's own declaration gives: its keys' uniqueness and every column's rules."""
    return tuple(_table_rules(table))


def _constraint_rule(contract: m.Contract, constraint: m.Constraint) -> Rule:
    """The rule that checks a declared constraint: the operation of its kind, on its own table's columns
    (params hold the whole constraint and, for a ROW with terms in another table, the link to it)."""
    params: dict = {"constraint": constraint}
    columns = (constraint.column,)
    if constraint.kind == m.ROW:
        own = [t.column for t in constraint.participants[1:] if t.table == constraint.table]
        linked = {t.table for t in constraint.participants} - {constraint.table}
        columns += tuple(own)
        for other in linked:
            params["link"] = contract.link(constraint.table, other)
    return Rule(
        f"{constraint.table}.{constraint.column}.{constraint.id}",
        constraint.table,
        columns,
        constraint.kind,
        params,
        constraint.severity,
        constraint.catches,
        constraint.description,
    )


def rules_of(contract: m.Contract) -> dict[str, tuple[Rule, ...]]:
    """Every rule of each table of a contract, by table in the contract's order: the table's own, then
    its constraints' (which apply only when the tables they name are there)."""
    return {
        name: table_rules(table)
        + tuple(_constraint_rule(contract, c) for c in contract.constraints if c.table == name)
        for name, table in contract.tables.items()
    }


_SHOP_RULES = rules_of(shop.CONTRACT)


def rules_for(table: str) -> tuple[Rule, ...]:
    """Every rule of one of the shop's tables, cross-table ones included."""
    return _SHOP_RULES[table]


def all_rules() -> tuple[Rule, ...]:
    """Every rule of the shop, table by table."""
    return tuple(rule for rules in _SHOP_RULES.values() for rule in rules)


def _one_edit(a: str, b: str) -> bool:
    """True when ``b`` is ``a`` with one letter inserted, dropped, replaced, or two neighbours swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        return len(diff) == 1 or (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


@cache
def closest_value(value: str, allowed: tuple[str, ...]) -> str | None:
    """The one allowed value a single typo away from ``value``; None if there is none, or more than one."""
    if value in allowed:
        return value
    near = [candidate for candidate in allowed if _one_edit(value, candidate)]
    return near[0] if len(near) == 1 else None
