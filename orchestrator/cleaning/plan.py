"""Which of a contract's constraints a job's cleaning applies, and in which order: the one plan both
engines (constraints.py for pandas, spark/repairs.py for Spark) follow, so they repair alike.
Imports no engine."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from orchestrator.domain import model as m


@dataclass(frozen=True)
class RepairPlan:
    """The steps of constraints.py's module docstring, for the tables a job has."""

    within_row: tuple[m.Constraint, ...]  # 1. row constraints whose terms all lie in their own row
    after: tuple[m.Constraint, ...]  # 2.
    aggregates: tuple[m.Constraint, ...]  # 3. witnesses: sums over referring rows,
    linked: tuple[m.Constraint, ...]  # and row constraints with a term in a linked row
    witness_columns: dict[str, tuple[str, ...]]  # 3. per table in order, the columns judged ones first
    balance: tuple[m.Constraint, ...]  # 4.
    sequence: tuple[m.Constraint, ...]  # 5.


def repair_plan(contract: m.Contract, tables: Collection[str]) -> RepairPlan:
    """The plan for a job holding ``tables`` (in the order they are cleaned: parents first); a constraint
    applies when every table it names is among them."""

    def applicable(kind: str) -> tuple[m.Constraint, ...]:
        return tuple(
            c
            for c in contract.constraints
            if c.kind == kind
            and c.table in tables
            and (not c.other_table or c.other_table in tables)
            and all(t.table in tables for t in (c.participants if c.kind == m.ROW else ()))
        )

    rows = applicable(m.ROW)
    aggregates = applicable(m.AGGREGATE)
    linked = tuple(c for c in rows if any(t.table != c.table for t in c.participants))
    judged = {(c.table, c.column) for c in (*aggregates, *linked)}
    return RepairPlan(
        within_row=tuple(c for c in rows if c not in linked),
        after=applicable(m.AFTER),
        aggregates=aggregates,
        linked=linked,
        # the values constraints judge first, then those merely derived from them
        witness_columns={
            table: tuple(
                sorted(contract.tables[table].column_names, key=lambda name: (table, name) not in judged)
            )
            for table in tables
        },
        balance=applicable(m.BALANCE),
        sequence=applicable(m.SEQUENCE),
    )
