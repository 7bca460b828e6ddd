"""Pass 2 of the Spark engine: the contract's constraints, one generic operation per kind, in the order and
with the semantics of the small path's (orchestrator.cleaning.constraints, whose docstring gives them):
1. ``row`` constraints within a row; 2. ``after``; 3. witnesses across tables, table by table parents first
and column by column (judged columns first): aggregates and ``row`` constraints with a term in a linked row;
4. ``balance``; 5. ``sequence``.

``repair`` receives every table's frame after pass 1 (see frames: per column the typed value and its
``issue(name)``, ``raw(name)`` text where kept, ``LINE``, ``DUP`` and ``REJECT``, null for every row yet) and
returns them, parents first, with the same columns: values filled or nulled and their issues blamed, and rows
a balance quarantines rejected.
"""

from __future__ import annotations

import itertools
from functools import reduce
from pathlib import Path

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from orchestrator.cleaning.constraints import DECIMALS, INTEGRAL
from orchestrator.cleaning.plan import repair_plan
from orchestrator.cleaning.spark.frames import (
    DUP,
    LINE,
    REJECT,
    Cell,
    issue,
    round_half_even,
    staged,
    sum_money,
    true,
)
from orchestrator.domain import model as m
from orchestrator.domain import rules as r

KEY_RANGE = 1 << 18  # child keys per window range (see _neighbours)
LAST_RANGE = (1 << 63) - 1  # the range of rows without a key: after all others, as pandas sorts them


def repair(frames: dict[str, DataFrame], contract: m.Contract, staging: Path) -> dict[str, DataFrame]:
    """The constraints of ``contract`` applied to the job's frames, parents first. A table given a sum over
    its children is staged under ``staging`` once its witnesses are done, so the tables that read it and its
    own settling read the windows once; a table joined or windowed here that settling will not stage (it
    refers to no table of the job) is staged at the end."""
    ordered = {name: frames[name] for name in contract.parent_first if name in frames}
    return Repairs(contract, ordered, staging).run()


def _close(a: Column, b: Column) -> Column:
    """numpy's isclose (rtol 1e-5, atol 1e-8); False where either side is null."""
    return true(F.abs(a - b) <= 1e-8 + 1e-5 * F.abs(b))


def _typed(column: m.Column, value: Column) -> Column:
    """A value as the column holds it: money at cents, decimal1 at tenths, whole numbers only where whole
    (constraints._typed)."""
    if column.type in INTEGRAL:
        rounded = F.rint(value)
        return F.when(_close(value, rounded), rounded)
    return round_half_even(value, DECIMALS.get(column.type, 2))


class _Fills:
    """Repairs of a frame's cells gathered into one ``withColumns``; each fill reads the values as they were
    before any of them (as the small path reads its arrays) and the issues as the fills before left them."""

    def __init__(self) -> None:
        self.values: dict[str, Column] = {}

    def fill(self, column: m.Column, mask: Column, new: Column, rule_id: str) -> None:
        """Set repaired values of ``column`` where ``mask`` holds and a value is given, blaming ``rule_id``
        where the cell has no issue yet."""
        name = column.name
        new = _typed(column, new)
        hit = true(mask) & new.isNotNull()
        blamed = self.values.get(issue(name), F.col(issue(name)))
        self.values[issue(name)] = F.when(hit & blamed.isNull(), F.lit(rule_id)).otherwise(blamed)
        typed = new.cast("long") if column.type in INTEGRAL else new
        self.values[name] = F.when(hit, typed).otherwise(self.values.get(name, F.col(name)))


def _first_by_line(frame: DataFrame, key: str, value: Column, alias: str) -> DataFrame:
    """Per key, the value of the first row (by raw line) holding it."""
    picked = F.min(F.struct(F.col(LINE), value.alias("_v")))["_v"]
    return (
        frame.where(F.col(key).isNotNull()).groupBy(F.col(key).alias(f"{alias}_key")).agg(picked.alias(alias))
    )


def _alive() -> Column:
    return ~F.col(DUP) & F.col(REJECT).isNull()


def _solve(c: m.Constraint, values: list[Column], position: int) -> Column:
    """The value of participant ``position`` that the others give (null where one is missing), in the small
    path's order of operations (constraints.Repairs.solve); a zero divisor gives none."""
    terms = c.participants
    if c.op == m.SUM:
        given = reduce(
            lambda total, term: total + term,
            (
                F.lit(float(t.sign)) * v
                for i, (t, v) in enumerate(zip(terms, values, strict=True))
                if i and i != position
            ),
            F.lit(0.0),
        )
        return given if position == 0 else F.lit(float(terms[position].sign)) * (values[0] - given)
    product = reduce(
        lambda total, v: total * v, (v for i, v in enumerate(values) if i and i != position), F.lit(1.0)
    )
    if position == 0:
        return product
    return F.when(product != 0, values[0] / product)


class Repairs:
    """The constraints of one job's contract, applied to its frames between pass 1 and settling."""

    def __init__(self, contract: m.Contract, frames: dict[str, DataFrame], staging: Path) -> None:
        self.contract = contract
        self.frames = frames
        self.staging = staging
        self.changed: set[str] = set()  # tables joined or windowed since pass 1 (or since staged)
        self.names = (f"__w{n}" for n in itertools.count())

    def run(self) -> dict[str, DataFrame]:
        plan = repair_plan(self.contract, self.frames)
        for c in plan.within_row:
            self.within_row(c)
        for c in plan.after:
            self.after(c)
        for table, columns in plan.witness_columns.items():
            summed = False
            for column in columns:
                summed |= self.witnesses(table, column, plan.aggregates, plan.linked)
            if summed:
                self.stage(table)
        for c in plan.balance:
            self.balance(c)
        for c in plan.sequence:
            self.sequence(c)
        for table in sorted(self.changed, key=list(self.frames).index):
            refers = any(c.references in self.frames for c in self.contract.tables[table].columns)
            if not refers:
                self.stage(table)
        return self.frames

    def stage(self, table: str) -> None:
        self.frames[table] = staged(self.frames[table], self.staging / "repaired" / table)
        self.changed.discard(table)

    def rule(self, table: str, column: str, check: str) -> str:
        return f"{table}.{column}.{check}"

    # 1. Within a row -------------------------------------------------------------------------------
    def within_row(self, c: m.Constraint) -> None:
        table = self.contract.tables[c.table]
        values = [F.col(t.column).cast("double") for t in c.participants]
        known = [v.isNotNull() for v in values]
        fills = _Fills()
        for position, term in enumerate(c.participants):
            others = reduce(lambda a, b: a & b, [k for i, k in enumerate(known) if i != position])
            given = _solve(c, values, position)
            spec = table.column(term.column)
            if position == 0:
                wrong = ~_close(values[0], _typed(spec, given)) & known[0]
                mask = others & (~known[0] | wrong)
                fills.fill(spec, mask & ~known[0], given, self.rule(c.table, term.column, r.NOT_NULL))
                fills.fill(spec, mask & known[0], given, self.rule(c.table, term.column, c.id))
            else:
                rule_id = self.rule(c.table, term.column, r.NOT_NULL)
                fills.fill(spec, others & ~known[position], given, rule_id)
        self.frames[c.table] = self.frames[c.table].withColumns(fills.values)

    # 2. After --------------------------------------------------------------------------------------
    def after(self, c: m.Constraint) -> None:
        """A time before the one it must follow is nulled; the one it follows is that of the first row (by
        line) of the parent holding the key, whatever becomes of that row."""
        parent_key = self.contract.tables[c.other_table].sole_key
        name = next(self.names)
        earliest = _first_by_line(self.frames[c.other_table], parent_key, F.col(c.other_column), name)
        frame = self.frames[c.table].join(earliest, F.col(c.via) == F.col(f"{name}_key"), "left")
        cell = Cell(F.col(c.column), F.col(issue(c.column)))
        cell.invalidate(F.col(c.column) < F.col(name), self.rule(c.table, c.column, c.id))
        frame = frame.withColumns({c.column: cell.value, issue(c.column): cell.issue})
        self.frames[c.table] = frame.drop(name, f"{name}_key")
        self.changed.add(c.table)

    # 3. Witnesses across tables --------------------------------------------------------------------
    def witnesses(
        self, table: str, column: str, aggregates: tuple[m.Constraint, ...], linked: tuple[m.Constraint, ...]
    ) -> bool:
        """Repair ``column`` of ``table`` from its candidates; True when one was a sum over its children."""
        spec = self.contract.tables[table].column(column)
        candidates: list[Column] = []
        judged: m.Constraint | None = None
        joins: list[tuple[DataFrame, Column]] = []
        summed = False
        for c in aggregates:
            if (c.table, c.column) == (table, column):
                name = next(self.names)
                sums = self.aggregate(c).select(
                    F.col("_owner").alias(f"{name}_key"), F.col("_sum").alias(name)
                )
                joins.append((sums, F.col(self.contract.tables[table].sole_key) == F.col(f"{name}_key")))
                candidates.append(F.col(name))
                judged = judged or c
                summed = True
        reached: dict[tuple[str, str], Column] = {}
        for c in linked:
            for position, term in enumerate(c.participants):
                if (term.table, term.column) != (table, column):
                    continue
                values = []
                for t in c.participants:
                    if t.table == table:
                        values.append(F.col(t.column).cast("double"))
                        continue
                    if (t.table, t.column) not in reached:
                        name = next(self.names)
                        joins.append(self.linked(table, t.table, t.column, name))
                        reached[t.table, t.column] = F.col(name).cast("double")
                    values.append(reached[t.table, t.column])
                candidates.append(_solve(c, values, position))
                if position == 0:
                    judged = judged or c
        if not candidates:
            return False
        frame = self.frames[table]
        for other, condition in joins:
            frame = frame.join(other, condition, "left")
        candidates = [_typed(spec, value) for value in candidates]
        first = F.coalesce(*candidates)
        raw = F.col(column).cast("double")
        missing = raw.isNull()
        fills = _Fills()
        fills.fill(spec, missing, first, self.rule(table, column, r.NOT_NULL))
        if judged is not None:
            confirmed = reduce(lambda a, b: a | b, [_close(raw, value) for value in candidates])
            fills.fill(spec, ~missing & ~confirmed, first, self.rule(table, column, judged.id))
        frame = frame.withColumns(fills.values)
        self.frames[table] = frame.drop(*(c for c in frame.columns if c.startswith("__w")))
        self.changed.add(table)
        return summed

    def linked(self, table: str, other: str, column: str, name: str) -> tuple[DataFrame, Column]:
        """``column`` of the one row of ``other`` each row of ``table`` is linked to (as ``name``), and how
        to join it: the live parent its foreign key names, or the first live row (by line) referring to it."""
        direction, via = self.contract.link(table, other)
        there = self.frames[other].where(_alive())
        if direction == m.PARENT:
            key, here = self.contract.tables[other].sole_key, via
        else:
            key, here = via, self.contract.tables[table].sole_key
        values = _first_by_line(there, key, F.col(column), name)
        return values, F.col(here) == F.col(f"{name}_key")

    def aggregate(self, c: m.Constraint) -> DataFrame:
        """Per key of the constraint's table (``_owner``), the sum of ``other`` over the rows referring to it
        (``_sum``), where those are provably all there and all valid (constraints.Repairs.aggregate)."""
        parent, children = self.contract.tables[c.table], self.contract.tables[c.other_table]
        sequence = c.complete_when.get("sequence")
        keys = self.frames[c.table].where(F.col(parent.sole_key).isNotNull())
        keys = keys.select(F.col(parent.sole_key).alias("_known")).distinct()
        line = F.col(sequence) if sequence else F.lit(None).cast("long")
        frame = self.frames[c.other_table].where(~F.col(DUP))
        frame = frame.select(
            F.col(children.key).alias("_key"),
            F.col(c.via).alias("_ref"),
            line.alias("_line"),
            F.col(c.other_column).alias("_value"),
            LINE,
        )
        frame = frame.join(keys, F.col("_ref") == F.col("_known"), "left").drop("_ref")
        return _complete_sums(_neighbours(frame), DECIMALS.get(children.column(c.other_column).type, 0))

    # 4. Balance ------------------------------------------------------------------------------------
    def balance(self, c: m.Constraint) -> None:
        """A group missing one value gets it from the others; a group that does not sum to zero is
        quarantined where the constraint is an error."""
        spec = self.contract.tables[c.table].column(c.column)
        decimals = DECIMALS.get(spec.type, 0)
        frame = self.frames[c.table]
        value, group = F.col(c.column), F.col(c.group)
        member = _alive() & group.isNotNull()
        total = sum_money(value, decimals) if spec.type in DECIMALS else F.sum(value.cast("double"))
        groups = (
            frame.where(member)
            .groupBy(group.alias("_group"))
            .agg(
                F.count(F.lit(1)).alias("_size"),
                F.count(F.when(value.isNull(), 1)).alias("_missing"),
                total.alias("_total"),
            )
        )
        frame = frame.join(groups, group == F.col("_group"), "left")
        size, missing = F.col("_size"), F.col("_missing")
        fills = _Fills()
        alone = member & (size >= 2) & (missing == 1) & value.isNull()
        fills.fill(spec, alone, -F.col("_total"), self.rule(c.table, c.column, r.NOT_NULL))
        if c.severity == "error":
            tolerance = 10.0**-decimals / 2
            off = member & (size >= 2) & (missing == 0) & (F.abs(F.col("_total")) > tolerance)
            rejected = F.when(true(off) & _alive(), F.lit(self.rule(c.table, c.column, c.id)))
            fills.values[REJECT] = F.coalesce(F.col(REJECT), rejected)
        frame = frame.withColumns(fills.values)
        self.frames[c.table] = frame.drop("_group", "_size", "_missing", "_total")
        self.changed.add(c.table)

    # 5. Sequence -----------------------------------------------------------------------------------
    def sequence(self, c: m.Constraint) -> None:
        """A value below the previous one of its group (live rows by key, nulls left out) is nulled."""
        key = self.contract.tables[c.table].key
        value = F.col(c.column)
        considered = _alive() & F.col(c.group).isNotNull() & value.isNotNull()
        before = (
            Window.partitionBy(c.group)
            .orderBy(F.col(key).asc_nulls_last(), F.col(LINE))
            .rowsBetween(Window.unboundedPreceding, -1)
        )
        previous = F.last(F.when(considered, value), ignorenulls=True).over(before)
        frame = self.frames[c.table].withColumn("_previous", previous)
        cell = Cell(value, F.col(issue(c.column)))
        cell.invalidate(considered & (value < F.col("_previous")), self.rule(c.table, c.column, c.id))
        frame = frame.withColumns({c.column: cell.value, issue(c.column): cell.issue})
        self.frames[c.table] = frame.drop("_previous")
        self.changed.add(c.table)


def _neighbours(frame: DataFrame) -> DataFrame:
    """Each child row (``_key``, ``_line``: its sequence number, ``_known``: its parent if that exists,
    ``_value``, ``LINE``) with what the rows around it in key order tell: the line and parent of the row
    before and after it (``_prev_*``, ``_next_*``), the last parent known at or before it (``_ffill``), and
    the first known at or after it with that row's line (``_bfill``, ``_bfill_line``; 0 for a known row whose
    line was lost).

    A window over all children would sort them in one task, which a 5M-parent job's 15M children overflow.
    The rows are windowed in ranges of keys instead, each range sorted on its own; what a range's edge rows
    need from beyond it comes from a summary of every range (one row each), windowed across ranges. Rows
    without a key form the range after all others, in line order (as pandas sorts them)."""
    line, known, key = F.col("_line"), F.col("_known"), F.col("_key")
    frame = frame.withColumn("_range", F.coalesce(F.floor(key / KEY_RANGE), F.lit(LAST_RANGE)))
    by_key = Window.partitionBy("_range").orderBy(key, F.col(LINE))
    so_far = by_key.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    # "first at or after" as "last so far" in the opposite order: a frame that runs to the end is
    # recomputed by Spark for every row, quadratic in the rows
    after = (
        Window.partitionBy("_range")
        .orderBy(key.desc(), F.col(LINE).desc())
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    order = F.struct(key, F.col(LINE))
    known_line = F.when(
        known.isNotNull(), F.struct(known.alias("known"), F.coalesce(line, F.lit(0)).alias("line"))
    )
    edge = F.struct(line.alias("line"), known.alias("known"))
    ranges = frame.groupBy("_range").agg(
        F.min_by(edge, order).alias("_head"),
        F.max_by(edge, order).alias("_tail"),
        F.max_by(known, F.when(known.isNotNull(), order)).alias("_tail_known"),
        F.min_by(known_line, F.when(known.isNotNull(), order)).alias("_head_known"),
    )
    frame = frame.select(
        "*",
        (F.row_number().over(by_key) == 1).alias("_first"),
        F.lead(F.lit(True)).over(by_key).isNull().alias("_last"),
        F.lag(line).over(by_key).alias("_prev_line_in"),
        F.lag(known).over(by_key).alias("_prev_known_in"),
        F.lead(line).over(by_key).alias("_next_line_in"),
        F.lead(known).over(by_key).alias("_next_known_in"),
        F.last(known, ignorenulls=True).over(so_far).alias("_ffill_in"),
        F.last(known_line, ignorenulls=True).over(after).alias("_bfill_in"),
    )
    across = Window.orderBy("_range")  # one row per range: a handful of rows in one task
    before = across.rowsBetween(Window.unboundedPreceding, -1)
    later = Window.orderBy(F.col("_range").desc()).rowsBetween(Window.unboundedPreceding, -1)
    ranges = ranges.select(
        "_range",
        F.lag("_tail").over(across).alias("_before"),
        F.lead("_head").over(across).alias("_after"),
        F.last("_tail_known", ignorenulls=True).over(before).alias("_ffill_before"),
        F.last("_head_known", ignorenulls=True).over(later).alias("_bfill_after"),
    )
    first, last = F.col("_first"), F.col("_last")
    bfill = F.coalesce(F.col("_bfill_in"), F.col("_bfill_after"))
    return frame.join(F.broadcast(ranges), "_range").select(
        "_key",
        "_value",
        line,
        known,
        F.when(first, F.col("_before.line")).otherwise(F.col("_prev_line_in")).alias("_prev_line"),
        F.when(first, F.col("_before.known")).otherwise(F.col("_prev_known_in")).alias("_prev_known"),
        F.when(last, F.col("_after.line")).otherwise(F.col("_next_line_in")).alias("_next_line"),
        F.when(last, F.col("_after.known")).otherwise(F.col("_next_known_in")).alias("_next_known"),
        F.coalesce(F.col("_ffill_in"), F.col("_ffill_before")).alias("_ffill"),
        bfill["known"].alias("_bfill"),
        bfill["line"].alias("_bfill_line"),
    )


def _complete_sums(frame: DataFrame, decimals: int) -> DataFrame:
    """The complete parents' sums (``_owner``, ``_sum``), from each child row and its neighbours (see
    _neighbours). A row whose parent was lost is given back to a neighbour's parent when the sequence numbers
    prove it (number n right after that parent's n-1, or 1 right before its 2); otherwise the parents around
    it count as incomplete. Without sequence numbers (``_line`` null) a lost row may belong to either."""
    line, known = F.col("_line"), F.col("_known")
    follows_previous = true((line > 1) & (F.col("_prev_line") == line - 1))
    starts_next = true((line == 1) & (F.col("_next_line") == 2))
    owner = F.coalesce(
        known,
        F.when(follows_previous, F.col("_prev_known")),
        F.when(starts_next, F.col("_next_known")),
    )
    frame = frame.select("_value", line, owner.alias("_owner"), "_ffill", "_bfill", "_bfill_line")
    lost = frame.where(F.col("_owner").isNull())
    # Keys rise with numbers inside a parent: a lost number 1 cannot continue the parent before it, and a
    # lost row cannot belong to the parent after it when that parent's next known number is its 1.
    unsure = (
        lost.where(~true(line == 1))
        .select(F.col("_ffill").alias("_unsure"))
        .union(lost.where(~true(F.col("_bfill_line") == 1)).select(F.col("_bfill").alias("_unsure")))
        .where(F.col("_unsure").isNotNull())
        .distinct()
    )
    value = F.col("_value")
    total = sum_money(value, decimals) if decimals else F.sum(value.cast("double"))
    grouped = (
        frame.where(F.col("_owner").isNotNull())
        .groupBy("_owner")
        .agg(
            total.alias("_total"),
            F.count(F.when(value.isNull(), 1)).alias("_bad"),
            F.count(F.when(line.isNull(), 1)).alias("_unnumbered"),
            F.countDistinct(line).alias("_lines"),
            F.coalesce(F.max(line), F.lit(0)).alias("_last"),
            F.count(F.lit(1)).alias("_count"),
        )
        .join(unsure, F.col("_owner") == F.col("_unsure"), "left")
    )
    complete = (
        (F.col("_bad") == 0)
        & (F.col("_lines") + F.col("_unnumbered") == F.col("_count"))
        & (F.col("_last") <= F.col("_count"))
        & F.col("_unsure").isNull()
    )
    return grouped.where(complete).select("_owner", F.col("_total").alias("_sum"))
