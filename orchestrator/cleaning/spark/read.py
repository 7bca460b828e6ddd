"""Reading a raw job in Spark: its manifest, every raw table as text, and pass 1, the small path's own column
cleaning (orchestrator.cleaning.columns) run on Arrow batches in Spark's Python workers.

Each raw table is parsed once by Spark's JSON reader. Pass 1 treats each column on its own: a cell keeps a
repaired value or becomes null, and its issue names the rule the raw value broke (the first one blamed wins).
The Python workers stage its cells as Parquet themselves; later steps read that back (only the columns they
need). Rows repeating a primary key an earlier line holds are marked there (``DUP``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from orchestrator.cleaning.columns import as_mask, clean_column
from orchestrator.cleaning.spark.frames import DUP, LINE, REJECT, issue, mark_repeats, raw, swapped_in
from orchestrator.domain import model as m
from orchestrator.errors import NotFound, WorkbenchError
from orchestrator.storage import paths

BLOCK, ROW = "_block", "_row"  # where a raw line lies: its file block, and its row id in the scan
JAVA_DOUBLE = r"^-?[0-9]\.[0-9]+E-?[0-9]+$"  # how Java prints a double of 10^7 or more, or under 10^-3
STAGE_ROWS = 1 << 17  # rows per row group of the staged cells a Python worker writes


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


def as_of_seconds(manifest: dict) -> int:
    """The data set's as-of time, in epoch seconds."""
    return int(datetime.fromisoformat(manifest["as_of"]).timestamp())


def read_raw(spark: SparkSession, root: Path, manifest: dict, table: m.Table) -> DataFrame:
    """One raw table, checked against the manifest's checksum: raw text per column, and where its line lies
    (its file block and row id; ``numbered`` turns them into the line number from the rows per block that
    pass 1 counts). Every value is read as text the way the small path reads it: strings as written, a JSON
    number as its double prints (``0.00`` reads ``0.0``; see ``session.configure``)."""
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
        *(F.col(c.name).alias(raw(c.name)) for c in table.columns),
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


_SPARK_TYPES = {
    m.ID: T.LongType(),
    m.FK: T.LongType(),
    m.INT: T.LongType(),
    m.MONEY: T.DoubleType(),
    m.DECIMAL1: T.DoubleType(),
    m.TIMESTAMP: T.TimestampType(),
}


def cells_schema(table: m.Table) -> T.StructType:
    """What pass 1 gives per raw line: where it lies, its raw text, and per column the value and issue."""
    fields = [T.StructField(BLOCK, T.LongType()), T.StructField(ROW, T.LongType())]
    fields += [T.StructField(raw(c.name), T.StringType()) for c in table.columns]
    for c in table.columns:
        fields += [
            T.StructField(c.name, _SPARK_TYPES.get(c.type, T.StringType())),
            T.StructField(issue(c.name), T.StringType()),
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


def clean_batch(table: m.Table, batch: pa.RecordBatch, as_of: int, keep_raw: bool) -> pa.RecordBatch:
    """Pass 1 on one batch of raw lines (``BLOCK``, ``ROW`` and the ``_raw_`` text columns). The raw text is
    kept only where quarantine may need it: for every row when ``keep_raw``, else for rows missing a required
    value (later passes fill values, never empty them)."""
    rows = np.arange(batch.num_rows)
    text = {c.name: small_path_text(batch.column(raw(c.name))) for c in table.columns}
    cleaned = {c.name: clean_column(table, c, text[c.name], as_of) for c in table.columns}
    keep = np.full(batch.num_rows, keep_raw)
    if not keep_raw:
        for c in table.columns:
            if c.is_required:
                keep |= as_mask(pc.is_null(cleaned[c.name].values))
    kept = pa.array(keep)
    none = pa.scalar(None, pa.string())
    arrays = [batch.column(BLOCK), batch.column(ROW)]
    arrays += [pc.if_else(kept, text[c.name], none) for c in table.columns]
    for c in table.columns:
        values = cleaned[c.name].values
        if pa.types.is_timestamp(values.type):
            values = values.cast(pa.timestamp("us", tz="UTC"))  # Spark's timestamps are microseconds
        arrays += [values, pa.array(cleaned[c.name].issues(rows), pa.string())]
    return pa.RecordBatch.from_arrays(arrays, names=cells_schema(table).names)


BLOCKS = T.StructType([T.StructField(n, T.LongType()) for n in ("block", "rows", "first")])


def stage_cells(
    table: m.Table, batches: Iterable[pa.RecordBatch], as_of: int, keep_raw: bool, folder: Path
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
        swapped_in(target) as temp,
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


def clean_table(
    spark: SparkSession,
    root: Path,
    manifest: dict,
    table: m.Table,
    as_of: int,
    staging: Path,
    balanced: bool = False,
) -> DataFrame:
    """Pass 1, staged as Parquet (the raw JSON is parsed once), then line numbers and the key duplicates:
    raw text, typed clean values, issues, and which rows repeat a key. ``balanced``: a balance of the
    contract may quarantine the table's rows."""
    # Rows referencing a parent in the job, or in a group that must balance, can be rejected whatever their
    # values: they keep their raw text.
    keep_raw = balanced or any(c.is_required and c.references in manifest["tables"] for c in table.columns)
    folder = staging / "cells" / table.name
    folder.mkdir(parents=True, exist_ok=True)

    def stage(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        yield from stage_cells(table, batches, as_of, keep_raw, folder)

    blocks = read_raw(spark, root, manifest, table).mapInArrow(stage, BLOCKS).collect()
    cells = spark.read.schema(cells_schema(table)).parquet(str(folder))
    frame = numbered(cells, [tuple(row) for row in blocks])
    frame = mark_repeats(frame, list(table.primary_key), F.lit(True), DUP)
    return frame.withColumn(REJECT, F.lit(None).cast("string"))


def clean_columns(
    spark: SparkSession, root: Path, manifest: dict, contract: m.Contract, staging: Path
) -> dict[str, DataFrame]:
    """Pass 1 over every raw table of the job, parents first (``Contract.parent_first``)."""
    seconds = as_of_seconds(manifest)
    balanced = {c.table for c in contract.constraints if c.kind == m.BALANCE and c.severity == "error"}
    return {
        name: clean_table(spark, root, manifest, contract.tables[name], seconds, staging, name in balanced)
        for name in contract.parent_first
        if name in manifest["tables"]
    }
