"""Publishing the Spark engine's outputs: Spark writes parts to a staging folder; the driver streams them, one
row group at a time, into the one Parquet file at the medallion path with the small path's Arrow types, then
swaps it in, while Spark goes on. A table's silver and quarantine come from one Spark write, which the driver
splits into the two files."""

from __future__ import annotations

import contextlib
from concurrent.futures import Executor, Future
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from orchestrator.cleaning.spark.frames import ISSUES, LINE, OUTPUT, RULE, raw, swapped_in, write_parquet
from orchestrator.cleaning.spark.settle import outputs_of
from orchestrator.domain import model as m

BATCH_ROWS = 1 << 16  # rows the driver streams at a time from Spark's parts into an output file
TIME = pa.timestamp("s", tz="UTC")  # how silver holds a time

_ARROW = {
    m.ID: pa.int64(),
    m.FK: pa.int64(),
    m.INT: pa.int64(),
    m.MONEY: pa.float64(),
    m.DECIMAL1: pa.float64(),
    m.TIMESTAMP: TIME,
}


def silver_schema(table: m.Table) -> pa.Schema:
    fields = [(c.name, _ARROW.get(c.type, pa.string())) for c in table.columns]
    return pa.schema([*fields, (LINE, pa.int64()), (ISSUES, pa.string())])


def quarantine_schema(table: m.Table) -> pa.Schema:
    return pa.schema(
        [*((c.name, pa.string()) for c in table.columns), (LINE, pa.int64()), (RULE, pa.string())]
    )


def publish_table(
    frame: DataFrame,
    table: m.Table,
    root: Path,
    paths_out: dict[str, str],
    staging: Path,
    driver: Executor,
) -> tuple[DataFrame, Future[dict[str, int]]]:
    """Write a settled table's silver and quarantine parts in one Spark write; ``driver`` assembles them into
    the files at ``paths_out["silver"]`` and ``paths_out["quarantine"]`` (the future's row counts). Returns
    the silver rows as Spark reads them back from the parts, for the children and gold."""
    parts = staging / "outputs" / table.name
    write_parquet(
        outputs_of(frame, table).write, parts
    )  # not partitioned: Spark would sort every row by output
    silver = silver_schema(table)
    texts = [*(raw(c.name) for c in table.columns), LINE, RULE]
    targets = {
        "silver": (root / paths_out["silver"], silver, silver.names),
        "quarantine": (root / paths_out["quarantine"], quarantine_schema(table), texts),
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
            temp = stack.enter_context(swapped_in(target))
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
