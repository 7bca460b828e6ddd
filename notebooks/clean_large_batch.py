# Databricks notebook source
"""Large-batch cleaning in PySpark: one generated job's raw JSON lines in, silver, quarantine and gold Parquet
out, by the Spark engine (orchestrator.cleaning.spark), as the job's contract declares it.

On Databricks the job parameters arrive through widgets (job_id, user, parent_job_id, lake_root) and the
cluster's session runs it; run as a script (spark-submit or python) they are command-line options, and a
local Spark session is started, or, with --spark_connect, a session on that Spark Connect server (the local
one that stays up), its operations tagged with the job id and the session released at the end. Each
stage's end is printed, for a local runner to read from the log, and the outputs last, as JSON.
"""

# COMMAND ----------

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable
from pathlib import Path

from pyspark.sql import SparkSession

from orchestrator.cleaning.spark.connect import remote_session
from orchestrator.cleaning.spark.job import clean_job
from orchestrator.cleaning.spark.read import read_manifest
from orchestrator.cleaning.spark.session import DRIVER_MEMORY, local_session
from orchestrator.cleaning.stages import ended_line
from orchestrator.errors import run_notebook

PARAMETERS = ("job_id", "user", "parent_job_id", "lake_root")

# COMMAND ----------


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
    parser.add_argument("--spark_connect", default="", help="a Spark Connect server's address: no JVM here")
    return vars(parser.parse_args(list(argv) if argv is not None else None))


def print_stage(name: str, seconds: float) -> None:
    """Tell a stage's end on standard output, where a local run's log keeps it for the runner to read."""
    print(ended_line(name, seconds), flush=True)


def main(argv: Iterable[str] | None = None) -> dict:
    """Run the notebook: read the parameters, clean the job, print the outputs as JSON."""
    params = _parameters(argv)
    root = Path(params["lake_root"])
    read_manifest(root, params["user"], params["parent_job_id"])  # before Spark starts
    on_cluster = "dbutils" in globals()
    remote = "" if on_cluster else params.get("spark_connect", "")
    started = time.perf_counter()
    if on_cluster:
        spark = SparkSession.builder.getOrCreate()
    elif remote:
        spark = remote_session(remote, params["job_id"])
    else:
        spark = local_session(params["driver_memory"])
    print_stage("spark_start", time.perf_counter() - started)
    try:
        job = (params["user"], params["parent_job_id"], params["job_id"])
        result = clean_job(spark, root, *job, print_stage)
    finally:
        if remote:
            spark.stop()  # releases the run's session on the server, and what it cached there
    print(json.dumps(result, sort_keys=True))
    return result


# COMMAND ----------

if __name__ == "__main__":
    run_notebook(main, on_cluster="dbutils" in globals())
