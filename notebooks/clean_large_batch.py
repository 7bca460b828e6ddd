# Databricks notebook source
"""Large-batch cleaning in PySpark: raw JSON lines in, silver, quarantine and gold Parquet out.

The same rules as the small-batch engine, read from the shared rule spec (orchestrator.domain.rules,
derived from the shop's contract), in the same four passes: column cleaning; cross-table repairs (line totals,
order totals from three witnesses, payments, refunds, orders placed before signup); key de-duplication,
quarantine of rows missing a required value and parent-first reference checks; business-key
de-duplication. Each output is one Parquet file at its medallion path with the small path's Arrow types.

Each raw table is parsed once by Spark's JSON reader. The first pass is the small path's own column
cleaning (orchestrator.cleaning.columns) run on Arrow batches in Spark's Python workers, which stage its
cells as Parquet themselves; later steps read that back (only the columns they need). Duplicates are found
without moving rows: which line holds a key first is decided on narrow columns, and only the repeated keys
are kept aside and broadcast back. A table's silver and quarantine come from one Spark write, which the
driver splits into the two files while Spark goes on; children and gold read the silver rows of that write.

On Databricks the job parameters arrive through widgets (job_id, user, parent_job_id, lake_root); run as a
script (spark-submit or python) they are command-line options, and a local Spark session is started.
"""

# COMMAND ----------

from __future__ import annotations

import argparse
import atexit
import contextlib
import hashlib
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from datetime import datetime
from functools import reduce
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import Column, DataFrame, DataFrameWriter, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from orchestrator.cleaning.columns import as_mask, clean_column
from orchestrator.cleaning.stages import Stage, ended_line, stage_timer
from orchestrator.domain import rules as r
from orchestrator.domain import shop as s
from orchestrator.errors import NotFound, WorkbenchError, run_notebook
from orchestrator.storage import paths

LINE, ISSUES, RULE = "_raw_line", "_issues", "_rule"
DUP, REJECT = "_duplicate", "_reject"
BLOCK, ROW = "_block", "_row"  # where a raw line lies: its file block, and its row id in the scan
OUTPUT = "_output"  # silver or quarantine: the output a settled row goes to
JAVA_DOUBLE = r"^-?[0-9]\.[0-9]+E-?[0-9]+$"  # how Java prints a double of 10^7 or more, or under 10^-3
PART_BYTES = 16 << 20  # Parquet row groups Spark writes
ARROW_ROWS = 1 << 16  # raw lines per Arrow batch sent to a Python worker
STAGE_ROWS = 1 << 17  # rows per row group of the staged cells a Python worker writes
BATCH_ROWS = 1 << 16  # rows the driver streams at a time from Spark's parts into an output file
DRIVER_MEMORY = "4g"  # local Spark's heap: enough for 5M orders
ITEM_RANGE = 1 << 18  # item ids per window range (see _neighbours)

# COMMAND ----------


if __name__ != "__main__":  # loaded from its file: Python workers receive its functions by value
    from pyspark import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])


def local_session(driver_memory: str = DRIVER_MEMORY, parallelism: int = 2) -> SparkSession:
    """A local Spark bound to 127.0.0.1 with the UI off, bounded memory and its scratch in a temp folder. In
    local mode the driver is also the executor: its heap holds the work of every task."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # Python workers import the rule spec: they see the repository the way this process does.
    repository = str(Path(s.__file__).resolve().parents[2])
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (repository, os.environ.get("PYTHONPATH")) if p)
    scratch = Path(tempfile.mkdtemp(prefix="spark-"))
    # Registered before the session exists, so it runs after Spark's own exit handler has stopped it.
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    return (
        SparkSession.builder.master(f"local[{parallelism}]")
        .appName("clean_large_batch")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.ui.retainedJobs", "50")
        .config("spark.ui.retainedStages", "50")
        .config("spark.sql.ui.retainedExecutions", "10")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.memory", driver_memory)
        .config("spark.driver.maxResultSize", "64m")
        .config("spark.sql.shuffle.partitions", str(parallelism * 2))
        .config("spark.default.parallelism", str(parallelism))
        .config("spark.local.dir", str(scratch / "local"))
        .config("spark.sql.warehouse.dir", str(scratch / "warehouse"))
        # Wide rows make long generated methods, which the JIT would otherwise leave interpreted.
        .config("spark.driver.extraJavaOptions", f"-Djava.io.tmpdir={scratch} -XX:-DontCompileHugeMethods")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.ansi.enabled", "false")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )


def _configure(spark: SparkSession) -> None:
    """Session settings the cleaning relies on, also on a cluster's own session."""
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.maxPlanStringLength", "8192")  # plans are deep; their text need not be
    spark.conf.set("spark.sql.ansi.enabled", "false")
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    # A JSON number read as text prints as its double, as the small path reads it, not as written (Spark 4
    # copies the written text by default; Spark 3 always printed the double).
    spark.conf.set("spark.sql.json.enableExactStringParsing", "false")
    # Pass 1 hands raw lines to Python workers in Arrow batches of this many rows; with no byte limit Spark
    # does not measure the batch after every row (2**31 - 1 means none).
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(ARROW_ROWS))
    spark.conf.set("spark.sql.execution.arrow.maxBytesPerBatch", str(2**31 - 1))


# COMMAND ----------
# Reading raw: every value as text, and where its line lies.


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(root: Path, user: str, job_id: str) -> dict:
    """The generation job's manifest; NotFound if the job does not exist (for this user)."""
    path = root / paths.raw_manifest(user, job_id)
    if not path.is_file():
        raise NotFound(f"no generated job {job_id} for user {user}")
    return json.loads(path.read_text())


def _as_of(manifest: dict) -> int:
    return int(datetime.fromisoformat(manifest["as_of"]).timestamp())


def read_raw(spark: SparkSession, root: Path, manifest: dict, table: s.Table) -> DataFrame:
    """One raw table, checked against the manifest's checksum: raw text per column, and where its line lies
    (its file block and row id; ``numbered`` turns them into the line number from the rows per block that
    pass 1 counts). Every value is read as text the way the small path reads it: strings as written, a JSON
    number as its double prints (``0.00`` reads ``0.0``; see ``_configure``)."""
    info = manifest["tables"][table.name]
    local = root / info["raw_path"]
    if not local.is_file() or _sha256(local) != info["sha256"]:
        raise WorkbenchError(
            f"{info['raw_path']} changed since it was generated (checksum differs from the manifest)"
        )
    schema = T.StructType([T.StructField(c.name, T.StringType()) for c in table.columns])
    lines = spark.read.schema(schema).option("mode", "FAILFAST").json(str(local))
    return lines.select(
        F.col("_metadata.file_block_start").alias(BLOCK),
        F.monotonically_increasing_id().alias(ROW),
        *(F.col(c.name).alias(_raw(c.name)) for c in table.columns),
    )


def numbered(frame: DataFrame, blocks: list[tuple[int, int, int]]) -> DataFrame:
    """``frame`` with the raw line number of each row in place of its block and row id. ``blocks`` holds, per
    file block, its start, its rows and the id of its first row: ids are consecutive inside a block, and
    blocks follow each other by offset."""
    shifts, before = [], 0
    for block, rows, first in sorted(blocks):
        shifts += [F.lit(block), F.lit(before - first)]
        before += rows
    shift = F.element_at(F.create_map(*shifts), F.col(BLOCK)) if shifts else F.lit(0)
    line = (F.col(ROW) + shift).alias(LINE)
    return frame.select(line, *(c for c in frame.columns if c not in (BLOCK, ROW)))


def _raw(name: str) -> str:
    return f"_raw_{name}"


def _issue(name: str) -> str:
    return f"_issue_{name}"


# COMMAND ----------
# Pass 1: each column on its own, by the small path's own column cleaning (orchestrator.cleaning.columns) on
# Arrow batches in Spark's Python workers. A cell keeps a repaired value or becomes null; its issue names the
# rule the raw value broke (the first one blamed wins).

_SPARK_TYPES = {
    s.ID: T.LongType(),
    s.FK: T.LongType(),
    s.INT: T.LongType(),
    s.MONEY: T.DoubleType(),
    s.DECIMAL1: T.DoubleType(),
    s.TIMESTAMP: T.TimestampType(),
}


def cells_schema(table: s.Table) -> T.StructType:
    """What pass 1 gives per raw line: where it lies, its raw text, and per column the value and issue."""
    fields = [T.StructField(BLOCK, T.LongType()), T.StructField(ROW, T.LongType())]
    fields += [T.StructField(_raw(c.name), T.StringType()) for c in table.columns]
    for c in table.columns:
        fields += [
            T.StructField(c.name, _SPARK_TYPES.get(c.type, T.StringType())),
            T.StructField(_issue(c.name), T.StringType()),
        ]
    return T.StructType(fields)


def small_path_text(text: pa.Array) -> pa.Array:
    """Raw text as the small path reads it. A JSON number read as text prints as its double in both readers,
    but Spark prints it as Java does and the small path (DuckDB) as Python does; they differ only where Java
    writes an exponent (``1.23456789E7`` is ``12345678.9``, ``1.0E-4`` is ``0.0001``), and such text is
    rewritten. A quoted string in Java's exponent form is rewritten too: Spark's reader cannot tell them
    apart."""
    maybe = pc.match_substring(text, "E").fill_null(False)
    if not pc.any(maybe).as_py():
        return text
    java = np.zeros(len(text), dtype=bool)
    java[as_mask(maybe)] = as_mask(pc.match_substring_regex(text.filter(maybe), JAVA_DOUBLE))
    if not java.any():
        return text
    printed = [repr(float(value)) for value in text.filter(pa.array(java)).to_pylist()]
    return pc.replace_with_mask(text, pa.array(java), pa.array(printed, text.type))


def clean_batch(table: s.Table, batch: pa.RecordBatch, as_of: int, keep_raw: bool) -> pa.RecordBatch:
    """Pass 1 on one batch of raw lines (``BLOCK``, ``ROW`` and the ``_raw_`` text columns). The raw text is
    kept only where quarantine may need it: for every row when ``keep_raw``, else for rows missing a required
    value (later passes fill values, never empty them)."""
    rows = np.arange(batch.num_rows)
    raw = {c.name: small_path_text(batch.column(_raw(c.name))) for c in table.columns}
    cleaned = {c.name: clean_column(table, c, raw[c.name], as_of) for c in table.columns}
    keep = np.full(batch.num_rows, keep_raw)
    if not keep_raw:
        for c in table.columns:
            if c.is_required:
                keep |= as_mask(pc.is_null(cleaned[c.name].values))
    kept = pa.array(keep)
    none = pa.scalar(None, pa.string())
    arrays = [batch.column(BLOCK), batch.column(ROW)]
    arrays += [pc.if_else(kept, raw[c.name], none) for c in table.columns]
    for c in table.columns:
        values = cleaned[c.name].values
        if pa.types.is_timestamp(values.type):
            values = values.cast(pa.timestamp("us", tz="UTC"))  # Spark's timestamps are microseconds
        arrays += [values, pa.array(cleaned[c.name].issues(rows), pa.string())]
    return pa.RecordBatch.from_arrays(arrays, names=cells_schema(table).names)


BLOCKS = T.StructType([T.StructField(n, T.LongType()) for n in ("block", "rows", "first")])


def stage_cells(
    table: s.Table, batches: Iterable[pa.RecordBatch], as_of: int, keep_raw: bool, folder: Path
) -> Iterator[pa.RecordBatch]:
    """Pass 1 over one partition of raw lines, written by this Python worker as one Parquet file in
    ``folder`` (Arrow's writer: the cells make no round trip through the JVM). Yields, per file block, its
    start, its rows and the id of its first row (``BLOCKS``), which number the lines. The file is named by
    the partition's first row id and swapped in whole, so a task run again rewrites the same file."""
    cleaned = (clean_batch(table, batch, as_of, keep_raw) for batch in batches if batch.num_rows)
    first = next(cleaned, None)
    if first is None:
        return
    blocks: dict[int, list[int]] = {}  # block start: [rows, first row id]
    target = folder / f"part-{first.column(ROW)[0].as_py():020d}.parquet"
    with (
        _swapped_in(target) as temp,
        pq.ParquetWriter(temp, first.schema, compression="snappy", use_dictionary=False) as writer,
    ):
        for group in _groups(itertools.chain([first], cleaned), STAGE_ROWS):
            for batch in group:
                ids = batch.column(ROW).to_numpy()
                starts, at, rows = np.unique(
                    batch.column(BLOCK).to_numpy(), return_index=True, return_counts=True
                )
                for start, index, n in zip(starts.tolist(), at.tolist(), rows.tolist(), strict=True):
                    blocks.setdefault(start, [0, int(ids[index])])[0] += n
            writer.write_table(pa.Table.from_batches(group))
    starts = sorted(blocks)
    yield pa.RecordBatch.from_arrays(
        [
            pa.array(starts),
            pa.array([blocks[b][0] for b in starts]),
            pa.array([blocks[b][1] for b in starts]),
        ],
        schema=pa.schema([(f.name, pa.int64()) for f in BLOCKS.fields]),
    )


def _groups(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[list[pa.RecordBatch]]:
    """Consecutive batches gathered into groups of at least ``rows`` rows (the last one may hold fewer)."""
    group: list[pa.RecordBatch] = []
    for batch in batches:
        group.append(batch)
        if sum(b.num_rows for b in group) >= rows:
            yield group
            group = []
    if group:
        yield group


@contextlib.contextmanager
def _swapped_in(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target``, hidden from Spark's readers by its leading dot; renamed to
    ``target`` when the block succeeds, removed when it fails."""
    temp = target.with_name(f".{target.name}.tmp")
    try:
        yield temp
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def clean_table(
    spark: SparkSession, root: Path, manifest: dict, table: s.Table, as_of: int, staging: Path
) -> DataFrame:
    """Pass 1, staged as Parquet (the raw JSON is parsed once), then line numbers and the key duplicates:
    raw text, typed clean values, issues, and which rows repeat a key."""
    # Rows referencing a parent in the job can be rejected whatever their values: they keep their raw text.
    keep_raw = any(c.is_required and c.references in manifest["tables"] for c in table.columns)
    folder = staging / "cells" / table.name
    folder.mkdir(parents=True, exist_ok=True)

    def stage(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        yield from stage_cells(table, batches, as_of, keep_raw, folder)

    blocks = read_raw(spark, root, manifest, table).mapInArrow(stage, BLOCKS).collect()
    cells = spark.read.schema(cells_schema(table)).parquet(str(folder))
    frame = numbered(cells, [tuple(row) for row in blocks])
    return _mark_repeats(frame, [table.key], F.lit(True), DUP).withColumn(REJECT, F.lit(None).cast("string"))


# COMMAND ----------
# Expressions the later passes share.


def _rule_id(table: s.Table, column: str, check: str) -> str:
    return f"{table.name}.{column}.{check}"


def _true(mask: Column) -> Column:
    return F.coalesce(mask, F.lit(False))


class Cell:
    """A cell being cleaned: its value and issue expressions."""

    def __init__(self, value: Column, issue: Column) -> None:
        self.value = value
        self.issue = issue

    def blame(self, mask: Column, rule_id: str) -> None:
        self.issue = F.coalesce(self.issue, F.when(_true(mask), F.lit(rule_id)))

    def invalidate(self, mask: Column, rule_id: str) -> None:
        self.blame(_true(mask) & self.value.isNotNull(), rule_id)
        self.value = F.when(_true(mask), F.lit(None)).otherwise(self.value)


def round_half_even(value: Column, decimals: int) -> Column:
    """numpy's round: scale, round half to even, scale back."""
    scale = 10.0**decimals
    return F.rint(value * scale) / scale


def _sum_money(value: Column | str) -> Column:
    """An exact sum of money, as the nearest double: as the small path's compensated sum gives. Values are
    whole cents (silver rounds money), summed as integers."""
    column = F.col(value) if isinstance(value, str) else value
    return F.sum(F.rint(column * 100).cast("long")) / 100


@contextlib.contextmanager
def _setting(spark: SparkSession, key: str, value: str) -> Iterator[None]:
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


def _stage(frame: DataFrame, path: Path) -> DataFrame:
    """``frame`` computed once into Parquet under ``path``, and read back from there."""
    _parquet(frame.write, path)
    return frame.sparkSession.read.parquet(str(path))


def _parquet(writer: DataFrameWriter, path: Path) -> None:
    """Spark's Parquet parts, read back once or twice: plain encoding (dictionaries cost more than they
    save), in row groups the driver can stream."""
    options = {"parquet.enable.dictionary": "false", "parquet.block.size": PART_BYTES}
    writer.mode("overwrite").options(**options).parquet(str(path))


def _mark_repeats(frame: DataFrame, key: list[str], among: Column, flag: str) -> DataFrame:
    """Set ``flag`` on rows (among those where ``among`` holds and the key is complete) whose key an earlier
    line holds; keep it where it is already set. Only the repeated keys, with their first line, are kept
    aside, and joined back to every row without moving the rows."""
    candidate = _true(among) & reduce(lambda a, b: a & b, [F.col(c).isNotNull() for c in key])
    firsts = (
        frame.where(candidate)
        .groupBy(*key)
        .agg(F.count(F.lit(1)).alias("_n"), F.min(LINE).alias("_first_line"))
        .where(F.col("_n") > 1)
        .drop("_n")
    )
    # Keys are nearly all distinct: aggregating before the shuffle would not shrink it.
    with _setting(frame.sparkSession, "spark.sql.execution.bypassPartialAggregation", "true"):
        firsts = firsts.localCheckpoint()
    repeat = candidate & _true(F.col(LINE) != F.col("_first_line"))
    previous = F.col(flag) if flag in frame.columns else F.lit(False)
    joined = frame.join(F.broadcast(firsts), key, "left")
    return joined.select(*(c for c in frame.columns if c != flag), (previous | repeat).alias(flag))


# COMMAND ----------
# Pass 2: repairs across columns and tables.


def _close(a: Column, b: Column) -> Column:
    """numpy's isclose (rtol 1e-5, atol 1e-8); False where either side is null."""
    return _true(F.abs(a - b) <= 1e-8 + 1e-5 * F.abs(b))


def _fill(
    values: dict[str, Column], name: str, mask: Column, new: Column, rule_id: str, decimals: int | None = 2
) -> None:
    """Set repaired values where ``mask`` holds (and there is a value), blaming ``rule_id``."""
    mask = _true(mask) & new.isNotNull()
    issue = F.col(_issue(name))
    values[_issue(name)] = F.when(mask & issue.isNull(), F.lit(rule_id)).otherwise(issue)
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
    follows_previous = _true((line > 1) & (F.col("_prev_line") == line - 1))
    starts_next = _true((line == 1) & (F.col("_next_line") == 2))
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
        lost.where(~_true(line == 1))
        .select(F.col("_ffill").alias("_unsure"))
        .union(lost.where(~_true(F.col("_bfill_line") == 1)).select(F.col("_bfill").alias("_unsure")))
        .where(F.col("_unsure").isNotNull())
        .distinct()
    )
    grouped = (
        frame.where(F.col("_owner").isNotNull())
        .groupBy("_owner")
        .agg(
            _sum_money("line_total").alias("_total"),
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
        cell = Cell(F.col("order_ts"), F.col(_issue("order_ts")))
        cell.invalidate(F.col("order_ts") < F.col("_signup"), "orders.order_ts.order_after_signup")
        orders = orders.withColumns({"order_ts": cell.value, _issue("order_ts"): cell.issue})
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


# COMMAND ----------
# Passes 3 and 4: quarantine, references parent-first, business keys.


def _alive() -> Column:
    return ~F.col(DUP) & F.col(REJECT).isNull()


def _reject(mask: Column, rule_id: Column) -> Column:
    """Quarantine live rows in ``mask`` (the first rejecting rule is the one reported)."""
    return F.when(_true(mask) & _alive(), rule_id).otherwise(F.col(REJECT))


def settle(frame: DataFrame, table: s.Table, done: dict[str, DataFrame], staging: Path) -> DataFrame:
    """Reject incomplete rows and orphans, and mark business-key duplicates. A table checked against its
    parents (``done``: their silver) is staged after the checks: the business-key check and the outputs read
    them once."""
    for column in table.columns:
        if column.is_required:
            not_null = F.lit(_rule_id(table, column.name, r.NOT_NULL))
            cause = F.coalesce(F.col(_issue(column.name)), not_null)
            frame = frame.withColumn(REJECT, _reject(F.col(column.name).isNull(), cause))
    parents = [c for c in table.columns if c.type == s.FK and c.references in done]
    for column in parents:
        parent_key = s.TABLES[column.references].key
        keys = done[column.references].select(F.col(parent_key).alias("_parent")).distinct()
        frame = frame.join(keys, F.col(column.name) == F.col("_parent"), "left")
        orphan = F.col(column.name).isNotNull() & F.col("_parent").isNull()
        rule_id = _rule_id(table, column.name, r.FOREIGN_KEY)
        if column.nullable:
            cell = Cell(F.col(column.name), F.col(_issue(column.name)))
            cell.invalidate(orphan, rule_id)
            frame = frame.withColumns({column.name: cell.value, _issue(column.name): cell.issue})
        else:
            frame = frame.withColumn(REJECT, _reject(orphan, F.lit(rule_id)))
        frame = frame.drop("_parent")
    if parents:
        frame = _stage(frame, staging / "settled" / table.name)
    key = list(table.business_key)
    if key != [table.key]:
        frame = _mark_repeats(frame, key, _alive(), DUP)
    return frame


def outputs_of(frame: DataFrame, table: s.Table) -> DataFrame:
    """Both outputs in one frame, duplicates left out, ``OUTPUT`` naming each row's: live rows with their
    typed values and the rules repaired or nulled in the row (silver); rejected rows with their raw text, in
    the ``_raw_`` columns, and the rejecting rule (quarantine). Both keep the raw line."""
    alive = _alive()
    issues = F.concat_ws(";", *(F.col(_issue(c.name)) for c in table.columns))
    silver = [F.when(alive, F.col(name)).alias(name) for name in table.column_names]
    silver.append(F.when(alive & (issues != ""), issues).alias(ISSUES))
    quarantine = [F.when(~alive, F.col(_raw(c.name))).alias(_raw(c.name)) for c in table.columns]
    output = F.when(alive, F.lit("silver")).otherwise(F.lit("quarantine")).alias(OUTPUT)
    kept = frame.where(alive | F.col(REJECT).isNotNull())
    return kept.select(*silver, *quarantine, LINE, F.col(REJECT).alias(RULE), output)


def clean(spark: SparkSession, root: Path, manifest: dict, staging: Path) -> dict[str, DataFrame]:
    """Passes 1 and 2 over every raw table of the job, parents first. A table repaired from another one is
    staged: settling it, publishing both of its outputs and the repairs after it read the repair once."""
    as_of = _as_of(manifest)
    frames = {
        name: clean_table(spark, root, manifest, s.TABLES[name], as_of, staging)
        for name in s.TABLE_NAMES
        if name in manifest["tables"]
    }
    if "order_items" in frames:
        frames["order_items"] = repair_items(frames["order_items"])
    if "orders" in frames:
        frames["orders"] = repair_orders(frames)
        if frames.keys() & {"customers", "payments", "order_items"}:
            frames["orders"] = _stage(frames["orders"], staging / "repaired" / "orders")
    if "payments" in frames and "orders" in frames:
        repaired = repair_payments(frames["payments"], frames["orders"])
        frames["payments"] = _stage(repaired, staging / "repaired" / "payments")
    if "returns" in frames and "order_items" in frames:
        repaired = repair_returns(frames["returns"], frames["order_items"])
        frames["returns"] = _stage(repaired, staging / "repaired" / "returns")
    return frames


# COMMAND ----------
# Gold: the same aggregates as the small path, rounded the same way.


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
        _sum_money("total_amount").alias("gross_revenue"),
        _sum_money(net).alias("net_revenue"),
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
            _sum_money("line_total").alias("revenue"),
        )
    )
    return out.withColumns(_money("revenue")).orderBy("category")


def customer_lifetime_value(silver: dict[str, DataFrame]) -> DataFrame:
    out = (
        _sales(silver)
        .groupBy("customer_id")
        .agg(
            F.count(F.lit(1)).alias("orders"),
            _sum_money("total_amount").alias("revenue"),
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
        .agg(F.count(F.lit(1)).alias("payments"), _sum_money("amount").alias("amount"))
    )
    return out.withColumns(_money("amount")).orderBy("method")


_MONEY, _TIME = pa.float64(), pa.timestamp("s", tz="UTC")
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
                ("first_order", _TIME),
                ("last_order", _TIME),
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


# COMMAND ----------
# Publishing: Spark writes parts to a staging folder; the driver streams them, one row group at a time, into
# the one Parquet file at the medallion path with the small path's Arrow types, then swaps it in.

_ARROW = {
    s.ID: pa.int64(),
    s.FK: pa.int64(),
    s.INT: pa.int64(),
    s.MONEY: pa.float64(),
    s.DECIMAL1: pa.float64(),
    s.TIMESTAMP: _TIME,
}


def silver_schema(table: s.Table) -> pa.Schema:
    fields = [(c.name, _ARROW.get(c.type, pa.string())) for c in table.columns]
    return pa.schema([*fields, (LINE, pa.int64()), (ISSUES, pa.string())])


def quarantine_schema(table: s.Table) -> pa.Schema:
    return pa.schema(
        [*((c.name, pa.string()) for c in table.columns), (LINE, pa.int64()), (RULE, pa.string())]
    )


def publish(
    frame: DataFrame, root: Path, path: str, schema: pa.Schema, staging: Path, driver: Executor
) -> Future[dict[str, int]]:
    """Write ``frame``'s parts with Spark; ``driver`` assembles them into one Parquet file at ``root/path``
    (the future's row count, keyed by ``path``)."""
    parts = staging / path
    _parquet(frame.write, parts)
    return driver.submit(_assemble, parts, {path: (root / path, schema, schema.names)})


def publish_table(
    frame: DataFrame,
    table: s.Table,
    root: Path,
    paths_out: dict[str, str],
    staging: Path,
    driver: Executor,
) -> tuple[DataFrame, Future[dict[str, int]]]:
    """Write a settled table's silver and quarantine parts in one Spark write; ``driver`` assembles them into
    the files at ``paths_out["silver"]`` and ``paths_out["quarantine"]`` (the future's row counts). Returns
    the silver rows as Spark reads them back from the parts, for the children and gold."""
    parts = staging / "outputs" / table.name
    _parquet(outputs_of(frame, table).write, parts)  # not partitioned: Spark would sort every row by output
    silver = silver_schema(table)
    raw = [*(_raw(c.name) for c in table.columns), LINE, RULE]
    targets = {
        "silver": (root / paths_out["silver"], silver, silver.names),
        "quarantine": (root / paths_out["quarantine"], quarantine_schema(table), raw),
    }
    rows = frame.sparkSession.read.parquet(str(parts)).where(F.col(OUTPUT) == "silver")
    return rows.select(*silver.names), driver.submit(_assemble, parts, targets)


def _assemble(parts: Path, targets: dict[str, tuple[Path, pa.Schema, list[str]]]) -> dict[str, int]:
    """Stream the Parquet parts under ``parts`` into one file per target; returns each target's row count. A
    target is its file, its schema and the parts' columns it takes (named and typed as the schema). Several
    targets share the parts: each row goes to the one its ``OUTPUT`` names. Only text is dictionary-encoded
    (numbers and times barely repeat: trying a dictionary on them costs more than it saves)."""
    split = len(targets) > 1
    read = sorted({c for _, _, columns in targets.values() for c in columns} | ({OUTPUT} if split else set()))
    rows = dict.fromkeys(targets, 0)
    with contextlib.ExitStack() as stack:
        writers = {}
        for key, (target, schema, _) in targets.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
            temp = stack.enter_context(_swapped_in(target))
            writers[key] = stack.enter_context(
                pq.ParquetWriter(temp, schema, compression="zstd", use_dictionary=text)
            )
        for part in sorted(parts.glob("part-*.parquet")):
            for batch in pq.ParquetFile(part).iter_batches(BATCH_ROWS, columns=read):
                for key, (_, schema, columns) in targets.items():
                    taken = batch.filter(pc.equal(batch.column(OUTPUT), key)) if split else batch
                    if taken.num_rows:
                        writers[key].write_batch(
                            taken.select(columns).rename_columns(schema.names).cast(schema)
                        )
                        rows[key] += taken.num_rows
    return rows


def print_stage(name: str, seconds: float) -> None:
    """Tell a stage's end on standard output, where a local run's log keeps it for the runner to read."""
    print(ended_line(name, seconds), flush=True)


def clean_job(
    spark: SparkSession,
    root: Path,
    user: str,
    parent_id: str,
    job_id: str,
    tell: Stage = lambda _name, _seconds: None,
) -> dict:
    """Clean one generated job into silver, quarantine and gold under ``root``; returns the outputs. Each
    table is settled against its parents' silver, and gold is built from the silver, as Spark wrote them:
    the driver assembles each output file while Spark goes on. ``tell`` hears each stage's end (the names
    of orchestrator.cleaning.stages.NOTEBOOK after spark_start)."""
    ended = stage_timer(tell)
    _configure(spark)
    manifest = read_manifest(root, user, parent_id)
    staging = root / "tmp" / "spark" / paths.check_job_id(job_id)
    result: dict = {"tables": {}, "silver": {}, "quarantine": {}, "gold": {}}
    silver: dict[str, DataFrame] = {}
    try:
        with ThreadPoolExecutor(1) as driver:
            assembled = {}
            frames = clean(spark, root, manifest, staging)
            ended("spark_clean")
            for name, frame in frames.items():
                table = s.TABLES[name]
                settled = settle(frame, table, silver, staging)
                result["silver"][name] = paths.silver_table(user, parent_id, job_id, name)
                result["quarantine"][name] = paths.quarantine_table(user, parent_id, job_id, name)
                paths_out = {kind: result[kind][name] for kind in ("silver", "quarantine")}
                silver[name], assembled[name] = publish_table(
                    settled, table, root, paths_out, staging, driver
                )
            ended("spark_settle")
            for name, frame in build_gold(silver).items():
                result["gold"][name] = paths.gold_table(user, parent_id, job_id, name)
                assembled[name] = publish(
                    frame, root, result["gold"][name], AGGREGATES[name][2], staging, driver
                )
            ended("spark_gold")
            for name in result["silver"]:
                rows, rows_in = assembled[name].result(), manifest["tables"][name]["rows"]
                result["tables"][name] = {
                    "rows_in": rows_in,
                    "rows_out": rows["silver"],
                    "quarantined": rows["quarantine"],
                    "duplicates_removed": rows_in - rows["silver"] - rows["quarantine"],
                }
            for future in assembled.values():
                future.result()  # raises what an assembly raised
            ended("spark_write")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.removedirs(staging.parent)  # the staging folders, while no other job uses them
    return result


# COMMAND ----------

PARAMETERS = ("job_id", "user", "parent_job_id", "lake_root")


def _parameters(argv: Iterable[str] | None = None) -> dict[str, str]:
    """Job parameters: Databricks widgets when running there, command-line options otherwise."""
    widgets = globals().get("dbutils")
    if widgets is not None:
        for name in PARAMETERS:
            widgets.widgets.text(name, "")
        return {name: widgets.widgets.get(name) for name in PARAMETERS}
    parser = argparse.ArgumentParser(description="Clean one generated job with Spark.")
    for name in PARAMETERS:
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--driver_memory", default=DRIVER_MEMORY)
    return vars(parser.parse_args(list(argv) if argv is not None else None))


def main(argv: Iterable[str] | None = None) -> dict:
    """Run the notebook: read the parameters, clean the job, print the outputs as JSON."""
    params = _parameters(argv)
    read_manifest(Path(params["lake_root"]), params["user"], params["parent_job_id"])  # before Spark starts
    on_cluster = "dbutils" in globals()
    started = time.perf_counter()
    spark = SparkSession.builder.getOrCreate() if on_cluster else local_session(params["driver_memory"])
    print_stage("spark_start", time.perf_counter() - started)
    result = clean_job(
        spark,
        Path(params["lake_root"]),
        params["user"],
        params["parent_job_id"],
        params["job_id"],
        print_stage,
    )
    print(json.dumps(result, sort_keys=True))
    return result


if __name__ == "__main__":
    run_notebook(main, on_cluster="dbutils" in globals())
