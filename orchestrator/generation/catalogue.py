"""The error catalogue: every kind of dirt the generator injects, where it applies, and its default weight.

A kind's rate is ``error_rate * weight`` unless overridden. Cell kinds compete for a cell (a cell carries
at most one error); row kinds (duplicates) copy a whole row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from orchestrator.domain import shop as s
from orchestrator.domain.model import Constraint, Contract


@dataclass(frozen=True)
class ErrorKind:
    name: str
    weight: float
    repairable: bool  # the dirty value still carries what is needed to restore the clean one
    description: str
    row_level: bool = False

    def applies(self, table: s.Table, column: s.Column) -> bool:
        return _APPLIES[self.name](table, column)


def _types(*types: str):
    return lambda _t, c: c.type in types


_APPLIES = {
    "missing": lambda _t, c: c.type != s.ID,
    "whitespace": lambda _t, c: c.type in s.STRING_TYPES,
    "case": lambda _t, c: c.case is not None,
    "typo": _types(s.CATEGORY),
    "email_malformed": _types(s.EMAIL),
    "phone_format": _types(s.PHONE),
    "phone_malformed": _types(s.PHONE),
    "wrong_type": lambda _t, c: c.type in s.NUMERIC_TYPES or c.type == s.TIMESTAMP,
    "negative": lambda _t, c: c.type in s.NUMERIC_TYPES and c.minimum is not None and c.minimum >= 0,
    "zero": lambda _t, c: c.type in s.NUMERIC_TYPES and (c.minimum or 0) > 0,
    "outlier": lambda _t, c: c.type in s.NUMERIC_TYPES and c.maximum is not None,
    "impossible_date": _types(s.TIMESTAMP),
    "future_date": _types(s.TIMESTAMP),
    "unknown_category": _types(s.CATEGORY),
    "orphan_fk": _types(s.FK),
    "order_before_signup": lambda _t, _c: False,  # a constraint's contradiction (constraint_kinds)
    "total_mismatch": lambda _t, _c: False,
    "out_of_order": lambda _t, _c: False,
    "arithmetic_mismatch": lambda _t, _c: False,
    "exact_duplicate": lambda _t, _c: False,
    "near_duplicate": lambda _t, _c: False,
}

KINDS: dict[str, ErrorKind] = {
    k.name: k
    for k in (
        ErrorKind("missing", 0.10, False, "value left out: JSON null or an empty string"),
        ErrorKind("whitespace", 0.10, True, "stray leading, trailing or doubled spaces and tabs"),
        ErrorKind("case", 0.10, True, "letter case changed (upper, lower or swapped)"),
        ErrorKind("typo", 0.10, True, "a swapped, dropped, doubled or replaced letter in a category value"),
        ErrorKind("email_malformed", 0.15, False, "an e-mail that is not an address (no @, @@, no domain)"),
        ErrorKind("phone_format", 0.10, True, "the same phone digits in another format (00 prefix, spaces)"),
        ErrorKind("phone_malformed", 0.10, False, "a phone with letters, cut short or too long"),
        ErrorKind("wrong_type", 0.05, False, "text such as 'N/A' in a numeric or date field"),
        ErrorKind("negative", 0.03, False, "a negative amount or count where the contract allows none"),
        ErrorKind("zero", 0.03, False, "zero where a positive value is required"),
        ErrorKind("outlier", 0.03, False, "a value above the column's plausible maximum"),
        ErrorKind("impossible_date", 0.03, False, "a date that does not exist (month 13, 30 February)"),
        ErrorKind("future_date", 0.03, False, "a timestamp after the data set's as-of date"),
        ErrorKind("unknown_category", 0.05, False, "a value outside the column's allowed set"),
        ErrorKind("orphan_fk", 0.03, False, "a reference to a row that does not exist"),
        ErrorKind("order_before_signup", 0.05, False, "an order placed before its customer signed up"),
        ErrorKind("total_mismatch", 0.05, True, "an order total that is not the sum of its items"),
        ErrorKind(
            "out_of_order",
            0.05,
            False,
            "a time before the one it must follow (after), or a value below the previous one of its group "
            "(sequence)",
        ),
        ErrorKind(
            "arithmetic_mismatch",
            0.05,
            False,
            "a value that is not the sum of the rows referring to it (aggregate), not the product of its "
            "row's terms (row), or a leg that keeps its group from summing to zero (balance)",
        ),
        ErrorKind("exact_duplicate", 0.05, True, "the same record sent twice", row_level=True),
        ErrorKind(
            "near_duplicate", 0.03, True, "the record sent again with one value reformatted", row_level=True
        ),
    )
}
CELL_KINDS = tuple(k for k, v in KINDS.items() if not v.row_level)
ROW_KINDS = tuple(k for k, v in KINDS.items() if v.row_level)


# Kinds injected only as the contradiction of a declared constraint, recorded as its first ``catches`` kind:
# the shop's own, and the general ones of after and sequence (out_of_order) and of aggregate, row and balance
# (arithmetic_mismatch) constraints.
CONSTRAINT_KINDS = ("order_before_signup", "total_mismatch", "out_of_order", "arithmetic_mismatch")


def constraint_kinds(
    table: s.Table, column: s.Column, constraints: Iterable[Constraint]
) -> dict[str, Constraint]:
    """The constraints judging ``column`` that the generator contradicts, by the kind each is recorded as."""
    return {
        c.catches[0]: c
        for c in constraints
        if (c.table, c.column) == (table.name, column.name) and c.catches and c.catches[0] in CONSTRAINT_KINDS
    }


def cell_kinds(
    table: s.Table, column: s.Column, constraints: Iterable[Constraint] | None = None
) -> tuple[str, ...]:
    """The cell kinds that can hit a column, in catalogue order; ``constraints`` are its contract's (default:
    the shop's)."""
    caught = constraint_kinds(table, column, s.CONTRACT.constraints if constraints is None else constraints)
    return tuple(k for k in CELL_KINDS if KINDS[k].applies(table, column) or k in caught)


def receivable(contract: Contract) -> tuple[str, ...]:
    """The kinds a job of ``contract`` can receive, in catalogue order: the cell kinds of its columns other
    than their table's primary key (keys stay clean), and the row kinds (duplicates)."""
    cells = {
        kind
        for table in contract.tables.values()
        for column in table.columns
        if column.name not in table.primary_key
        for kind in cell_kinds(table, column, contract.constraints)
    }
    return tuple(k for k in KINDS if k in cells or KINDS[k].row_level)


def near_duplicate_columns(table: s.Table) -> tuple[str, ...]:
    """Columns a near duplicate may reformat: string columns other than the keys."""
    return tuple(
        c.name
        for c in table.columns
        if c.type in s.STRING_TYPES and c.name not in table.business_key and c.name not in table.primary_key
    )
