"""The small-batch engine: raw tables in, silver, quarantine and counts out (pandas frames on Arrow).

Four passes, in the order the rules need them:
1. every column of every table is normalised and validated on its own (columns.py);
2. cross-column and cross-table repairs: line totals, order totals from complete items (or the payment),
   payment amounts and discounts, refunds, orders placed before signup;
3. rows are de-duplicated on their primary key, rows missing a required value are quarantined, and
   references are checked parent-first, so a quarantined parent takes its children with it;
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
from orchestrator.domain import rules as r
from orchestrator.domain import shop as s

# Parents before children (the schema lists tables that way), so references meet cleaned parents.
ORDER = s.TABLE_NAMES
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


class _Work:
    """A table between passes: cleaned columns, and per row whether it is kept, a duplicate or rejected."""

    def __init__(self, table: s.Table, raw: pa.Table, cols: dict[str, Cleaned]) -> None:
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


def _lookup(keys: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The value of the first row holding each wanted key (NaN where no row does)."""
    first = ~np.isnan(keys) & ~pd.Series(keys).duplicated().to_numpy()
    pos = pd.Index(keys[first]).get_indexer(wanted)
    return np.where(pos >= 0, values[first][np.maximum(pos, 0)], np.nan)


def _fill(col: Cleaned, mask: np.ndarray, values: np.ndarray, rule_id: str, decimals: int | None = 2) -> None:
    """Set repaired values where ``mask`` holds, blaming ``rule_id``."""
    mask = mask & ~np.isnan(values)
    if not mask.any():
        return
    current = col.values.to_numpy(zero_copy_only=False).astype(np.float64)
    merged = np.where(mask, np.round(values, decimals) if decimals is not None else values, current)
    col.blame(mask, rule_id)
    typed = pa.array(merged, pa.float64(), from_pandas=True)
    col.values = typed.cast(col.values.type) if pa.types.is_integer(col.values.type) else typed


def _repair_items(items: _Work) -> None:
    """quantity x unit_price = line_total: any one of the three follows from the other two."""
    q, p, t = items.numpy("quantity"), items.numpy("unit_price"), items.numpy("line_total")
    rule_id = items.rule("line_total", r.LINE_TOTAL)
    _fill(items.cols["line_total"], np.isnan(t) & ~np.isnan(q) & ~np.isnan(p), q * p, rule_id)
    with np.errstate(invalid="ignore", divide="ignore"):
        price = t / q
        quantity = t / p
    _fill(items.cols["unit_price"], np.isnan(p) & ~np.isnan(t) & ~np.isnan(q), price, rule_id)
    whole = np.isclose(quantity, np.round(quantity))
    _fill(
        items.cols["quantity"],
        np.isnan(q) & ~np.isnan(t) & ~np.isnan(p) & whole,
        np.round(quantity),
        rule_id,
        None,
    )


def _repair_orders(work: dict[str, _Work]) -> None:
    orders = work["orders"]
    order_id = orders.numpy("order_id")
    if "customers" in work:
        customers = work["customers"]
        signup = _lookup(
            customers.numpy("customer_id"), customers.numpy("signup_at"), orders.numpy("customer_id")
        )
        placed = orders.numpy("order_ts")
        early = ~np.isnan(signup) & ~np.isnan(placed) & (placed < signup)
        orders.cols["order_ts"].invalidate(early, orders.rule("order_ts", r.ORDER_AFTER_SIGNUP))

    total = orders.numpy("total_amount")
    discount = orders.numpy("discount_amount")
    paid = np.full(orders.n, np.nan)
    if "payments" in work:
        payments = work["payments"]
        alive = payments.alive
        paid = _lookup(payments.numpy("order_id")[alive], payments.numpy("amount")[alive], order_id)
    item_sum = np.full(orders.n, np.nan)
    if "order_items" in work:
        item_sum = _complete_item_sums(work["order_items"], order_id)

    # Three witnesses of an order's total: the raw value, the payment (amount + discount) and the sum of
    # its items when they are all there. Two that agree win; then the items, the payment, the raw value.
    by_payment = np.round(paid + discount, 2)
    raw_confirmed = ~np.isnan(total) & (np.isclose(total, by_payment) | np.isclose(total, item_sum))
    choice = np.where(raw_confirmed, total, _first_valid(item_sum, by_payment, total))
    changed = ~np.isnan(choice) & ~np.isclose(choice, total)
    _fill(orders.cols["total_amount"], changed, choice, orders.rule("total_amount", r.TOTAL_MATCHES_ITEMS))
    # A discount lost in raw follows from the (repaired) total and the payment; otherwise it stays null.
    discount_from_payment = np.round(orders.numpy("total_amount") - paid, 2)
    _fill(
        orders.cols["discount_amount"],
        np.isnan(discount),
        discount_from_payment,
        orders.rule("discount_amount", r.NOT_NULL),
    )


def _first_valid(*candidates: np.ndarray) -> np.ndarray:
    """Per row, the first candidate that is not NaN."""
    out = np.full_like(candidates[0], np.nan)
    for candidate in candidates:
        out = np.where(np.isnan(out), candidate, out)
    return out


def _complete_item_sums(items: _Work, order_id: np.ndarray) -> np.ndarray:
    """Sum of line totals per order, only for orders whose item lines are all present and valid.

    Item ids are issued in order sequence. An item whose order reference was lost is given back to the
    order of its neighbour when the line numbers prove it (line n right after that order's line n-1, or
    line 1 right before its line 2). Otherwise the orders around it count as incomplete, so their totals
    are never recomputed from a partial set of items.
    """
    keep = ~items.duplicate
    frame = pd.DataFrame(
        {
            "item_id": items.numpy("item_id")[keep],
            "order_id": items.numpy("order_id")[keep],
            "line_no": items.numpy("line_no")[keep],
            "line_total": items.numpy("line_total")[keep],
        }
    ).sort_values("item_id", ignore_index=True)
    known = frame["order_id"].where(frame["order_id"].isin(order_id))
    line = frame["line_no"]
    follows_previous = (line > 1) & (line.shift(1) == line - 1)
    starts_next = (line == 1) & (line.shift(-1) == 2)
    frame["owner"] = known.fillna(known.shift(1).where(follows_previous)).fillna(
        known.shift(-1).where(starts_next)
    )
    lost = frame["owner"].isna()
    # Ids rise with line numbers inside an order: a lost line 1 cannot continue the order before it, and
    # a lost item cannot belong to the order after it when that order's next known line is its line 1
    # (0 stands for a known item whose line number was lost: it proves nothing).
    next_known_line = line.fillna(0).where(known.notna()).bfill()
    unsure = set(known.ffill()[lost & (line != 1)].dropna()) | set(
        known.bfill()[lost & (next_known_line != 1)].dropna()
    )
    frame["bad"] = frame["line_total"].isna()
    frame["unnumbered"] = line.isna()
    grouped = (
        frame[~lost]
        .groupby("owner")
        .agg(
            total=("line_total", "sum"),
            bad=("bad", "sum"),
            unnumbered=("unnumbered", "sum"),
            lines=("line_no", "nunique"),
            count=("line_no", "size"),
        )
    )
    # Every raw item row is somewhere: one not attributed is lost (its neighbours are unsure), so an order
    # is complete when its lines are all valid and no line number repeats.
    complete = (
        (grouped["bad"] == 0)
        & (grouped["lines"] + grouped["unnumbered"] == grouped["count"])
        & ~grouped.index.isin(list(unsure))
    )
    sums = grouped["total"].where(complete).round(2)
    return _lookup(sums.index.to_numpy(), sums.to_numpy(), order_id)


def _repair_payments(work: dict[str, _Work]) -> None:
    payments, orders = work["payments"], work["orders"]
    due = orders.numpy("total_amount") - orders.numpy("discount_amount")
    expected = _lookup(orders.numpy("order_id")[orders.alive], due[orders.alive], payments.numpy("order_id"))
    amount = payments.numpy("amount")
    _fill(payments.cols["amount"], np.isnan(amount), expected, payments.rule("amount", r.NOT_NULL))


def _repair_returns(work: dict[str, _Work]) -> None:
    returns, items = work["returns"], work["order_items"]
    line_total = _lookup(
        items.numpy("item_id")[~items.duplicate],
        items.numpy("line_total")[~items.duplicate],
        returns.numpy("order_item_id"),
    )
    refund = returns.numpy("refund_amount")
    _fill(
        returns.cols["refund_amount"], np.isnan(refund), line_total, returns.rule("refund_amount", r.NOT_NULL)
    )


def _mark_key_duplicates(w: _Work) -> None:
    """Later rows repeating a primary key are duplicates (the first one, by raw line, is kept)."""
    key = w.numpy(w.table.key)
    w.duplicate = pd.Series(key).duplicated(keep="first").to_numpy() & ~np.isnan(key)


def _reject_incomplete(w: _Work) -> None:
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


def _check_references(w: _Work, settled: dict[str, _Work]) -> None:
    """Check references against the parents' surviving rows (parents are settled first)."""
    for column in w.table.columns:
        if column.type != s.FK or column.references not in settled:
            continue
        parent = settled[column.references]
        parent_keys = parent.numpy(parent.table.key)[parent.alive]
        values = w.numpy(column.name)
        orphan = ~np.isnan(values) & (pd.Index(parent_keys).get_indexer(values) < 0)
        rule_id = w.rule(column.name, r.FOREIGN_KEY)
        if column.nullable:
            w.cols[column.name].invalidate(orphan, rule_id)
        else:
            w.reject(orphan, rule_id)


def _mark_business_duplicates(w: _Work) -> None:
    key = list(w.table.business_key)
    if key == [w.table.key]:
        return
    frame = pd.DataFrame({c: w.values(c).to_pandas() for c in key})
    complete = frame.notna().all(axis=1).to_numpy()
    alive = w.alive & complete
    repeat = np.zeros(w.n, dtype=bool)
    repeat[alive] = frame[alive].duplicated(keep="first").to_numpy()
    w.duplicate |= repeat


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


def _result(w: _Work) -> TableResult:
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


def clean(raw: dict[str, pa.Table], as_of: int) -> dict[str, TableResult]:
    """Clean the raw tables of one job (each a table of strings in raw-line order).

    The column cleaning of every table, and at the end the building of every table's results, run on two
    threads (Arrow's kernels release the GIL); the passes between them are whole-table numpy work.
    """
    tables = [s.TABLES[name] for name in ORDER if name in raw]
    with ThreadPoolExecutor(max_workers=2) as pool:
        # Columns of the largest tables first, so the two threads finish together.
        columns = [(t, c) for t in sorted(tables, key=lambda t: -raw[t.name].num_rows) for c in t.columns]
        cleaned = {
            (t.name, c.name): pool.submit(
                clean_column, t, c, raw[t.name].column(c.name).combine_chunks(), as_of
            )
            for t, c in columns
        }
        work = {
            t.name: _Work(t, raw[t.name], {c.name: cleaned[t.name, c.name].result() for c in t.columns})
            for t in tables
        }
        for w in work.values():
            _mark_key_duplicates(w)
        if "order_items" in work:
            _repair_items(work["order_items"])
        if "orders" in work:
            _repair_orders(work)
        if "payments" in work and "orders" in work:
            _repair_payments(work)
        if "returns" in work and "order_items" in work:
            _repair_returns(work)
        settled: dict[str, _Work] = {}
        for name, w in work.items():
            _reject_incomplete(w)
            _check_references(w, settled)
            _mark_business_duplicates(w)
            settled[name] = w
        return dict(zip(work, pool.map(_result, work.values()), strict=True))
