"""What the pages show of a data contract: its label in a list, the overview of the contracts a user can use,
each table's columns and constraints, how many rows each table gets, and a diagram of the tables and their
foreign keys as Graphviz DOT text."""

from __future__ import annotations

from typing import Any

import pandas as pd

from orchestrator.contracts import ContractEntry
from orchestrator.domain import model as m
from orchestrator.domain.contract import ContractError
from orchestrator.generation.spec import DIMENSION_RATIOS

DRIVING_FILL = "#ffe3c2"  # the driving table's node: the one the rows asked for count
TABLE_FILL = "#eef1f6"


def contract_label(entry: ContractEntry) -> str:
    """A contract as a picker lists it: its reference, its name (or that it does not validate), and whose it
    is unless built in."""
    owner = f" ({entry.owner}'s)" if entry.owner else ""
    name = entry.source.contract.name if entry.source else "does not validate"
    return f"{entry.ref}: {name}{owner}"


def contract_error_text(error: ContractError) -> str:
    """Why a contract is refused, as the pages say it: the YAML path of what to change, then what is wrong."""
    return f"At `{error.field}`: {str(error).removeprefix(f'{error.field}: ')}"


def contracts_frame(entries: list[ContractEntry]) -> pd.DataFrame:
    """One row per contract: its reference, name, version, owner and size; and, when one no longer
    validates, the error of each that does not (its other fields left empty)."""
    contracts = [e.source.contract if e.source else None for e in entries]
    frame = pd.DataFrame(
        {
            "contract": [e.ref for e in entries],
            "name": [c.name if c else None for c in contracts],
            "version": [c.version if c else None for c in contracts],
            "owner": [e.owner or "built in" for e in entries],
            "tables": [len(c.tables) if c else None for c in contracts],
            "columns": [sum(len(t.columns) for t in c.tables.values()) if c else None for c in contracts],
            "constraints": [len(c.constraints) if c else None for c in contracts],
        }
    ).astype({"tables": "Int64", "columns": "Int64", "constraints": "Int64"})
    if any(e.error for e in entries):
        frame["error"] = [str(e.error) if e.error else None for e in entries]
    return frame


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def volume_text(contract: m.Contract, table: m.Table) -> str:
    """How many rows ``table`` gets, as the pages say it: "the rows asked for", "1-5 per orders row"."""
    driving, volume = contract.driving_table, table.volume
    if table.name == driving:
        return "the rows asked for"
    if "per" in volume:
        low = volume.get("min", 1)
        high = volume.get("max", low)
        many = _count(low) if low == high else f"{_count(low)}-{_count(high)}"
        return f"{many} per {volume['per']} row"
    if "ratio" in volume:
        return f"{_count(volume['ratio'])} × {driving}"
    if "rows" in volume:
        return f"{_count(volume['rows'])} rows"
    if contract.generator == "shop" and table.name in DIMENSION_RATIOS:
        return f"{float(DIMENSION_RATIOS[table.name]):g} × {driving}"
    if table.parent:
        return f"per {table.parent} row"
    return f"as many as {driving}"


def columns_frame(table: m.Table) -> pd.DataFrame:
    """One row per column of ``table``: its kind, whether clean data has a value, its key or reference, and
    what a valid value is (allowed values, range, pattern)."""

    def bounds(column: m.Column) -> str:
        if column.minimum is None and column.maximum is None:
            return ""
        low = "" if column.minimum is None else _count(column.minimum)
        high = "" if column.maximum is None else _count(column.maximum)
        return f"{low} to {high}".strip()

    def key(column: m.Column) -> str:
        if column.name in table.primary_key:
            return "primary key" + (f" → {column.references}" if column.references else "")
        return f"→ {column.references}" if column.references else ""

    return pd.DataFrame(
        {
            "column": [c.name for c in table.columns],
            "kind": [c.type for c in table.columns],
            "required": [not c.nullable for c in table.columns],
            "essential": [c.is_required for c in table.columns],
            "key": [key(c) for c in table.columns],
            "allowed values": [", ".join(c.categories) for c in table.columns],
            "range": [bounds(c) for c in table.columns],
            "pattern": [c.pattern or "" for c in table.columns],
        }
    )


def constraints_frame(contract: m.Contract, table: str) -> pd.DataFrame:
    """The constraints declared on ``table``: what each checks, how severe, and what it says."""
    declared = [c for c in contract.constraints if c.table == table]
    return pd.DataFrame(
        {
            "constraint": [c.id for c in declared],
            "kind": [c.kind for c in declared],
            "column": [c.column for c in declared],
            "with": [c.other or " × ".join(c.terms) or c.group for c in declared],
            "severity": [c.severity for c in declared],
            "description": [c.description for c in declared],
        }
    )


def _quoted(*lines: str) -> str:
    """Lines as one DOT quoted string: backslashes and quotes escaped, a name's own line breaks as spaces."""
    escaped = (" ".join(line.splitlines()).replace("\\", "\\\\").replace('"', '\\"') for line in lines)
    return '"' + "\\n".join(escaped) + '"'


def contract_diagram(contract: m.Contract) -> str:
    """The tables of ``contract`` as Graphviz DOT: a node per table with its key and how many rows it gets
    (the driving table coloured), an edge per foreign key from the referring table, labelled by its column."""
    lines = [
        "digraph contract {",
        '  graph [rankdir=LR, nodesep=0.3, ranksep=0.6, fontname="sans-serif"];',
        '  node [shape=box, style="rounded,filled", fontname="sans-serif", fontsize=11, margin="0.15,0.08"];',
        '  edge [fontname="sans-serif", fontsize=9, color="#6b7280", fontcolor="#374151"];',
    ]
    for table in contract.tables.values():
        fill = DRIVING_FILL if table.name == contract.driving_table else TABLE_FILL
        key = ", ".join(table.primary_key)
        label = _quoted(table.name, f"key: {key}", f"rows: {volume_text(contract, table)}")
        lines.append(f'  {_quoted(table.name)} [label={label}, fillcolor="{fill}"];')
    for table in contract.tables.values():
        for column in table.columns:
            if column.references:
                target = _quoted(column.references)
                lines.append(f"  {_quoted(table.name)} -> {target} [label={_quoted(column.name)}];")
    lines.append("}")
    return "\n".join(lines)
