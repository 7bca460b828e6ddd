"""Gold on Spark, the shop's for now: the same aggregates as the small path (orchestrator.cleaning.gold),
rounded the same way, each built only when the tables it needs were cleaned."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from orchestrator.cleaning.spark.frames import round_half_even, sum_money
from orchestrator.cleaning.spark.publish import TIME


def _sales(silver: dict[str, DataFrame]) -> DataFrame:
    orders = silver["orders"]
    return orders.where((F.col("status") != "cancelled") & F.col("order_ts").isNotNull())


def _money(*names: str) -> dict[str, Column]:
    return {name: round_half_even(F.col(name).cast("double"), 2) for name in names}


def daily_revenue(silver: dict[str, DataFrame]) -> DataFrame:
    sales = _sales(silver)
    net = F.col("total_amount") - F.coalesce(F.col("discount_amount"), F.lit(0.0))
    out = sales.groupBy(F.to_date("order_ts").alias("_date")).agg(
        F.count(F.lit(1)).alias("orders"),
        sum_money("total_amount").alias("gross_revenue"),
        sum_money(net).alias("net_revenue"),
    )
    out = out.select(
        F.date_format("_date", "yyyy-MM-dd").alias("day"), "orders", "gross_revenue", "net_revenue"
    )
    return out.withColumns(_money("gross_revenue", "net_revenue")).orderBy("day")


def revenue_by_category(silver: dict[str, DataFrame]) -> DataFrame:
    items = silver["order_items"].join(_sales(silver).select("order_id"), "order_id")
    items = items.join(silver["products"].select("product_id", "category"), "product_id")
    out = (
        items.where(F.col("category").isNotNull())
        .groupBy("category")
        .agg(
            F.countDistinct("order_id").alias("orders"),
            F.sum("quantity").alias("units"),
            sum_money("line_total").alias("revenue"),
        )
    )
    return out.withColumns(_money("revenue")).orderBy("category")


def customer_lifetime_value(silver: dict[str, DataFrame]) -> DataFrame:
    out = (
        _sales(silver)
        .groupBy("customer_id")
        .agg(
            F.count(F.lit(1)).alias("orders"),
            sum_money("total_amount").alias("revenue"),
            F.min("order_ts").alias("first_order"),
            F.max("order_ts").alias("last_order"),
        )
    )
    out = out.withColumns(_money("revenue"))
    out = out.withColumn("average_order_value", F.col("revenue") / F.col("orders"))
    return out.withColumns(_money("average_order_value")).orderBy("customer_id")


def return_rate(silver: dict[str, DataFrame]) -> DataFrame:
    items = silver["order_items"].join(silver["products"].select("product_id", "category"), "product_id")
    returned = silver["returns"].select(F.col("order_item_id").alias("_returned")).distinct()
    items = items.join(returned, F.col("item_id") == F.col("_returned"), "left")
    out = (
        items.where(F.col("category").isNotNull())
        .groupBy("category")
        .agg(
            F.count(F.lit(1)).alias("items"),
            F.count("_returned").alias("returned"),
        )
    )
    rate = round_half_even(F.col("returned") / F.col("items"), 6)
    return out.withColumn("return_rate", rate).orderBy("category")


FUNNEL = ("product_view", "add_to_cart", "checkout", "purchase")


def conversion_funnel(silver: dict[str, DataFrame]) -> DataFrame:
    spark = silver["events"].sparkSession
    stages = spark.createDataFrame(
        [(i + 1, stage) for i, stage in enumerate(FUNNEL)], "step long, stage string"
    )
    sessions = (
        silver["events"]
        .groupBy(F.col("event_type").alias("stage"))
        .agg(F.countDistinct("session_id").alias("sessions"))
    )
    out = stages.join(sessions, "stage", "left").withColumn("sessions", F.coalesce("sessions", F.lit(0)))
    top = F.max(F.when(F.col("stage") == FUNNEL[0], F.col("sessions"))).over(Window.partitionBy())
    top = F.when(top > 0, top).otherwise(F.lit(1))
    rate = round_half_even(F.col("sessions") / top, 6)
    return out.select("step", "stage", "sessions", rate.alias("rate_from_view")).orderBy("step")


def payment_mix(silver: dict[str, DataFrame]) -> DataFrame:
    out = (
        silver["payments"]
        .where(F.col("method").isNotNull())
        .groupBy("method")
        .agg(F.count(F.lit(1)).alias("payments"), sum_money("amount").alias("amount"))
    )
    return out.withColumns(_money("amount")).orderBy("method")


_MONEY = pa.float64()
AGGREGATES: dict[str, tuple[tuple[str, ...], Callable[[dict[str, DataFrame]], DataFrame], pa.Schema]] = {
    "daily_revenue": (
        ("orders",),
        daily_revenue,
        pa.schema(
            [("day", pa.string()), ("orders", pa.int64()), ("gross_revenue", _MONEY), ("net_revenue", _MONEY)]
        ),
    ),
    "revenue_by_category": (
        ("orders", "order_items", "products"),
        revenue_by_category,
        pa.schema(
            [("category", pa.string()), ("orders", pa.int64()), ("units", pa.int64()), ("revenue", _MONEY)]
        ),
    ),
    "customer_lifetime_value": (
        ("orders",),
        customer_lifetime_value,
        pa.schema(
            [
                ("customer_id", pa.int64()),
                ("orders", pa.int64()),
                ("revenue", _MONEY),
                ("first_order", TIME),
                ("last_order", TIME),
                ("average_order_value", _MONEY),
            ]
        ),
    ),
    "return_rate": (
        ("order_items", "products", "returns"),
        return_rate,
        pa.schema(
            [
                ("category", pa.string()),
                ("items", pa.int64()),
                ("returned", pa.int64()),
                ("return_rate", pa.float64()),
            ]
        ),
    ),
    "conversion_funnel": (
        ("events",),
        conversion_funnel,
        pa.schema(
            [
                ("step", pa.int64()),
                ("stage", pa.large_string()),
                ("sessions", pa.int64()),
                ("rate_from_view", pa.float64()),
            ]
        ),
    ),
    "payment_mix": (
        ("payments",),
        payment_mix,
        pa.schema([("method", pa.string()), ("payments", pa.int64()), ("amount", _MONEY)]),
    ),
}


def build_gold(silver: dict[str, DataFrame]) -> dict[str, DataFrame]:
    """Every aggregate whose input tables are present."""
    return {
        name: build(silver)
        for name, (needs, build, _) in AGGREGATES.items()
        if all(t in silver for t in needs)
    }


def schema_of(name: str) -> pa.Schema:
    """An aggregate's Arrow types, as the small path publishes it."""
    return AGGREGATES[name][2]
