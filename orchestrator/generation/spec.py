"""What to generate: tables, scale, seed, error rates. Validated before anything is written."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import date
from fractions import Fraction

from orchestrator.contracts import resolve
from orchestrator.domain.contract import DEFAULT_CONTRACT, ContractSource
from orchestrator.errors import InvalidInput
from orchestrator.generation import catalogue
from orchestrator.generation.pools import LOCALES

MAX_ROWS = 100_000_000
# Dimension sizes per order. Children of a dimension pick a parent among the first ceil((i+1) * ratio)
# rows, so references never depend on the total row count (more rows never change the first rows).
DIMENSION_RATIOS: dict[str, Fraction] = {
    "customers": Fraction(1, 4),
    "sellers": Fraction(1, 100),
    "products": Fraction(1, 20),
    "inventory": Fraction(1, 20),
    "coupons": Fraction(1, 500),
}


@dataclass(frozen=True)
class GenerationSpec:
    """A data set to generate from a contract (a reference as ``orchestrator.contracts.resolve`` reads it;
    the shop by default, and for a spec stored before specs named one). ``rows`` counts the contract's driving
    table (the shop's orders); every other table scales with it. No ``tables``: all of the contract's."""

    rows: int
    seed: int = 0
    tables: tuple[str, ...] = ()
    error_rate: float = 0.3
    kind_rates: dict[str, float] = field(default_factory=dict)  # absolute rate per error kind
    table_rates: dict[str, float] = field(default_factory=dict)  # error_rate per table
    locales: tuple[str, ...] = tuple(LOCALES)
    chunk_rows: int = 100_000
    start: str = "2024-01-01"
    end: str = "2025-12-31"
    contract: str = DEFAULT_CONTRACT

    def __post_init__(self) -> None:
        _check_int("rows", self.rows, 1, MAX_ROWS)
        _check_int("seed", self.seed, 0, 2**63 - 1)
        _check_int("chunk_rows", self.chunk_rows, 1, 10_000_000)
        _check_rate("error_rate", self.error_rate)
        contract = self.source().contract
        if not self.tables:
            object.__setattr__(self, "tables", contract.table_names)
        for name in self.tables:
            if name not in contract.tables:
                raise InvalidInput(
                    "tables", f"unknown table {name!r}; choose from {', '.join(contract.table_names)}"
                )
        if len(set(self.tables)) != len(self.tables):
            raise InvalidInput("tables", "a table is listed twice")
        for kind, rate in self.kind_rates.items():
            if kind not in catalogue.KINDS:
                raise InvalidInput(
                    "kind_rates", f"unknown error kind {kind!r}; choose from {', '.join(catalogue.KINDS)}"
                )
            _check_rate(f"kind_rates.{kind}", rate)
        for table, rate in self.table_rates.items():
            if table not in contract.tables:
                raise InvalidInput("table_rates", f"unknown table {table!r}")
            _check_rate(f"table_rates.{table}", rate)
        if not self.locales or any(loc not in LOCALES for loc in self.locales):
            raise InvalidInput("locales", f"choose one or more of {', '.join(LOCALES)}")
        try:
            first, last = date.fromisoformat(self.start), date.fromisoformat(self.end)
        except (TypeError, ValueError):
            raise InvalidInput("start", "start and end must be dates as YYYY-MM-DD") from None
        if not date(2000, 1, 1) <= first < last <= date(2100, 1, 1):
            raise InvalidInput("end", "end must come after start, both between 2000 and 2100")
        self._check_column_sums()

    def source(self) -> ContractSource:
        """The contract the spec follows (read once per version of its file)."""
        # A USER/NAME reference is read as its owner's here; the generation checks who may use it.
        return resolve(self.contract, self.contract.partition("/")[0] if "/" in self.contract else "")

    def rate(self, table: str, kind: str) -> float:
        """The probability that an eligible cell (or row, for duplicates) of ``table`` carries ``kind``."""
        if kind in self.kind_rates:
            return self.kind_rates[kind]
        return self.table_rates.get(table, self.error_rate) * catalogue.KINDS[kind].weight

    def dimension_rows(self, table: str) -> int:
        return math.ceil(self.rows * DIMENSION_RATIOS[table])

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GenerationSpec:
        """The spec ``to_dict`` gave, also after a trip through JSON (which turns its tuples into lists)."""
        return cls(**{**data, "tables": tuple(data["tables"]), "locales": tuple(data["locales"])})

    def _check_column_sums(self) -> None:
        contract = self.source().contract
        for table in contract.tables.values():
            for column in table.columns:
                kinds = catalogue.cell_kinds(table, column, contract.constraints)
                total = sum(self.rate(table.name, k) for k in kinds)
                if total > 1:
                    raise InvalidInput(
                        "kind_rates",
                        f"rates of the kinds hitting {table.name}.{column.name} add up to {total:.2f}; "
                        "a cell carries at most one error, so lower them to a sum of 1 or less",
                    )
            row_total = sum(self.rate(table.name, k) for k in catalogue.ROW_KINDS)
            if row_total > 1:
                raise InvalidInput("kind_rates", f"duplicate rates of {table.name} add up to more than 1")


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(name, f"must be a whole number from {low:,} to {high:,} (got {value!r})")


def _check_rate(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InvalidInput(name, f"must be a rate between 0 and 1 (got {value!r})")
