"""Local Spark that stays up: a Spark Connect server started once (``make run`` starts it beside the worker,
bound to 127.0.0.1), and each local run a client of it, so only the server's first job pays the JVM's start
and warm-up.

ORCHESTRATOR_SPARK_CONNECT names the server (``sc://127.0.0.1:15002``); unset, each local run starts a JVM
of its own as before. Each run talks to the server in a session of its own, its id derived from the run id
(``run_address``), with its operations tagged with its job id, so whoever stops the run (its runner, or a
worker recovering it) can interrupt that work on the shared server and release the session (``stop_run``)
knowing only the run.

Run as ``python -m orchestrator.cleaning.spark.connect``: starts the server the setting names and keeps it
until stopped (SIGTERM or Ctrl-C); with the setting unset it says so and exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator import child_environment
from orchestrator.config import lookup
from orchestrator.errors import InvalidInput, WorkbenchError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

CONNECT_ENV = "ORCHESTRATOR_SPARK_CONNECT"
# What pyspark sets in os.environ once a process opens a Spark Connect session, and never clears: from then on
# every session that process (or a child it starts) builds is a Connect client.
REMOTE_MODE = "SPARK_CONNECT_MODE_ENABLED"
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
SERVER_WAIT = 120.0  # how long a run waits for a server that does not listen yet
READY_SECONDS = 300.0  # a first start on a busy machine: the JVM, Spark, then the gRPC service
LOOPBACK = ("127.0.0.1", "localhost")
_ADDRESS = re.compile(r"sc://(?P<host>[A-Za-z0-9.\-]+):(?P<port>[0-9]{1,5})/?(?P<params>;.*)?")
PR_SET_PDEATHSIG = 1  # prctl: the signal a process gets when its parent ends
_QUICK = {"max_retries": 2, "initial_backoff": 100, "max_backoff": 1000}  # a stop does not wait long


@dataclass(frozen=True)
class Endpoint:
    """Where a Spark Connect server listens, and the connection's own parameters (``;token=...``)."""

    host: str
    port: int
    params: str = ""

    @property
    def address(self) -> str:
        return f"sc://{self.host}:{self.port}/{self.params}"

    def listening(self, timeout: float = 1.0) -> bool:
        """Whether something accepts connections there."""
        with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout):
            return True
        return False


def endpoint(value: str | None = None) -> Endpoint | None:
    """The server ORCHESTRATOR_SPARK_CONNECT names (or ``value``); None when unset. InvalidInput, naming the
    setting, for a value that is not a Spark Connect address."""
    value = lookup(CONNECT_ENV) if value is None else value.strip()
    if not value:
        return None
    match = _ADDRESS.fullmatch(value)
    if match is None or not 0 < int(match["port"]) < 65536:
        raise InvalidInput(
            CONNECT_ENV,
            f"{value[:80]!r} is not a Spark Connect address; use sc://HOST:PORT, such as "
            "sc://127.0.0.1:15002, or leave it unset for a JVM per local run",
        )
    return Endpoint(match["host"], int(match["port"]), match["params"] or "")


def run_session_id(run_id: str) -> str:
    """The server session of a run: a UUID derived from the run id, so anyone knowing the run finds it."""
    return str(uuid.UUID(bytes=hashlib.sha256(run_id.encode()).digest()[:16], version=4))


def run_address(server: Endpoint, run_id: str) -> str:
    """The address a run connects with: the server's, in the run's own session."""
    params = ";".join(p for p in (server.params.strip(";"), f"session_id={run_session_id(run_id)}") if p)
    return f"sc://{server.host}:{server.port}/;{params}"


def remote_session(address: str, tag: str) -> SparkSession:
    """A session on the server at ``address`` (a run's, see ``run_address``) whose operations carry ``tag``
    (the job id), to be interrupted by it; WorkbenchError, naming the setting, if no server listens there
    within SERVER_WAIT seconds (one starting beside the worker may still be on its way)."""
    from pyspark.sql import SparkSession

    point = endpoint(address)
    if point is not None:
        _listening(point, SERVER_WAIT)
    spark = SparkSession.builder.remote(address).getOrCreate()
    spark.addTag(tag)
    return spark


def stop_run(address: str, tag: str, release: bool = False) -> list[str]:
    """Interrupt the operations tagged ``tag`` in the session at ``address`` (a run's) and, with ``release``
    (once the run's process is gone), release that session and what it cached; returns the ids of the
    operations interrupted. A server that does not listen runs nothing: nothing is interrupted."""
    from pyspark.errors import PySparkException
    from pyspark.sql.connect.client import SparkConnectClient

    point = endpoint(address)
    if point is None or not point.listening():
        return []
    client = SparkConnectClient(address, retry_policy=_QUICK)
    try:
        interrupted = client.interrupt_tag(tag) or []
        if release:
            # An operation interrupted a moment ago may not have settled: the server then keeps the session
            # until it has been idle for its timeout.
            with contextlib.suppress(PySparkException):
                client.release_session()
        return interrupted
    except PySparkException as error:
        if "SESSION_CLOSED" in str(error):  # released before (the run ended): nothing is left of it
            return []
        raise
    finally:
        client.close()


def server_version(point: Endpoint) -> str:
    """The Spark version of the server at ``point``; WorkbenchError, naming the setting, if none answers."""
    from pyspark.sql.connect.client import SparkConnectClient

    _listening(point)
    client = SparkConnectClient(point.address, retry_policy=_QUICK)
    try:
        return client._analyze(method="spark_version").spark_version
    finally:
        with contextlib.suppress(Exception):
            client.release_session()
        client.close()


def _listening(point: Endpoint, wait: float = 0.0) -> None:
    """WorkbenchError, naming the setting, unless the server listens (within ``wait`` seconds)."""
    deadline = time.monotonic() + wait
    while not point.listening():
        if time.monotonic() >= deadline:
            raise WorkbenchError(
                f"no Spark Connect server answers at {point.host}:{point.port} ({CONNECT_ENV}); start it "
                "with make run (or python -m orchestrator.cleaning.spark.connect), or unset the setting"
            )
        time.sleep(0.5)


class LocalServer:
    """A Spark Connect server on this machine, for ``point`` (bound to 127.0.0.1): local Spark with the same
    settings as a local session (session.local_conf), its Python workers importing the engine from this
    repository, its scratch in a temp folder removed when it stops, its output in ``log``."""

    def __init__(
        self,
        point: Endpoint,
        log: Path,
        driver_memory: str = "",  # empty: a local session's default
        conf: dict[str, str] | None = None,
    ) -> None:
        if point.host not in LOOPBACK:
            raise InvalidInput(
                CONNECT_ENV,
                f"a local Spark Connect server listens on 127.0.0.1 only, not on {point.host}; use "
                f"sc://127.0.0.1:{point.port}",
            )
        self.point, self.log, self.driver_memory = point, log, driver_memory
        self.conf = conf or {}  # settings of its own, over the local ones (such as its UI, to watch it)
        self.process: subprocess.Popen | None = None
        self.scratch: Path | None = None

    def command(self, scratch: Path) -> list[str]:
        from pyspark.find_spark_home import _find_spark_home

        from orchestrator.cleaning.spark.session import DRIVER_MEMORY, local_conf

        conf = (
            local_conf(scratch, self.driver_memory or DRIVER_MEMORY)
            | {
                "spark.connect.grpc.binding.address": "127.0.0.1",
                "spark.connect.grpc.binding.port": str(self.point.port),
                "spark.log.level": "WARN",  # a server that stays up keeps its log to what needs a look
            }
            | self.conf
        )
        command = [str(Path(_find_spark_home()) / "bin" / "spark-submit"), "--class", SERVER_CLASS]
        command += ["--master", "local[2]", "--name", "Spark Connect server"]
        for key, value in conf.items():
            command += ["--conf", f"{key}={value}"]
        return command

    def start(self, timeout: float = READY_SECONDS) -> LocalServer:
        """Start the server and wait until it listens; WorkbenchError, with the end of its log, if it stops
        first or does not listen in ``timeout`` seconds, or if something else already listens there."""
        if self.point.listening():
            raise WorkbenchError(f"something already listens at 127.0.0.1:{self.point.port} ({CONNECT_ENV})")
        from pyspark.find_spark_home import _find_spark_home

        from orchestrator.cleaning.spark.session import python_environment

        self.scratch = Path(tempfile.mkdtemp(prefix="spark-connect-"))
        env = child_environment(SPARK_HOME=_find_spark_home())
        python_environment(env)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                self.command(self.scratch),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop ends its JVM and Python workers
                preexec_fn=_end_with_parent,
            )
        deadline = time.monotonic() + timeout
        while not self.point.listening():
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace").splitlines()[-5:]
                self.stop()
                raise WorkbenchError(
                    f"the Spark Connect server did not start at 127.0.0.1:{self.point.port}: "
                    + " | ".join(tail)
                )
            time.sleep(0.5)
        return self

    def stop(self) -> None:
        """Stop the server (terminate, then kill if it lingers) and remove its scratch."""
        if self.process is not None and self.process.poll() is None:
            for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, sig)
                try:
                    self.process.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> LocalServer:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _end_with_parent() -> None:
    """In the server's process, before it runs Spark: Linux ends it (SIGTERM) when the process that started
    it ends, however that one ends (even killed), so no server outlives its owner."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def main() -> int:
    """Serve the setting's server until stopped (see the module)."""
    from orchestrator.config import get_settings
    from orchestrator.runners.local_spark import DRIVER_MEMORY_ENV

    point = endpoint()
    if point is None:
        print(f"{CONNECT_ENV} is not set: each local Spark run starts a JVM of its own", flush=True)
        return 0
    if point.listening():
        print(f"a Spark Connect server already answers at {point.address}; local runs use it", flush=True)
        return 0
    log = get_settings().state_dir / "spark-connect.log"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # make run's stop: the server stops with it
    with LocalServer(point, log, lookup(DRIVER_MEMORY_ENV)) as server:
        print(f"Spark Connect server at {point.address} (log: {log})", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.process.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
