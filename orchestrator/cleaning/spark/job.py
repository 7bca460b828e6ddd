"""One cleaning job on Spark, the passes in order: read and pass 1 (read), repairs across tables (repairs),
then per table in the contract's order settle and publish (settle, publish), then gold.

Each table is settled against its parents' silver as Spark wrote it: the driver assembles each output file
while Spark goes on. Gold is the contract's, built as the small path builds it (orchestrator.cleaning.gold)
from the silver files once they are published, so both engines write the same gold.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession

from orchestrator.cleaning.gold import Silver, build_gold, streamed
from orchestrator.cleaning.spark import read, repairs, settle
from orchestrator.cleaning.spark.frames import swapped_in
from orchestrator.cleaning.spark.publish import publish_table
from orchestrator.cleaning.spark.session import configure
from orchestrator.cleaning.stages import Stage, stage_timer
from orchestrator.contracts import job_contract
from orchestrator.domain import model as m
from orchestrator.storage import LocalLake, paths


def clean_job(
    spark: SparkSession,
    root: Path,
    user: str,
    parent_id: str,
    job_id: str,
    tell: Stage = lambda _name, _seconds: None,
) -> dict:
    """Clean one generated job, as its contract (the copy beside its raw files) declares it, into silver,
    quarantine and gold under ``root``; returns the outputs. ``tell`` hears each stage's end (the names of
    orchestrator.cleaning.stages.NOTEBOOK after spark_start)."""
    ended = stage_timer(tell)
    configure(spark)
    manifest = read.read_manifest(root, user, parent_id)
    contract = job_contract(LocalLake(root), user, parent_id).contract
    staging = root / "tmp" / "spark" / paths.check_job_id(job_id)
    result: dict = {"tables": {}, "silver": {}, "quarantine": {}, "gold": {}}
    silver: dict[str, DataFrame] = {}
    try:
        with ThreadPoolExecutor(1) as driver:
            assembled = {}
            frames = read.clean_columns(spark, root, manifest, contract, staging)
            frames = repairs.repair(frames, contract, staging)
            ended("spark_clean")
            for name, frame in frames.items():
                table = contract.tables[name]
                settled = settle.settle(frame, table, contract, silver, staging)
                result["silver"][name] = paths.silver_table(user, parent_id, job_id, name)
                result["quarantine"][name] = paths.quarantine_table(user, parent_id, job_id, name)
                paths_out = {kind: result[kind][name] for kind in ("silver", "quarantine")}
                silver[name], assembled[name] = publish_table(
                    settled, table, root, paths_out, staging, driver
                )
            ended("spark_settle")
            for name in result["silver"]:
                rows, rows_in = assembled[name].result(), manifest["tables"][name]["rows"]
                result["tables"][name] = {
                    "rows_in": rows_in,
                    "rows_out": rows["silver"],
                    "quarantined": rows["quarantine"],
                    "duplicates_removed": rows_in - rows["silver"] - rows["quarantine"],
                }
            ended("spark_write")
            for name, table in build_gold(contract, _published_silver(root, contract, result)).items():
                result["gold"][name] = paths.gold_table(user, parent_id, job_id, name)
                target = root / result["gold"][name]
                target.parent.mkdir(parents=True, exist_ok=True)
                with swapped_in(target) as temp:
                    pq.write_table(table, temp, compression="zstd")
            ended("spark_gold")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.removedirs(staging.parent)  # the staging folders, while no other job uses them
    return result


def _published_silver(root: Path, contract: m.Contract, result: dict) -> Silver:
    """The silver tables the contract's gold reads, streamed from the files just published: the contract's
    columns."""
    wanted = {name for gold in contract.gold for name in gold.reads} & set(result["silver"])
    return {
        name: streamed(root / result["silver"][name], contract.tables[name].column_names) for name in wanted
    }
