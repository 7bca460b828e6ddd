"""Passes 3 and 4 of the Spark engine, per table in the contract's order: quarantine of rows missing a
required value, references checked against the parents' silver, and business-key de-duplication; then both
outputs of a settled table in one frame."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from orchestrator.cleaning.spark.frames import (
    DUP,
    ISSUES,
    LINE,
    OUTPUT,
    REJECT,
    RULE,
    Cell,
    issue,
    mark_repeats,
    raw,
    staged,
    true,
)
from orchestrator.domain import model as m
from orchestrator.domain import rules as r


def _rule_id(table: m.Table, column: str, check: str) -> str:
    return f"{table.name}.{column}.{check}"


def _alive() -> Column:
    return ~F.col(DUP) & F.col(REJECT).isNull()


def _reject(mask: Column, rule_id: Column) -> Column:
    """Quarantine live rows in ``mask`` (the first rejecting rule is the one reported)."""
    return F.when(true(mask) & _alive(), rule_id).otherwise(F.col(REJECT))


def settle(
    frame: DataFrame, table: m.Table, contract: m.Contract, done: dict[str, DataFrame], staging: Path
) -> DataFrame:
    """Reject incomplete rows and orphans, and mark business-key duplicates. A foreign key is checked against
    its parent's key (``done``: the silver of the parents settled before); an orphan loses a nullable
    reference and is quarantined for a required one. A table checked against its parents is staged after
    the checks: the business-key check and the outputs read them once."""
    for column in table.columns:
        if column.is_required:
            not_null = F.lit(_rule_id(table, column.name, r.NOT_NULL))
            cause = F.coalesce(F.col(issue(column.name)), not_null)
            frame = frame.withColumn(REJECT, _reject(F.col(column.name).isNull(), cause))
    parents = [c for c in table.columns if c.type == m.FK and c.references in done]
    for column in parents:
        parent_key = contract.tables[column.references].sole_key
        keys = done[column.references].select(F.col(parent_key).alias("_parent")).distinct()
        frame = frame.join(keys, F.col(column.name) == F.col("_parent"), "left")
        orphan = F.col(column.name).isNotNull() & F.col("_parent").isNull()
        rule_id = _rule_id(table, column.name, r.FOREIGN_KEY)
        if column.nullable:
            cell = Cell(F.col(column.name), F.col(issue(column.name)))
            cell.invalidate(orphan, rule_id)
            frame = frame.withColumns({column.name: cell.value, issue(column.name): cell.issue})
        else:
            frame = frame.withColumn(REJECT, _reject(orphan, F.lit(rule_id)))
        frame = frame.drop("_parent")
    if parents:
        frame = staged(frame, staging / "settled" / table.name)
    key = list(table.business_key)
    if key != list(table.primary_key):
        frame = mark_repeats(frame, key, _alive(), DUP)
    return frame


def outputs_of(frame: DataFrame, table: m.Table) -> DataFrame:
    """Both outputs in one frame, duplicates left out, ``OUTPUT`` naming each row's: live rows with their
    typed values and the rules repaired or nulled in the row (silver); rejected rows with their raw text, in
    the ``raw(name)`` columns, and the rejecting rule (quarantine). Both keep the raw line."""
    alive = _alive()
    issues = F.concat_ws(";", *(F.col(issue(c.name)) for c in table.columns))
    silver = [F.when(alive, F.col(name)).alias(name) for name in table.column_names]
    silver.append(F.when(alive & (issues != ""), issues).alias(ISSUES))
    quarantine = [F.when(~alive, F.col(raw(c.name))).alias(raw(c.name)) for c in table.columns]
    output = F.when(alive, F.lit("silver")).otherwise(F.lit("quarantine")).alias(OUTPUT)
    kept = frame.where(alive | F.col(REJECT).isNotNull())
    return kept.select(*silver, *quarantine, LINE, F.col(REJECT).alias(RULE), output)
