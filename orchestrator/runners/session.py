"""Runs the Spark engine's cleaning in this process's own Spark session: how a scheduled drain on a cluster
(notebooks/drain_queue.py) cleans its large batches without submitting another run. Each run is a thread
whose Spark jobs form one job group, so cancelling stops them."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from orchestrator.health import ConnectionCheck
from orchestrator.runners.base import (
    CANCELLED,
    FAILED,
    RUNNING,
    SUCCEEDED,
    RunnerError,
    RunRequest,
    RunStatus,
)
from orchestrator.runners.local_spark import spark_prerequisites


@dataclass
class _Run:
    spark: object  # the SparkSession the run uses
    status: RunStatus


class SessionRunner:
    """Cleans jobs with the Spark engine's ``clean_job`` in the active Spark session (a local one if there is
    none), reading the lake at ``lake_root``."""

    name = "spark_session"

    def __init__(self, lake_root: Path) -> None:
        self.lake_root = lake_root
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()

    def submit(self, request: RunRequest) -> RunStatus:
        run_id = f"{request.job_id}-{uuid.uuid4().hex[:8]}"
        started = RunStatus(state=RUNNING, run_id=run_id, message="in this Spark session")
        spark = self._session()  # the submitting thread's: a new thread has no active session of its own
        thread = threading.Thread(target=self._clean, args=(spark, run_id, request), daemon=True)
        with self._lock:
            self._runs[run_id] = _Run(spark, started)
        thread.start()
        return started

    def status(self, run_id: str) -> RunStatus:
        with self._lock:
            return self._run(run_id).status

    def cancel(self, run_id: str) -> None:
        with self._lock:
            run = self._run(run_id)
            if run.status.terminal:
                return
            run.status = RunStatus(state=CANCELLED, run_id=run_id, message="cancelled on request")
            spark = run.spark
        spark.sparkContext.cancelJobGroup(run_id)

    def test_connection(self) -> ConnectionCheck:
        """The session is this process's (on a cluster, the cluster's): pyspark must be importable here."""
        return spark_prerequisites(java=False)

    def _clean(self, spark, run_id: str, request: RunRequest) -> None:
        from orchestrator.cleaning.spark.job import clean_job

        spark.sparkContext.setJobGroup(run_id, f"clean {request.job_id}", interruptOnCancel=True)
        try:
            clean_job(spark, self.lake_root, request.user, request.parent_job_id, request.job_id)
            ended = RunStatus(state=SUCCEEDED, run_id=run_id)
        except Exception as exc:  # the run's failure is its status, as a service would report it
            ended = RunStatus(state=FAILED, run_id=run_id, message=str(exc) or type(exc).__name__)
        with self._lock:
            if not self._runs[run_id].status.terminal:
                self._runs[run_id].status = ended

    @staticmethod
    def _session():
        from pyspark.sql import SparkSession

        from orchestrator.cleaning.spark.session import local_session

        return SparkSession.getActiveSession() or local_session()

    def _run(self, run_id: str) -> _Run:
        try:
            return self._runs[run_id]
        except KeyError:
            raise RunnerError(f"Spark session run {run_id} was not started by this process") from None
