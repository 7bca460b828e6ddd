"""Azurite, the Azure Storage emulator from npm (pinned in package.json), run for the tests on 127.0.0.1.

A pytest plugin (fixture ``azurite``) whose functions tests also import; it holds no assert, hence
PYTEST_DONT_REWRITE, which keeps pytest from warning that it was imported before being rewritten.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "node_modules" / ".bin"
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key: public, documented, valid only against the emulator.
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
START_TIMEOUT_S = 60


def ensure_installed() -> None:
    """Install the pinned Azurite with npm when node_modules lacks it."""
    if (BIN / "azurite-blob").exists() and (BIN / "azurite-queue").exists():
        return
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"], cwd=ROOT, check=True, capture_output=True, timeout=600
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Azurite:
    """Azurite's blob and queue services on free ports, with their data in ``location``."""

    location: Path
    blob_port: int = field(default_factory=free_port)
    queue_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def blob_url(self) -> str:
        return f"http://127.0.0.1:{self.blob_port}/{ACCOUNT}"

    @property
    def queue_url(self) -> str:
        return f"http://127.0.0.1:{self.queue_port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint={self.blob_url};QueueEndpoint={self.queue_url};"
        )

    def start(self, service: str) -> None:
        """Start ``blob`` or ``queue`` and wait until its port answers."""
        port = {"blob": self.blob_port, "queue": self.queue_port}[service]
        log = (self.location / f"{service}.log").open("ab")
        process = subprocess.Popen(
            [
                str(BIN / f"azurite-{service}"),
                f"--{service}Host",
                "127.0.0.1",
                f"--{service}Port",
                str(port),
                "--location",
                str(self.location),
                "--skipApiVersionCheck",
                "--disableTelemetry",
                "--silent",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.processes[service] = process
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop(service)
                text = (self.location / f"{service}.log").read_text(errors="replace")
                raise RuntimeError(f"azurite-{service} did not start on port {port}:\n{text[-2000:]}")
            time.sleep(0.1)

    def stop(self, service: str) -> None:
        """Stop one service gracefully (its data stays in ``location``)."""
        process = self.processes.pop(service, None)
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop_all(self) -> None:
        for service in list(self.processes):
            self.stop(service)


@contextlib.contextmanager
def running_azurite(*services: str) -> Iterator[Azurite]:
    """Azurite with the given services in a temporary workspace, stopped and removed afterwards."""
    ensure_installed()
    with tempfile.TemporaryDirectory(prefix="azurite-") as location:
        server = Azurite(Path(location))
        try:
            for service in services:
                server.start(service)
            yield server
        finally:
            server.stop_all()


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """One Azurite (blob and queue) shared by the whole test run."""
    with running_azurite("blob", "queue") as server:
        yield server
