"""The contract's constraints as repairs of the small-batch engine: one operation per constraint kind.

Each operation repairs a value from its witnesses where they suffice, and otherwise nulls the value or
quarantines the rows with the rule broken, so a contradiction never survives as a valid value. They run in
one order, the same in both engines:
1. ``row`` constraints within a row: a missing value (the constraint's own or a term) follows from the
   others; a value that contradicts its terms is replaced by what they give.
2. ``after``: a time before the one it must follow is nulled.
3. Witnesses across tables, table by table in the contract's order and column by column (those a
   constraint judges first, then those only derived from them): an ``aggregate``
   (the sum of the referring rows, where they are provably all there) and every ``row`` constraint with a
   term in a linked row give a column candidates, in the order they are declared. A missing value takes the
   first candidate; a value a constraint judges is kept where a candidate confirms it and otherwise takes
   the first candidate.
4. ``balance``: a group missing one value gets it from the others; a group that does not sum to zero is
   quarantined (its bad leg cannot be told from the good one).
5. ``sequence``: a value below the previous one of its group is nulled.
A repaired cell is blamed on the rule its raw value broke: not_null where it was missing, the constraint's
where it contradicted it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from orchestrator.cleaning.plan import repair_plan
from orchestrator.domain import model as m
from orchestrator.domain import rules as r

if TYPE_CHECKING:
    from orchestrator.cleaning.engine import Work

DECIMALS = {m.MONEY: 2, m.DECIMAL1: 1}
INTEGRAL = frozenset({m.ID, m.FK, m.INT})


def lookup(keys: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The value of the first row holding each wanted key (NaN where no row does)."""
    first = ~pd.isna(keys) & ~pd.Series(keys).duplicated().to_numpy()
    pos = pd.Index(keys[first]).get_indexer(wanted)
    return np.where(pos >= 0, values[first][np.maximum(pos, 0)], np.nan)


def _typed(column: m.Column, values: np.ndarray) -> np.ndarray:
    """Values as the column holds them: money at cents, decimal1 at tenths, whole numbers only where whole."""
    if column.type in INTEGRAL:
        whole = np.isclose(values, np.round(values))
        return np.where(whole, np.round(values), np.nan)
    return np.round(values, DECIMALS.get(column.type, 2))


def fill(w: Work, name: str, mask: np.ndarray, values: np.ndarray, rule_id: str) -> None:
    """Set repaired values of ``name`` where ``mask`` holds and a value is given, blaming ``rule_id``."""
    col = w.cols[name]
    values = _typed(w.table.column(name), values)
    mask = mask & ~np.isnan(values)
    if not mask.any():
        return
    current = w.numpy(name)
    col.blame(mask, rule_id)
    typed = pa.array(np.where(mask, values, current), pa.float64(), from_pandas=True)
    col.values = typed.cast(col.values.type) if pa.types.is_integer(col.values.type) else typed


def _blame_fill(w: Work, name: str, mask: np.ndarray, values: np.ndarray, constraint: m.Constraint) -> None:
    missing = np.isnan(w.numpy(name))
    for rule_id, rows in ((w.rule(name, r.NOT_NULL), missing), (w.rule(name, constraint.id), ~missing)):
        fill(w, name, mask & rows, values, rule_id)


class Repairs:
    """The constraints of one job's contract, applied to its tables between the column pass and settling."""

    def __init__(self, contract: m.Contract, work: dict[str, Work]) -> None:
        self.contract = contract
        self.work = work

    def run(self) -> None:
        plan = repair_plan(self.contract, self.work)
        for c in plan.within_row:
            self.within_row(c)
        for c in plan.after:
            self.after(c)
        for table, columns in plan.witness_columns.items():
            for column in columns:
                self.witnesses(table, column, plan.aggregates, plan.linked)
        for c in plan.balance:
            self.balance(c)
        for c in plan.sequence:
            self.sequence(c)

    # Values of a constraint's rows ----------------------------------------------------------------
    def linked(self, table: str, other: str, column: str) -> np.ndarray:
        """Per row of ``table``, ``column`` of the one row of ``other`` it is linked to (NaN where none):
        the parent its foreign key names, or the first live row referring to it."""
        here, there = self.work[table], self.work[other]
        direction, via = self.contract.link(table, other)
        alive = there.alive
        if direction == m.PARENT:
            return lookup(there.keys(there.table.sole_key)[alive], there.numpy(column)[alive], here.keys(via))
        return lookup(there.keys(via)[alive], there.numpy(column)[alive], here.keys(here.table.sole_key))

    def values(self, table: str, term: m.Term) -> np.ndarray:
        if term.table == table:
            return self.work[table].numpy(term.column)
        return self.linked(table, term.table, term.column)

    @staticmethod
    def solve(c: m.Constraint, values: list[np.ndarray], position: int) -> np.ndarray:
        """The value of participant ``position`` that the others give (NaN where one is missing)."""
        terms = c.participants
        with np.errstate(invalid="ignore", divide="ignore"):
            if c.op == m.SUM:
                given = sum(
                    t.sign * v
                    for i, (t, v) in enumerate(zip(terms, values, strict=True))
                    if i and i != position
                )
                if position == 0:
                    return np.asarray(given, dtype=np.float64) + np.zeros(len(values[0]))
                return terms[position].sign * (values[0] - given)
            product = np.ones(len(values[0]))
            for i, v in enumerate(values[1:], start=1):
                if i != position:
                    product = product * v
            return product if position == 0 else values[0] / product

    # 1. Within a row -------------------------------------------------------------------------------
    def within_row(self, c: m.Constraint) -> None:
        w = self.work[c.table]
        values = [w.numpy(t.column) for t in c.participants]
        known = [~np.isnan(v) for v in values]
        for position, term in enumerate(c.participants):
            others = np.logical_and.reduce([k for i, k in enumerate(known) if i != position])
            given = self.solve(c, values, position)
            if position == 0:
                wrong = ~np.isclose(values[0], _typed(w.table.column(c.column), given)) & known[0]
                _blame_fill(w, term.column, others & (~known[0] | wrong), given, c)
            else:
                fill(w, term.column, others & ~known[position], given, w.rule(term.column, r.NOT_NULL))

    # 2. After --------------------------------------------------------------------------------------
    def after(self, c: m.Constraint) -> None:
        w = self.work[c.table]
        parent = self.work[c.other_table]
        # every row of the parent by line (its first holds the key), as the quality check reads it
        earliest = lookup(parent.keys(parent.table.sole_key), parent.numpy(c.other_column), w.keys(c.via))
        value = w.numpy(c.column)
        early = ~np.isnan(earliest) & ~np.isnan(value) & (value < earliest)
        w.cols[c.column].invalidate(early, w.rule(c.column, c.id))

    # 3. Witnesses across tables --------------------------------------------------------------------
    def witnesses(
        self, table: str, column: str, aggregates: tuple[m.Constraint, ...], linked: tuple[m.Constraint, ...]
    ) -> None:
        candidates, judged = [], None
        for c in aggregates:
            if (c.table, c.column) == (table, column):
                candidates.append(self.aggregate(c))
                judged = judged or c
        for c in linked:
            for position, term in enumerate(c.participants):
                if (term.table, term.column) == (table, column):
                    values = [self.values(table, t) for t in c.participants]
                    candidates.append(self.solve(c, values, position))
                    if position == 0:
                        judged = judged or c
        if not candidates:
            return
        w = self.work[table]
        spec = w.table.column(column)
        candidates = [_typed(spec, values) for values in candidates]
        raw = w.numpy(column)
        first = np.full(w.n, np.nan)
        for values in candidates:
            first = np.where(np.isnan(first), values, first)
        missing = np.isnan(raw)
        fill(w, column, missing, first, w.rule(column, r.NOT_NULL))
        if judged is not None:
            confirmed = np.logical_or.reduce([np.isclose(raw, values) for values in candidates])
            fill(w, column, ~missing & ~confirmed, first, w.rule(column, judged.id))

    def aggregate(self, c: m.Constraint) -> np.ndarray:
        """Per row of the constraint's table, the sum of ``other`` over the rows referring to it, where those
        are provably all there and all valid (NaN elsewhere).

        Referring rows are issued in the order of their parents, so the rows of one parent lie together in
        key order. A row whose reference was lost is given back to a neighbour's parent when the
        ``complete_when`` sequence numbers prove it (number n right after that parent's n-1, or 1 right before
        its 2); otherwise the parents around it count as incomplete, so no sum is taken from a partial set."""
        parent, children = self.work[c.table], self.work[c.other_table]
        parent_keys = parent.keys(parent.table.sole_key)
        sequence = c.complete_when.get("sequence")
        keep = ~children.duplicate
        frame = pd.DataFrame(
            {
                "key": children.numpy(children.table.key)[keep],
                "ref": children.numpy(c.via)[keep],
                "line": children.numpy(sequence)[keep] if sequence else np.full(int(keep.sum()), np.nan),
                "value": children.numpy(c.other_column)[keep],
            }
        ).sort_values("key", ignore_index=True)
        known = frame["ref"].where(frame["ref"].isin(parent_keys))
        line = frame["line"]
        owner = known
        if sequence:
            follows_previous = (line > 1) & (line.shift(1) == line - 1)
            starts_next = (line == 1) & (line.shift(-1) == 2)
            owner = known.fillna(known.shift(1).where(follows_previous))
            owner = owner.fillna(known.shift(-1).where(starts_next))
        lost = owner.isna()
        # Numbers rise with keys inside a parent: a lost number 1 cannot continue the parent before it, and a
        # lost row cannot belong to the parent after it when that parent's next known number is its 1 (0
        # stands for a known row whose number was lost: it proves nothing). Without numbers, a lost row
        # may belong to either neighbour.
        next_known_line = line.fillna(0).where(known.notna()).bfill()
        unsure = set(known.ffill()[lost & (line != 1)].dropna()) | set(
            known.bfill()[lost & (next_known_line != 1)].dropna()
        )
        frame["owner"] = owner
        frame["bad"] = frame["value"].isna()
        frame["unnumbered"] = line.isna() if sequence else False
        grouped = (
            frame[~lost]
            .groupby("owner")
            .agg(
                total=("value", "sum"),
                bad=("bad", "sum"),
                unnumbered=("unnumbered", "sum"),
                lines=("line", "nunique"),
                last=("line", "max"),
                count=("value", "size"),
            )
        )
        complete = (grouped["bad"] == 0) & ~grouped.index.isin(list(unsure))
        if sequence:
            # every number present once (none repeats) and none beyond the count (none is missing, as the
            # quality check judges it: n rows numbered up to n)
            complete &= grouped["lines"] + grouped["unnumbered"] == grouped["count"]
            complete &= grouped["last"].fillna(0) <= grouped["count"]
        sums = grouped["total"].where(complete)
        return lookup(sums.index.to_numpy(), sums.to_numpy(), parent_keys)

    # 4. Balance ------------------------------------------------------------------------------------
    def balance(self, c: m.Constraint) -> None:
        w = self.work[c.table]
        alive = w.alive
        frame = pd.DataFrame({"group": w.keys(c.group), "value": w.numpy(c.column)})[alive]
        frame = frame[frame["group"].notna()]
        groups = frame.groupby("group")["value"]
        size, missing, total = (
            groups.transform("size"),
            groups.transform(lambda v: v.isna().sum()),
            groups.transform("sum"),
        )
        rows = frame.index.to_numpy()
        alone = (size >= 2) & (missing == 1) & frame["value"].isna()
        mask = np.zeros(w.n, dtype=bool)
        mask[rows[alone.to_numpy()]] = True
        values = np.zeros(w.n)
        values[rows] = -total.to_numpy()
        fill(w, c.column, mask, values, w.rule(c.column, r.NOT_NULL))
        tolerance = 10.0 ** -DECIMALS.get(w.table.column(c.column).type, 0) / 2
        off = (size >= 2) & (missing == 0) & (total.abs() > tolerance)
        rejected = np.zeros(w.n, dtype=bool)
        rejected[rows[off.to_numpy()]] = True
        if c.severity == "error":
            w.reject(rejected, w.rule(c.column, c.id))

    # 5. Sequence -----------------------------------------------------------------------------------
    def sequence(self, c: m.Constraint) -> None:
        w = self.work[c.table]
        value = w.numpy(c.column)
        frame = pd.DataFrame({"key": w.numpy(w.table.key), "group": w.keys(c.group), "value": value})
        frame = frame[w.alive & frame["group"].notna().to_numpy() & ~np.isnan(value)].sort_values("key")
        previous = frame.groupby("group")["value"].shift(1)
        falls = frame.index.to_numpy()[(frame["value"] < previous).to_numpy()]
        mask = np.zeros(w.n, dtype=bool)
        mask[falls] = True
        w.cols[c.column].invalidate(mask, w.rule(c.column, c.id))
