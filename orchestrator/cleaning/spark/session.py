"""The Spark session the engine runs in: a local one started here (or its settings, for a local Spark Connect
server), and the settings the cleaning relies on in any session (also a cluster's own or a remote one)."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import MutableMapping
from pathlib import Path

from pyspark.sql import SparkSession

from orchestrator import REPOSITORY

DRIVER_MEMORY = "4g"  # local Spark's heap: enough for the benchmark's 5M driving rows
ARROW_ROWS = 1 << 16  # raw lines per Arrow batch sent to a Python worker


def local_session(driver_memory: str = DRIVER_MEMORY, parallelism: int = 2) -> SparkSession:
    """A local Spark in this process, bound to 127.0.0.1 with the UI off, bounded memory and its scratch in a
    temp folder. In local mode the driver is also the executor: its heap holds the work of every task."""
    python_environment(os.environ)
    scratch = Path(tempfile.mkdtemp(prefix="spark-"))
    # Registered before the session exists, so it runs after Spark's own exit handler has stopped it.
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    builder = SparkSession.builder.master(f"local[{parallelism}]").appName("clean_large_batch")
    for key, value in local_conf(scratch, driver_memory, parallelism).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def python_environment(env: MutableMapping[str, str]) -> None:
    """What a local Spark's Python workers need in ``env``: this Python, and the repository on the path, so
    they import the engine's modules the way this process does; Spark bound to 127.0.0.1."""
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPOSITORY), env.get("PYTHONPATH")) if p)


def local_conf(scratch: Path, driver_memory: str = DRIVER_MEMORY, parallelism: int = 2) -> dict[str, str]:
    """The settings of a local Spark (started in this process, or as a Spark Connect server): UI off, bound
    to 127.0.0.1, bounded memory, its scratch under ``scratch``."""
    return {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.ui.retainedJobs": "50",
        "spark.ui.retainedStages": "50",
        "spark.sql.ui.retainedExecutions": "10",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.memory": driver_memory,
        "spark.driver.maxResultSize": "64m",
        "spark.sql.shuffle.partitions": str(parallelism * 2),
        "spark.default.parallelism": str(parallelism),
        "spark.local.dir": str(scratch / "local"),
        "spark.sql.warehouse.dir": str(scratch / "warehouse"),
        # Wide rows make long generated methods, which the JIT would otherwise leave interpreted.
        "spark.driver.extraJavaOptions": f"-Djava.io.tmpdir={scratch} -XX:-DontCompileHugeMethods",
        "spark.pyspark.python": sys.executable,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.ansi.enabled": "false",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
    }


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
