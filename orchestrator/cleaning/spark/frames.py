"""What every pass of the Spark engine shares: the bookkeeping columns a table's frame carries beside its own,
the expressions that follow the small path's arithmetic, and staging frames as Parquet.

A table's frame holds, per raw line: ``LINE`` (its raw line number); per column the typed value (named as
the column), its issue (``issue(name)``: the first rule the cell broke, or null) and, where quarantine may
need it, its raw text (``raw(name)``); ``DUP`` (true for a row that repeats a key an earlier line holds) and
``REJECT`` (the rule that quarantines the row, or null).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from functools import reduce
from pathlib import Path

from pyspark.sql import Column, DataFrame, DataFrameWriter, SparkSession
from pyspark.sql import functions as F

LINE, ISSUES, RULE = "_raw_line", "_issues", "_rule"
DUP, REJECT = "_duplicate", "_reject"
OUTPUT = "_output"  # silver or quarantine: the output a settled row goes to
PART_BYTES = 16 << 20  # Parquet row groups Spark writes


def raw(name: str) -> str:
    """The column holding a column's raw text."""
    return f"_raw_{name}"


def issue(name: str) -> str:
    """The column holding the rule a column's cell broke."""
    return f"_issue_{name}"


def true(mask: Column) -> Column:
    """``mask`` with null read as false."""
    return F.coalesce(mask, F.lit(False))


class Cell:
    """A cell being cleaned: its value and issue expressions."""

    def __init__(self, value: Column, issue: Column) -> None:
        self.value = value
        self.issue = issue

    def blame(self, mask: Column, rule_id: str) -> None:
        self.issue = F.coalesce(self.issue, F.when(true(mask), F.lit(rule_id)))

    def invalidate(self, mask: Column, rule_id: str) -> None:
        self.blame(true(mask) & self.value.isNotNull(), rule_id)
        self.value = F.when(true(mask), F.lit(None)).otherwise(self.value)


def round_half_even(value: Column, decimals: int) -> Column:
    """numpy's round: scale, round half to even, scale back."""
    scale = 10.0**decimals
    return F.rint(value * scale) / scale


def sum_money(value: Column | str, decimals: int = 2) -> Column:
    """An exact sum of money (or of any values at ``decimals`` places), as the nearest double: as the small
    path's compensated sum gives. Values are whole cents (silver rounds money), summed as integers."""
    column = F.col(value) if isinstance(value, str) else value
    scale = 10**decimals
    return F.sum(F.rint(column * scale).cast("long")) / scale


@contextlib.contextmanager
def setting(spark: SparkSession, key: str, value: str) -> Iterator[None]:
    """A session setting changed for the work inside the block."""
    before = spark.conf.get(key, None)
    spark.conf.set(key, value)
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)


def staged(frame: DataFrame, path: Path) -> DataFrame:
    """``frame`` computed once into Parquet under ``path``, and read back from there."""
    write_parquet(frame.write, path)
    return frame.sparkSession.read.parquet(str(path))


def write_parquet(writer: DataFrameWriter, path: Path) -> None:
    """Spark's Parquet parts, read back once or twice: plain encoding (dictionaries cost more than they
    save), in row groups the driver can stream."""
    options = {"parquet.enable.dictionary": "false", "parquet.block.size": PART_BYTES}
    writer.mode("overwrite").options(**options).parquet(str(path))


@contextlib.contextmanager
def swapped_in(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target``, hidden from Spark's readers by its leading dot; renamed to
    ``target`` when the block succeeds, removed when it fails."""
    temp = target.with_name(f".{target.name}.tmp")
    try:
        yield temp
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def mark_repeats(frame: DataFrame, key: list[str], among: Column, flag: str) -> DataFrame:
    """Set ``flag`` on rows (among those where ``among`` holds and the key is complete) whose key an earlier
    line holds; keep it where it is already set. Only the repeated keys, with their first line, are kept
    aside, and joined back to every row without moving the rows."""
    candidate = true(among) & reduce(lambda a, b: a & b, [F.col(c).isNotNull() for c in key])
    firsts = (
        frame.where(candidate)
        .groupBy(*key)
        .agg(F.count(F.lit(1)).alias("_n"), F.min(LINE).alias("_first_line"))
        .where(F.col("_n") > 1)
        .drop("_n")
    )
    # Keys are nearly all distinct: aggregating before the shuffle would not shrink it.
    with setting(frame.sparkSession, "spark.sql.execution.bypassPartialAggregation", "true"):
        firsts = firsts.localCheckpoint()
    repeat = candidate & true(F.col(LINE) != F.col("_first_line"))
    previous = F.col(flag) if flag in frame.columns else F.lit(False)
    joined = frame.join(F.broadcast(firsts), key, "left")
    return joined.select(*(c for c in frame.columns if c != flag), (previous | repeat).alias(flag))
