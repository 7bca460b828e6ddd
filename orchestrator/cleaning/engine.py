"""The small-batch engine: raw tables in, silver, quarantine and counts out (pandas frames on Arrow).

Any contract's tables, in four passes, in the order the rules need them:
1. every column of every table is normalised and validated on its own (columns.py);
2. rows repeating a primary key are marked, and the contract's constraints repair values from their
   witnesses, null them or quarantine their rows (constraints.py);
3. rows missing a required value are quarantined, and references are checked parent-first, so a
   quarantined parent takes its children with it;
4. survivors are de-duplicated on their business key.
Nothing is dropped silently: rows in = rows out + quarantined + duplicates removed, per table.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from orchestrator.cleaning.columns import Cleaned, clean_column
from orchestrator.cleaning.constraints import Repairs
from orchestrator.domain import model as m
from orchestrator.domain import rules as r

NUMERIC_KINDS = frozenset({m.ID, m.FK, m.TIMESTAMP, *m.NUMERIC_TYPES})
LINE = "_raw_line"
ISSUES = "_issues"
RULE = "_rule"


@dataclass
class TableResult:
    """One table after cleaning."""

    silver: pd.DataFrame  # typed columns of the schema, plus the raw line and the rules repaired or nulled
    quarantine: pd.DataFrame  # raw text of rejected rows, plus the raw line and the rejecting rule
    rows_in: int
    duplicates_removed: int
    issues: dict[str, int] = field(default_factory=dict)  # cells per rule that were repaired or nulled

    @property
    def rows_out(self) -> int:
        return len(self.silver)

    @property
    def quarantined(self) -> int:
        return len(self.quarantine)


class Work:
    """A table between passes: cleaned columns, and per row whether it is kept, a duplicate or rejected."""

    def __init__(self, table: m.Table, raw: pa.Table, cols: dict[str, Cleaned]) -> None:
        self.table = table
        self.raw = raw
        self.n = raw.num_rows
        self.cols = cols
        self.duplicate = np.zeros(self.n, dtype=bool)
        self.reject_rule = np.full(self.n, None, dtype=object)
        self.rejected = np.zeros(self.n, dtype=bool)

    def values(self, name: str) -> pa.Array:
        return self.cols[name].values

    def numpy(self, name: str) -> np.ndarray:
        """Values as floats with NaN for null (keys, amounts, and timestamps as epoch seconds)."""
        values = self.values(name)
        if pa.types.is_timestamp(values.type):
            values = values.cast(pa.int64())
        return values.to_numpy(zero_copy_only=False).astype(np.float64)

    def keys(self, name: str) -> np.ndarray:
        """Values to match rows by: numbers as ``numpy`` gives them, text as objects with None for null."""
        if self.table.column(name).type in NUMERIC_KINDS:
            return self.numpy(name)
        return self.values(name).to_numpy(zero_copy_only=False).astype(object)

    def key_frame(self, names: tuple[str, ...]) -> pd.DataFrame:
        return pd.DataFrame({name: self.keys(name) for name in names})

    @property
    def alive(self) -> np.ndarray:
        return ~self.duplicate & ~self.rejected

    def reject(self, mask: np.ndarray, rule_id: str | np.ndarray) -> None:
        """Quarantine rows in ``mask`` (the first rejecting rule is the one reported)."""
        hit = mask & self.alive
        self.reject_rule[hit] = rule_id[hit] if isinstance(rule_id, np.ndarray) else rule_id
        self.rejected |= hit

    def rule(self, column: str, check: str) -> str:
        return f"{self.table.name}.{column}.{check}"


def _mark_key_duplicates(w: Work) -> None:
    """Later rows repeating a primary key are duplicates (the first one, by raw line, is kept)."""
    w.duplicate = _repeats(w.key_frame(w.table.primary_key), np.ones(w.n, dtype=bool))


def _repeats(keys: pd.DataFrame, among: np.ndarray) -> np.ndarray:
    """Rows (of those in ``among`` with a complete key) whose key an earlier one of them holds."""
    among = among & keys.notna().all(axis=1).to_numpy()
    repeat = np.zeros(len(keys), dtype=bool)
    chosen = keys[among]
    if len(keys.columns) == 1:
        repeat[among] = chosen.iloc[:, 0].duplicated(keep="first").to_numpy()
    else:
        repeat[among] = chosen.duplicated(keep="first").to_numpy()
    return repeat


def _reject_incomplete(w: Work) -> None:
    """Quarantine rows without a valid value in a required column, naming the rule the raw value broke."""
    for column in w.table.columns:
        if column.is_required:
            rows = np.flatnonzero(pc.is_null(w.values(column.name)).to_numpy(zero_copy_only=False) & w.alive)
            if len(rows):
                issues = w.cols[column.name].issues(rows, default=w.rule(column.name, r.NOT_NULL))
                mask = np.zeros(w.n, dtype=bool)
                mask[rows] = True
                rule_ids = np.full(w.n, None, dtype=object)
                rule_ids[rows] = issues
                w.reject(mask, rule_ids)


def _check_references(w: Work, settled: dict[str, Work]) -> None:
    """Check references against the parents' surviving rows (parents are settled first)."""
    for column in w.table.columns:
        if column.references not in settled:
            continue
        parent = settled[column.references]
        parent_keys = parent.keys(parent.table.sole_key)[parent.alive]
        values = w.keys(column.name)
        orphan = ~pd.isna(values) & (pd.Index(parent_keys).get_indexer(values) < 0)
        rule_id = w.rule(column.name, r.FOREIGN_KEY)
        if column.nullable:
            w.cols[column.name].invalidate(orphan, rule_id)
        else:
            w.reject(orphan, rule_id)


def _mark_business_duplicates(w: Work) -> None:
    key = tuple(w.table.business_key)
    if key == w.table.primary_key:
        return
    w.duplicate |= _repeats(w.key_frame(key), w.alive)


def _join_issues(cols: list[Cleaned], rows: np.ndarray) -> pa.Array:
    """The rules each of ``rows`` broke, ';'-separated in column order (null when none).

    Rows are grouped by their combination of rule codes (a mixed-radix number: a handful of columns with
    a few rules each), and each distinct combination is written out once.
    """
    combo = np.zeros(len(rows), dtype=np.int64)
    for col in cols:
        combo = combo * (len(col.rules) + 1) + col.codes[rows]
    labels, distinct = pd.factorize(combo)
    texts = []
    for value in distinct.tolist():
        parts = []
        for col in reversed(cols):
            value, code = divmod(value, len(col.rules) + 1)
            if code:
                parts.append(col.rules[code - 1])
        texts.append(";".join(reversed(parts)) or None)
    return pa.array(texts, pa.string()).take(pa.array(labels))


def _result(w: Work) -> TableResult:
    """Silver (rows kept) and quarantine (rows rejected), filtered in Arrow before pandas sees them."""
    kept = np.flatnonzero(w.alive)
    lines = pa.array(np.arange(w.n))
    silver = pa.table({name: col.values for name, col in w.cols.items()} | {LINE: lines}).take(pa.array(kept))
    silver = silver.append_column(ISSUES, _join_issues(list(w.cols.values()), kept))
    rejected = pa.array(w.rejected)
    quarantine = (
        w.raw.append_column(LINE, lines)
        .append_column(RULE, pa.array(w.reject_rule, pa.string()))
        .filter(rejected)
    )
    counts = {name: int(np.count_nonzero(col.codes[kept])) for name, col in w.cols.items()}
    return TableResult(
        silver=silver.to_pandas(types_mapper=pd.ArrowDtype),
        quarantine=quarantine.to_pandas(types_mapper=pd.ArrowDtype),
        rows_in=w.n,
        duplicates_removed=int(w.duplicate.sum()),
        issues={f"{w.table.name}.{c}": v for c, v in counts.items() if v},
    )


def clean(contract: m.Contract, raw: dict[str, pa.Table], as_of: int) -> dict[str, TableResult]:
    """Clean the raw tables of one job following its contract (each a table of strings in raw-line order).

    The column cleaning of every table, and at the end the building of every table's results, run on two
    threads (Arrow's kernels release the GIL); the passes between them are whole-table numpy work.
    """
    tables = [contract.tables[name] for name in contract.parent_first if name in raw]
    with ThreadPoolExecutor(max_workers=2) as pool:
        # Columns of the largest tables first, so the two threads finish together.
        columns = [(t, c) for t in sorted(tables, key=lambda t: -raw[t.name].num_rows) for c in t.columns]
        cleaned = {
            (t.name, c.name): pool.submit(
                clean_column, t, c, raw[t.name].column(c.name).combine_chunks(), as_of
            )
            for t, c in columns
        }
        # Parents before children, so references meet cleaned parents.
        work = {
            t.name: Work(t, raw[t.name], {c.name: cleaned[t.name, c.name].result() for c in t.columns})
            for t in tables
        }
        for w in work.values():
            _mark_key_duplicates(w)
        Repairs(contract, work).run()
        settled: dict[str, Work] = {}
        for name, w in work.items():
            _reject_incomplete(w)
            _check_references(w, settled)
            _mark_business_duplicates(w)
            settled[name] = w
        return dict(zip(work, pool.map(_result, work.values()), strict=True))
