"""The Spark session the engine runs in: a local one started here, and the settings the cleaning relies on in
any session (also a cluster's own)."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

from pyspark.sql import SparkSession

from orchestrator import REPOSITORY

DRIVER_MEMORY = "4g"  # local Spark's heap: enough for the benchmark's 5M driving rows
ARROW_ROWS = 1 << 16  # raw lines per Arrow batch sent to a Python worker


def local_session(driver_memory: str = DRIVER_MEMORY, parallelism: int = 2) -> SparkSession:
    """A local Spark bound to 127.0.0.1 with the UI off, bounded memory and its scratch in a temp folder. In
    local mode the driver is also the executor: its heap holds the work of every task."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # Python workers import the engine's modules: they see the repository the way this process does.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPOSITORY), os.environ.get("PYTHONPATH")) if p
    )
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


def configure(spark: SparkSession) -> None:
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
