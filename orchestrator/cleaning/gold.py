"""Gold: business aggregates over silver, each computed only when the tables it needs were cleaned.

Rows are sorted by their key and money is rounded to cents, so every engine produces identical tables.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

Silver = dict[str, pd.DataFrame]


def _sales(silver: Silver) -> pd.DataFrame:
    orders = silver["orders"]
    return orders[(orders["status"] != "cancelled").fillna(False) & orders["order_ts"].notna()]


def daily_revenue(silver: Silver) -> pd.DataFrame:
    sales = _sales(silver)
    net = sales["total_amount"] - sales["discount_amount"].fillna(0)
    frame = pd.DataFrame(
        {"day": sales["order_ts"].dt.strftime("%Y-%m-%d"), "net": net, "gross": sales["total_amount"]}
    )
    out = frame.groupby("day", as_index=False).agg(
        orders=("net", "size"), gross_revenue=("gross", "sum"), net_revenue=("net", "sum")
    )
    return _money(out, ["gross_revenue", "net_revenue"]).sort_values("day", ignore_index=True)


def revenue_by_category(silver: Silver) -> pd.DataFrame:
    items = silver["order_items"].merge(_sales(silver)[["order_id"]], on="order_id")
    items = items.merge(silver["products"][["product_id", "category"]], on="product_id")
    out = items.groupby("category", as_index=False).agg(
        orders=("order_id", "nunique"), units=("quantity", "sum"), revenue=("line_total", "sum")
    )
    return _money(out, ["revenue"]).sort_values("category", ignore_index=True)


def customer_lifetime_value(silver: Silver) -> pd.DataFrame:
    sales = _sales(silver)
    out = sales.groupby("customer_id", as_index=False).agg(
        orders=("order_id", "size"),
        revenue=("total_amount", "sum"),
        first_order=("order_ts", "min"),
        last_order=("order_ts", "max"),
    )
    # The average follows from the revenue as shown (in cents), so each row's figures agree with each other.
    out = _money(out, ["revenue"])
    out["average_order_value"] = out["revenue"] / out["orders"]
    return _money(out, ["average_order_value"]).sort_values("customer_id", ignore_index=True)


def return_rate(silver: Silver) -> pd.DataFrame:
    items = silver["order_items"].merge(silver["products"][["product_id", "category"]], on="product_id")
    returned = items["item_id"].isin(silver["returns"]["order_item_id"])
    frame = pd.DataFrame({"category": items["category"], "returned": returned.astype("int64")})
    out = frame.groupby("category", as_index=False).agg(
        items=("returned", "size"), returned=("returned", "sum")
    )
    out["return_rate"] = (out["returned"] / out["items"]).round(6)
    return out.sort_values("category", ignore_index=True)


FUNNEL = ("product_view", "add_to_cart", "checkout", "purchase")


def conversion_funnel(silver: Silver) -> pd.DataFrame:
    events = silver["events"]
    sessions = events.groupby("event_type")["session_id"].nunique()
    counts = [int(sessions.get(stage, 0)) for stage in FUNNEL]
    top = counts[0] or 1
    return pd.DataFrame(
        {
            "step": np.arange(1, len(FUNNEL) + 1, dtype="int64"),
            "stage": list(FUNNEL),
            "sessions": np.array(counts, dtype="int64"),
            "rate_from_view": np.round(np.array(counts) / top, 6),
        }
    )


def payment_mix(silver: Silver) -> pd.DataFrame:
    payments = silver["payments"]
    out = payments.groupby("method", as_index=False).agg(
        payments=("payment_id", "size"), amount=("amount", "sum")
    )
    return _money(out, ["amount"]).sort_values("method", ignore_index=True)


def _money(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    for column in columns:
        frame[column] = frame[column].astype("float64").round(2)
    return frame


AGGREGATES: dict[str, tuple[tuple[str, ...], Callable[[Silver], pd.DataFrame]]] = {
    "daily_revenue": (("orders",), daily_revenue),
    "revenue_by_category": (("orders", "order_items", "products"), revenue_by_category),
    "customer_lifetime_value": (("orders",), customer_lifetime_value),
    "return_rate": (("order_items", "products", "returns"), return_rate),
    "conversion_funnel": (("events",), conversion_funnel),
    "payment_mix": (("payments",), payment_mix),
}


def build_gold(silver: Silver) -> dict[str, pd.DataFrame]:
    """Every aggregate whose input tables are present."""
    return {
        name: build(silver) for name, (needs, build) in AGGREGATES.items() if all(t in silver for t in needs)
    }
