"""What a data set is, as a contract declares it: tables, columns with the rule each value obeys, keys,
references and constraints across columns and tables. Imports no engine and no Faker.

Column kinds say how a value is held and checked. Money is held as integer cents, decimal1 as integer
tenths, timestamps as epoch seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ID, FK, INT, MONEY, DECIMAL1, TIMESTAMP, TEXT, CATEGORY, EMAIL, PHONE, CODE = (
    "id",
    "fk",
    "int",
    "money",
    "decimal1",
    "timestamp",
    "text",
    "category",
    "email",
    "phone",
    "code",
)
KINDS = (ID, FK, INT, MONEY, DECIMAL1, TIMESTAMP, TEXT, CATEGORY, EMAIL, PHONE, CODE)
NUMERIC_TYPES = frozenset({INT, MONEY, DECIMAL1})
STRING_TYPES = frozenset({TEXT, CATEGORY, EMAIL, PHONE, CODE})
CASES = ("title", "lower", "upper")

EMAIL_PATTERN = r"^[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$"
PHONE_PATTERN = r"^\+[1-9][0-9]{7,14}$"
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"

# Constraints across columns and tables: one operation each, named by its kind.
AFTER = "after"  # a timestamp lies after another one reached through a reference
AGGREGATE = "aggregate"  # a value equals the sum of a column over the rows that reference its row
ROW = "row"  # a value equals the product (or sum) of others of its row or of the one row it is linked to
BALANCE = "balance"  # the rows that share a group sum to zero (a transfer's two legs)
SEQUENCE = "sequence"  # within a group, the value rises with the row key (time-ordered readings)
CONSTRAINT_KINDS = (AFTER, AGGREGATE, ROW, BALANCE, SEQUENCE)
PRODUCT, SUM = "product", "sum"  # how a ROW value follows from its terms
ROW_OPS = (PRODUCT, SUM)
PARENT, CHILD = "parent", "child"  # a row's link to another table: its foreign key, or one referring row


@dataclass(frozen=True)
class Column:
    """One column and the rule its values obey."""

    name: str
    type: str
    nullable: bool = False  # clean data may hold nulls here
    references: str | None = None  # table whose primary key a foreign key points at
    categories: tuple[str, ...] = ()
    case: str | None = None  # canonical case ("title", "lower", "upper"); None: case is free
    minimum: float | None = None  # valid range, in the column's own unit (e.g. 0.01 for money)
    maximum: float | None = None
    pattern: str | None = None  # regular expression a valid value matches
    required: bool = False  # a row without a valid value here is unusable (keys are always required)
    # how to draw clean values (docs/contracts.md: generate)
    generate: dict[str, Any] = field(default_factory=dict, hash=False)
    declared_type: str = ""  # the logicalType the contract gave (object, array, ... are generated as text)
    physical_type: str = (
        ""  # the physicalType the contract gave (xml, bytea, uuid, ... are generated as text)
    )

    @property
    def is_required(self) -> bool:
        return self.required or (self.type in (ID, FK) and not self.nullable)


@dataclass(frozen=True)
class Table:
    """A table; rows are identified by ``primary_key`` (one column or several, anywhere in the table; the
    first column when none is given) and de-duplicated on ``business_key``."""

    name: str
    columns: tuple[Column, ...]
    business_key: tuple[str, ...]
    parent: str | None = None  # generated per row of this table (None: a table with its own count)
    description: str = ""
    volume: dict[str, Any] = field(default_factory=dict, hash=False)  # how many rows (docs/contracts.md)
    primary_key: tuple[str, ...] = ()
    column_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "column_names", tuple(c.name for c in self.columns))
        if not self.primary_key:
            object.__setattr__(self, "primary_key", (self.columns[0].name,))

    @property
    def key(self) -> str | None:
        """The single integer key (an ``id`` column) rows are numbered by, as the shop's code and the
        constraints use it; None for a composite or text primary key."""
        if len(self.primary_key) == 1 and self.column(self.primary_key[0]).type == ID:
            return self.primary_key[0]
        return None

    @property
    def sole_key(self) -> str | None:
        """The primary key's column when it is a single one (integer or text), which foreign keys refer to."""
        return self.primary_key[0] if len(self.primary_key) == 1 else None

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


@dataclass(frozen=True)
class Constraint:
    """A declared rule across columns or tables (see CONSTRAINT_KINDS). ``column`` of ``table`` is the value
    it judges; ``via`` is the reference followed (after: this table's foreign key; aggregate: the other
    table's column that refers back); ``other`` is the ``table.column`` it is compared with; ``terms`` are
    what a ROW value follows (see Term), by ``op``; ``group`` is the column whose equal values form a
    BALANCE or SEQUENCE group; ``complete_when`` (AGGREGATE only) says when a row's referring rows are
    known to be all there: ``{"sequence": COLUMN}``, the other table's column numbering them 1..n in the
    order of its key."""

    id: str
    kind: str
    table: str
    column: str
    other: str = ""
    via: str = ""
    terms: tuple[str, ...] = ()
    group: str = ""
    severity: str = "error"
    catches: tuple[str, ...] = ()  # error kinds of the catalogue it detects
    description: str = ""
    complete_when: dict[str, str] = field(default_factory=dict, hash=False)

    op: str = PRODUCT  # ROW only: the value is the product of its terms, or their sum (SUM)

    @property
    def other_table(self) -> str:
        return self.other.partition(".")[0]

    @property
    def other_column(self) -> str:
        return self.other.partition(".")[2]

    @property
    def participants(self) -> tuple[Term, ...]:
        """ROW only: its value, then its terms, each with the table it lies in and its sign."""
        return (Term(self.table, self.column, 1), *(Term.read(self.table, term) for term in self.terms))


@dataclass(frozen=True)
class Term:
    """A value a ROW constraint relates: ``column`` of ``table`` (the constraint's own row, or the one row of
    another table its row is linked to), added or subtracted (``sign``) in a sum."""

    table: str
    column: str
    sign: int

    @classmethod
    def read(cls, table: str, text: str) -> Term:
        """A term as the contract writes it: ``COLUMN`` or ``TABLE.COLUMN``, ``-`` before it to subtract."""
        sign = -1 if text.startswith("-") else 1
        other, _, column = text.lstrip("-").rpartition(".")
        return cls(other or table, column, sign)


@dataclass(frozen=True)
class GoldTable:
    """A business aggregate the contract declares: one read-only SELECT over the silver tables, which it
    names by their table names (``reads``, found when the contract is read)."""

    name: str
    sql: str
    description: str = ""
    reads: tuple[str, ...] = ()


@dataclass(frozen=True)
class Contract:
    """A data set as its contract declares it, in the order of its tables."""

    id: str
    name: str
    version: str
    tables: dict[str, Table]
    constraints: tuple[Constraint, ...] = ()
    description: str = ""
    driving_table: str = ""  # what ``--rows`` counts
    generator: str = ""  # a built-in generator of the workbench's (the shop's) instead of the generic one
    gold: tuple[GoldTable, ...] = ()  # the gold tables built from its silver (none unless declared)

    @property
    def table_names(self) -> tuple[str, ...]:
        return tuple(self.tables)

    @property
    def parent_first(self) -> tuple[str, ...]:
        """The tables in the contract's order, except that each comes after the tables it refers to (where
        references run in a cycle, in the contract's order), so parents are cleaned before their children."""
        order: list[str] = []
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if name in order or name in visiting:
                return
            visiting.add(name)
            for column in self.tables[name].columns:
                if column.references and column.references != name:
                    visit(column.references)
            order.append(name)

        for name in self.tables:
            visit(name)
        return tuple(order)

    def link(self, table: str, other: str) -> tuple[str, str] | None:
        """How a row of ``table`` reaches one row of ``other``: (PARENT, its foreign key to ``other``) or
        (CHILD, ``other``'s foreign key to ``table``: the first row referring to it); None when there is no
        such reference, or more than one."""
        found = [(PARENT, c.name) for c in self.tables[table].columns if c.references == other]
        found += [(CHILD, c.name) for c in self.tables[other].columns if c.references == table]
        return found[0] if len(found) == 1 else None
