"""Runs the large-batch cleaning notebook on local Spark, in a child process so a crash cannot take the
worker down. The child starts a JVM of its own, or, where ORCHESTRATOR_SPARK_CONNECT names a Spark Connect
server (the local one ``make run`` keeps up), is a client of that server and starts none
(orchestrator.cleaning.spark.connect); either way the run is its child process, followed by its pid."""

from __future__ import annotations

import contextlib
import importlib.metadata
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pyarrow.parquet as pq

from orchestrator import REPOSITORY, child_environment
from orchestrator.cleaning import stages
from orchestrator.cleaning.spark import connect
from orchestrator.clouds import cloud_of
from orchestrator.config import Settings, lookup
from orchestrator.errors import InvalidInput
from orchestrator.health import ConnectionCheck
from orchestrator.jobs.holders import alive, process_started
from orchestrator.runners.base import (
    CANCELLED,
    FAILED,
    RUNNING,
    SUCCEEDED,
    RunnerError,
    RunRequest,
    RunStatus,
)
from orchestrator.storage import paths

NOTEBOOK = REPOSITORY / "notebooks" / "clean_large_batch.py"
SERVER_STOP_GRACE = 20.0  # seconds a run interrupted on its server has to end on that error by itself
DRIVER_MEMORY_ENV = "ORCHESTRATOR_SPARK_DRIVER_MEMORY"


@dataclass(frozen=True)
class LocalSparkConfig:
    """Where the lake is, where run logs go, how much memory the Spark driver may take, and the Spark
    Connect server runs use (None: each run starts its own JVM)."""

    lake_root: Path
    runs_dir: Path
    driver_memory: str = ""  # empty: the notebook's default
    python: str = field(default=sys.executable)
    server: connect.Endpoint | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalSparkConfig:
        """The local lake of the settings; a cloud's lake (azure, aliyun) is not on this machine."""
        if not cloud_of(settings).lake_on_disk:
            raise InvalidInput(
                "engine",
                f"local Spark reads a local lake; with the {settings.profile} profile run Spark on a cluster "
                "that reaches the lake (ORCHESTRATOR_SPARK_RUNNER)",
            )
        return cls(
            lake_root=settings.data_dir,
            runs_dir=runs_dir(settings),
            driver_memory=lookup(DRIVER_MEMORY_ENV),
            server=connect.endpoint(),
        )


def runs_dir(settings: Settings) -> Path:
    """Where local runs' logs go, one per run, named after the run (the job id and a suffix)."""
    return settings.state_dir / "spark-runs"


def remove_run_logs(settings: Settings, job_id: str) -> None:
    """Remove the logs of every local run of a job (for a deleted job: they quote its data's errors)."""
    for log in runs_dir(settings).glob(f"{paths.check_job_id(job_id)}-{'?' * 8}.log"):
        log.unlink(missing_ok=True)


def published_outputs(log: Path, lake_root: Path) -> tuple[dict[str, Any] | None, str]:
    """The outputs a finished run published, as the last line of its log lists them, each file checked whole
    (its Parquet footer read) with the rows the run counted in it; else None and why not. The notebook prints
    that line only after every output file was swapped into place."""
    text = log.read_text(errors="replace") if log.exists() else ""
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1]) if lines else None
    except ValueError:
        result = None
    if not isinstance(result, dict) or not {"tables", "silver", "quarantine", "gold"} <= result.keys():
        return None, "its process ended before it published its outputs"
    counted = [
        (result[kind][name], counts[key])
        for name, counts in result["tables"].items()
        for kind, key in (("silver", "rows_out"), ("quarantine", "quarantined"))
    ] + [(path, None) for path in result["gold"].values()]
    for path, rows in counted:
        try:
            found = pq.read_metadata(lake_root / path).num_rows
        except (OSError, ValueError) as error:
            return None, f"its output {path} is not whole: {error}"
        if rows is not None and found != rows:
            return None, f"its output {path} holds {found:,} rows, not the {rows:,} the run counted"
    return result, ""


class _Orphan:
    """A run's notebook process that a worker now gone started: followed by its pid and start time, ended,
    if it must be, by its process group; it succeeded if it published its outputs (published_outputs)."""

    def __init__(self, pid: int, started: float | None, log: Path, lake_root: Path) -> None:
        self.pid, self.started, self.log, self.lake_root = pid, started, log, lake_root
        self.reason = ""

    def poll(self) -> int | None:
        if alive(self.pid, self.started):
            return None
        result, self.reason = published_outputs(self.log, self.lake_root)
        return 0 if result is not None else 1

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(NOTEBOOK), timeout or 0)
            time.sleep(0.2)
        return code


def end_process(pid: int, started: float | None) -> bool:
    """End a notebook process (and the JVM in its process group) if it still runs: terminate, then kill if it
    lingers; returns whether it ran. A run on a Spark Connect server (found by its command line) has its work
    there interrupted first, and a moment to end on that error by itself (removing its staging); once it is
    gone, whatever it began meanwhile is interrupted and its session there released."""
    if not alive(pid, started):
        return False
    on_server = _on_server(pid)
    if on_server is not None and connect.stop_run(*on_server):
        deadline = time.monotonic() + SERVER_STOP_GRACE
        while alive(pid, started) and time.monotonic() < deadline:
            time.sleep(0.2)
    _signal_until_gone(pid, started)
    if on_server is not None:
        connect.stop_run(*on_server, release=True)
    return True


def _signal_until_gone(pid: int, started: float | None) -> None:
    """Terminate a process (its group, if it leads one), then kill it if it lingers."""
    if not alive(pid, started):
        return
    group = os.getpgid(pid) == pid  # started in a session of its own: its group holds its JVM
    for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pid, sig) if group else os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while alive(pid, started) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not alive(pid, started):
            return


def _on_server(pid: int) -> tuple[str, str] | None:
    """A notebook process's Spark Connect address and job id (its operations' tag), from its command line;
    None for a run with a JVM of its own."""
    try:
        command = psutil.Process(pid).cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    options = dict(itertools.pairwise(command))
    if str(NOTEBOOK) not in command or not options.get("--spark_connect"):
        return None
    return options["--spark_connect"], options.get("--job_id", "")


def remove_staging(lake_root: Path, job_id: str) -> None:
    """Remove a job's Spark staging in the lake (``tmp/spark/<job>``), and the staging folders while no other
    job uses them."""
    staging = lake_root / "tmp" / "spark" / paths.check_job_id(job_id)
    shutil.rmtree(staging, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.removedirs(staging.parent)


def end_runs_of(job_id: str) -> int:
    """End every local run of a job still going on this host (a run whose worker was lost, found by the
    notebook's command line), so no JVM outlives its job; returns how many were ended."""
    ended = 0
    for process in psutil.process_iter(["pid", "cmdline", "create_time"]):
        command = process.info["cmdline"] or []
        pairs = set(itertools.pairwise(command))
        if str(NOTEBOOK) in command and ("--job_id", job_id) in pairs:
            ended += end_process(process.info["pid"], round(process.info["create_time"], 2))
    return ended


@dataclass
class _Run:
    process: subprocess.Popen | _Orphan
    log: Path
    cancelled: bool = False
    read: int = 0  # bytes of the log read for the stages it tells
    stages: list[tuple[str, float]] = field(default_factory=list)  # told so far, in order

    def told(self) -> tuple[tuple[str, float], ...]:
        """The notebook's stages ended so far, read from the whole lines its log gained since last asked."""
        with self.log.open("rb") as handle:
            handle.seek(self.read)
            gained = handle.read()
        whole = gained[: gained.rfind(b"\n") + 1]  # a line still being written is read next time
        self.read += len(whole)
        for line in whole.decode(errors="replace").splitlines():
            if (told := stages.told_stage(line)) is not None:
                self.stages.append(told)
        return tuple(self.stages)


class LocalSparkRunner:
    """Starts the notebook as ``python notebooks/clean_large_batch.py --job_id …`` (a local[2] Spark session
    bound to 127.0.0.1, or with ``--spark_connect`` a session on the server of the config); runs are known to
    the runner that started them."""

    name = "local_spark"

    def __init__(self, config: LocalSparkConfig) -> None:
        self.config = config
        self._runs: dict[str, _Run] = {}

    def submit(self, request: RunRequest) -> RunStatus:
        """Start the notebook in its own process group, its output going to the run's log."""
        cfg = self.config
        run_id = f"{request.job_id}-{uuid.uuid4().hex[:8]}"  # see remove_run_logs
        parameters = {"lake_root": str(cfg.lake_root), **request.run_parameters()}
        if cfg.driver_memory:
            parameters["driver_memory"] = cfg.driver_memory
        if cfg.server is not None:
            parameters["spark_connect"] = connect.run_address(cfg.server, run_id)
        command = [cfg.python, str(NOTEBOOK)]
        for key, value in parameters.items():
            command += [f"--{key}", value]
        cfg.runs_dir.mkdir(parents=True, exist_ok=True)
        log = cfg.runs_dir / f"{run_id}.log"
        env = child_environment(SPARK_LOCAL_IP="127.0.0.1")
        with log.open("wb") as output:
            process = subprocess.Popen(
                command,
                cwd=REPOSITORY,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: cancel stops the JVM with it
            )
        self._runs[run_id] = _Run(process, log)
        return RunStatus(state=RUNNING, run_id=run_id, message=f"log: {log}")

    def status(self, run_id: str) -> RunStatus:
        """RUNNING while the process lives; then SUCCEEDED, CANCELLED, or FAILED with the notebook's error;
        with the stages the notebook has told in its log."""
        run = self._run(run_id)
        code = run.process.poll()  # before the log is read: a run seen ended has told all its stages
        told = run.told()
        if code is None:
            return RunStatus(state=RUNNING, run_id=run_id, message=f"log: {run.log}", stages=told)
        if run.cancelled:
            return RunStatus(state=CANCELLED, run_id=run_id, message="cancelled on request", stages=told)
        if code == 0:
            return RunStatus(state=SUCCEEDED, run_id=run_id, message=f"log: {run.log}", stages=told)
        reason = run.process.reason if isinstance(run.process, _Orphan) else _failure(run.log, code)
        failure = f"{reason} (log: {run.log})"
        return RunStatus(state=FAILED, run_id=run_id, message=failure, stages=told)

    def cancel(self, run_id: str) -> None:
        """Stop the notebook and its JVM (terminate, then kill if they linger; on a Spark Connect server its
        work there interrupted first, see end_process), then remove its Spark staging."""
        run = self._run(run_id)
        if run.process.poll() is not None:
            return
        run.cancelled = True
        end_process(run.process.pid, process_started(run.process.pid))
        run.process.wait()
        remove_staging(self.config.lake_root, run_id.rsplit("-", 1)[0])

    def process_of(self, run_id: str) -> dict[str, Any]:
        """Where a run started here runs: its notebook process's pid and start time, for the job's holder."""
        pid = self._run(run_id).process.pid
        return {"run_id": run_id, "pid": pid, "started": process_started(pid)}

    def adopt(self, run_id: str, pid: int, started: float | None) -> None:
        """Follow a run another worker of this host started (now gone) by its process: its status and
        cancel then work as for a run started here. RunnerError if its log is not on this host."""
        log = self.config.runs_dir / f"{run_id}.log"
        if not log.is_file():
            raise RunnerError(f"local Spark run {run_id} has no log on this host ({log})")
        if run_id not in self._runs:
            self._runs[run_id] = _Run(_Orphan(pid, started, log, self.config.lake_root), log)

    def test_connection(self) -> ConnectionCheck:
        """Spark can start here: Java where pyspark looks for it, and pyspark in this environment; with a
        Spark Connect server, that it answers."""
        check = spark_prerequisites(java=True)
        if not check.ok or self.config.server is None:
            return check
        try:
            version = connect.server_version(self.config.server)
        except Exception as error:
            return ConnectionCheck(False, str(error), connect.CONNECT_ENV)
        point = self.config.server
        return ConnectionCheck(
            True,
            f"local Spark runs on the Spark Connect server at {point.host}:{point.port} (Spark {version})",
        )

    def _run(self, run_id: str) -> _Run:
        try:
            return self._runs[run_id]
        except KeyError:
            raise RunnerError(f"local Spark run {run_id} was not started by this worker") from None


def spark_prerequisites(java: bool) -> ConnectionCheck:
    """pyspark in this environment and, when Spark is started here (``java``), Java where pyspark looks for
    it: ``$JAVA_HOME/bin/java``, else ``java`` on the PATH."""
    try:
        pyspark = importlib.metadata.version("pyspark")
    except importlib.metadata.PackageNotFoundError:
        return ConnectionCheck(
            False, "pyspark is not installed here; install requirements.txt (make run does)"
        )
    if not java:
        return ConnectionCheck(True, f"pyspark {pyspark} in this process's Spark session")
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not found or not os.access(found, os.X_OK):
        where = f"JAVA_HOME ({home}) holds no bin/java" if home else "there is no java on the PATH"
        return ConnectionCheck(
            False,
            f"local Spark needs Java 17 or newer and {where}; install a JDK or set JAVA_HOME",
            "JAVA_HOME",
        )
    return ConnectionCheck(True, f"local Spark can start: Java at {found}, pyspark {pyspark}")


def _failure(log: Path, code: int) -> str:
    """The notebook's own error line, else the last line it printed."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    if errors:
        return errors[-1]
    return lines[-1] if lines else f"the notebook exited with code {code} and printed nothing"
