"""Pass 2 of the Spark engine: repairs across columns and tables, the shop's for now (line totals, order
totals from three witnesses, payments, refunds, orders placed before signup), as the small path makes them.

``repair`` receives every table's frame after pass 1 (see frames: per column the typed value and its
``issue(name)``, ``raw(name)`` text where kept, ``LINE``, ``DUP`` and ``REJECT``, null for every row yet) and
returns them with the same columns, values filled or nulled and their issues blamed.
"""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

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
from orchestrator.domain.model import Contract

ITEM_RANGE = 1 << 18  # item ids per window range (see _neighbours)


def repair(frames: dict[str, DataFrame], contract: Contract, staging: Path) -> dict[str, DataFrame]:
    """Every repair across columns and tables of a job following ``contract``, parents first (the shop's
    repairs, for the shop's contract only). A table repaired from another one is staged under ``staging``:
    settling it, publishing both of its outputs and the repairs after it read the repair once."""
    if contract.generator != "shop":
        return frames
    frames = dict(frames)
    if "order_items" in frames:
        frames["order_items"] = repair_items(frames["order_items"])
    if "orders" in frames:
        frames["orders"] = repair_orders(frames)
        if frames.keys() & {"customers", "payments", "order_items"}:
            frames["orders"] = staged(frames["orders"], staging / "repaired" / "orders")
    if "payments" in frames and "orders" in frames:
        repaired = repair_payments(frames["payments"], frames["orders"])
        frames["payments"] = staged(repaired, staging / "repaired" / "payments")
    if "returns" in frames and "order_items" in frames:
        repaired = repair_returns(frames["returns"], frames["order_items"])
        frames["returns"] = staged(repaired, staging / "repaired" / "returns")
    return frames


def _close(a: Column, b: Column) -> Column:
    """numpy's isclose (rtol 1e-5, atol 1e-8); False where either side is null."""
    return true(F.abs(a - b) <= 1e-8 + 1e-5 * F.abs(b))


def _fill(
    values: dict[str, Column], name: str, mask: Column, new: Column, rule_id: str, decimals: int | None = 2
) -> None:
    """Set repaired values where ``mask`` holds (and there is a value), blaming ``rule_id``."""
    mask = true(mask) & new.isNotNull()
    blamed = F.col(issue(name))
    values[issue(name)] = F.when(mask & blamed.isNull(), F.lit(rule_id)).otherwise(blamed)
    typed = round_half_even(new, decimals) if decimals is not None else new.cast("long")
    values[name] = F.when(mask, typed).otherwise(F.col(name))


def _first_by_line(frame: DataFrame, key: str, value: Column, alias: str) -> DataFrame:
    """Per key, the value of the first row (by raw line) holding it."""
    picked = F.min(F.struct(F.col(LINE), value.alias("_v")))["_v"]
    return (
        frame.where(F.col(key).isNotNull())
        .groupBy(F.col(key).alias(f"_{alias}_key"))
        .agg(picked.alias(alias))
    )


def repair_items(items: DataFrame) -> DataFrame:
    """quantity x unit_price = line_total: any one of the three follows from the other two."""
    q, p, t = (F.col(c).cast("double") for c in ("quantity", "unit_price", "line_total"))
    rule_id = "order_items.line_total.line_total"
    new: dict[str, Column] = {}
    _fill(new, "line_total", t.isNull() & q.isNotNull() & p.isNotNull(), q * p, rule_id)
    _fill(new, "unit_price", p.isNull() & t.isNotNull() & q.isNotNull(), t / q, rule_id)
    quantity = t / p
    whole = _close(quantity, F.rint(quantity))
    _fill(
        new, "quantity", q.isNull() & t.isNotNull() & p.isNotNull() & whole, F.rint(quantity), rule_id, None
    )
    return items.withColumns(new)


def _complete_item_sums(items: DataFrame, orders: DataFrame) -> DataFrame:
    """Sum of line totals per order, only for orders whose item lines are all present and valid.

    Item ids are issued in order sequence. An item whose order reference was lost is given back to the
    order of its neighbour when the line numbers prove it (line n right after that order's line n-1, or
    line 1 right before its line 2). Otherwise the orders around it count as incomplete.
    """
    ids = orders.where(F.col("order_id").isNotNull()).select(F.col("order_id").alias("_known")).distinct()
    frame = items.where(~F.col(DUP)).select(
        "item_id", "order_id", F.col("line_no").alias("_line"), "line_total"
    )
    frame = frame.join(ids, F.col("order_id") == F.col("_known"), "left")
    return _item_sums(_neighbours(frame))


def _neighbours(frame: DataFrame) -> DataFrame:
    """Each item row (``_line``, ``_known``: its order if that order exists) with what the rows around it
    in item-id order tell: the line and order of the row before and after it (``_prev_*``, ``_next_*``),
    the last order known at or before it (``_ffill``), and the first known at or after it with that row's
    line (``_bfill``, ``_bfill_line``; 0 for a known row whose line was lost).

    A window over all items would sort them in one task, which a 5M-order job's 15M items overflow. The
    rows are windowed in ranges of item ids instead, each range sorted on its own; what a range's edge
    rows need from beyond it comes from a summary of every range (one row each), windowed across ranges.
    Nulls sort first in item-id order, so rows without an id form the range before all others."""
    line, known, item = F.col("_line"), F.col("_known"), F.col("item_id")
    frame = frame.withColumn("_range", F.coalesce(F.floor(item / ITEM_RANGE), F.lit(-1)))
    by_id = Window.partitionBy("_range").orderBy("item_id")
    so_far = by_id.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    # "first at or after" as "last so far" in the opposite order: a frame that runs to the end is
    # recomputed by Spark for every row, quadratic in the rows
    after = (
        Window.partitionBy("_range")
        .orderBy(item.desc())
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    known_line = F.when(
        known.isNotNull(), F.struct(known.alias("known"), F.coalesce(line, F.lit(0)).alias("line"))
    )
    edge = F.struct(line.alias("line"), known.alias("known"))
    ranges = frame.groupBy("_range").agg(
        F.min_by(edge, item).alias("_head"),
        F.max_by(edge, item).alias("_tail"),
        F.max_by(known, F.when(known.isNotNull(), item)).alias("_tail_known"),
        F.min_by(known_line, F.when(known.isNotNull(), item)).alias("_head_known"),
    )
    frame = frame.select(
        "*",
        (F.row_number().over(by_id) == 1).alias("_first"),
        F.lead(F.lit(True)).over(by_id).isNull().alias("_last"),
        F.lag(line).over(by_id).alias("_prev_line_in"),
        F.lag(known).over(by_id).alias("_prev_known_in"),
        F.lead(line).over(by_id).alias("_next_line_in"),
        F.lead(known).over(by_id).alias("_next_known_in"),
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
        "item_id",
        "line_total",
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


def _item_sums(frame: DataFrame) -> DataFrame:
    """The complete orders' item sums, from each item row and its neighbours (see _neighbours)."""
    line, known = F.col("_line"), F.col("_known")
    follows_previous = true((line > 1) & (F.col("_prev_line") == line - 1))
    starts_next = true((line == 1) & (F.col("_next_line") == 2))
    owner = F.coalesce(
        known,
        F.when(follows_previous, F.col("_prev_known")),
        F.when(starts_next, F.col("_next_known")),
    )
    frame = frame.select("line_total", line, owner.alias("_owner"), "_ffill", "_bfill", "_bfill_line")
    lost = frame.where(F.col("_owner").isNull())
    # Ids rise with line numbers inside an order: a lost line 1 cannot continue the order before it, and a
    # lost item cannot belong to the order after it when that order's next known line is its line 1.
    unsure = (
        lost.where(~true(line == 1))
        .select(F.col("_ffill").alias("_unsure"))
        .union(lost.where(~true(F.col("_bfill_line") == 1)).select(F.col("_bfill").alias("_unsure")))
        .where(F.col("_unsure").isNotNull())
        .distinct()
    )
    grouped = (
        frame.where(F.col("_owner").isNotNull())
        .groupBy("_owner")
        .agg(
            sum_money("line_total").alias("_total"),
            F.count(F.when(F.col("line_total").isNull(), 1)).alias("_bad"),
            F.count(F.when(line.isNull(), 1)).alias("_unnumbered"),
            F.countDistinct(line).alias("_lines"),
            F.count(F.lit(1)).alias("_count"),
        )
        .join(unsure, F.col("_owner") == F.col("_unsure"), "left")
    )
    complete = (
        (F.col("_bad") == 0)
        & (F.col("_lines") + F.col("_unnumbered") == F.col("_count"))
        & F.col("_unsure").isNull()
    )
    return grouped.where(complete).select(
        F.col("_owner").alias("_items_key"), round_half_even(F.col("_total"), 2).alias("_item_sum")
    )


def repair_orders(frames: dict[str, DataFrame]) -> DataFrame:
    """Orders placed before signup lose their time; the total follows its witnesses; a lost discount
    follows from the total and the payment."""
    orders = frames["orders"]
    if "customers" in frames:
        customers = frames["customers"].where(~F.col(DUP))
        orders = orders.join(
            _first_by_line(customers, "customer_id", F.col("signup_at"), "_signup"),
            F.col("customer_id") == F.col("__signup_key"),
            "left",
        )
        cell = Cell(F.col("order_ts"), F.col(issue("order_ts")))
        cell.invalidate(F.col("order_ts") < F.col("_signup"), "orders.order_ts.order_after_signup")
        orders = orders.withColumns({"order_ts": cell.value, issue("order_ts"): cell.issue})
        orders = orders.drop("_signup", "__signup_key")
    paid = F.lit(None).cast("double")
    if "payments" in frames:
        payments = frames["payments"].where(~F.col(DUP) & F.col(REJECT).isNull())
        orders = orders.join(
            _first_by_line(payments, "order_id", F.col("amount"), "_paid"),
            F.col("order_id") == F.col("__paid_key"),
            "left",
        )
        paid = F.col("_paid")
    item_sum = F.lit(None).cast("double")
    if "order_items" in frames:
        sums = _complete_item_sums(frames["order_items"], frames["orders"])
        orders = orders.join(sums, F.col("order_id") == F.col("_items_key"), "left")
        item_sum = F.col("_item_sum")

    # Three witnesses of an order's total: the raw value, the payment (amount + discount) and the sum of
    # its items when they are all there. Two that agree win; then the items, the payment, the raw value.
    total, discount = F.col("total_amount"), F.col("discount_amount")
    by_payment = round_half_even(paid + discount, 2)
    confirmed = total.isNotNull() & (_close(total, by_payment) | _close(total, item_sum))
    choice = F.when(confirmed, total).otherwise(F.coalesce(item_sum, by_payment, total))
    new: dict[str, Column] = {}
    changed = choice.isNotNull() & ~_close(choice, total)
    _fill(new, "total_amount", changed, choice, "orders.total_amount.total_matches_items")
    orders = orders.withColumns(new)
    new = {}
    _fill(
        new,
        "discount_amount",
        discount.isNull(),
        round_half_even(F.col("total_amount") - paid, 2),
        "orders.discount_amount.not_null",
    )
    return orders.withColumns(new).drop("_paid", "__paid_key", "_item_sum", "_items_key")


def repair_payments(payments: DataFrame, orders: DataFrame) -> DataFrame:
    """A lost payment amount is its order's total less the discount."""
    due = F.col("total_amount") - F.col("discount_amount")
    expected = _first_by_line(orders.where(~F.col(DUP) & F.col(REJECT).isNull()), "order_id", due, "_due")
    joined = payments.join(expected, F.col("order_id") == F.col("__due_key"), "left")
    new: dict[str, Column] = {}
    _fill(new, "amount", F.col("amount").isNull(), F.col("_due"), "payments.amount.not_null")
    return joined.withColumns(new).drop("_due", "__due_key")


def repair_returns(returns: DataFrame, items: DataFrame) -> DataFrame:
    """A lost refund is the returned item's line total."""
    line_total = _first_by_line(items.where(~F.col(DUP)), "item_id", F.col("line_total"), "_line_total")
    joined = returns.join(line_total, F.col("order_item_id") == F.col("__line_total_key"), "left")
    new: dict[str, Column] = {}
    _fill(
        new,
        "refund_amount",
        F.col("refund_amount").isNull(),
        F.col("_line_total"),
        "returns.refund_amount.not_null",
    )
    return joined.withColumns(new).drop("_line_total", "__line_total_key")
