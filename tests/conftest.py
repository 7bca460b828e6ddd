"""Shared fixtures: every test gets its own data root, so no test sees another's files."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import pytest

from orchestrator.config import DATA_DIR_ENV, Settings, get_settings

if TYPE_CHECKING:
    from orchestrator.cleaning.spark.connect import Endpoint


@pytest.fixture(scope="session", autouse=True)
def no_profile_after_cleaning() -> Iterator[None]:
    """No cleaning profiles its outputs in the background: many tests clean jobs, and profiling processes of
    their own would contend for the quality store and the cores. The tests of that profile turn it on."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ORCHESTRATOR_PROFILE_AFTER_CLEANING", "false")
        yield


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "data"
    monkeypatch.setenv(DATA_DIR_ENV, str(root))
    return root


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return get_settings()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ConnectServer(NamedTuple):
    point: Endpoint  # where it listens
    ui: str  # its Spark UI, where a test sees the Spark jobs it runs


@pytest.fixture(scope="session")
def spark_connect(tmp_path_factory) -> Iterator[ConnectServer]:
    """One local Spark Connect server for the whole session, as make run starts it (started by the first
    test that asks), with its UI on (on 127.0.0.1, a port of its own)."""
    from orchestrator.cleaning.spark.connect import Endpoint, LocalServer

    folder = tmp_path_factory.mktemp("spark-connect")
    ui = free_port()
    conf = {"spark.ui.enabled": "true", "spark.ui.port": str(ui)}
    with LocalServer(Endpoint("127.0.0.1", free_port()), folder / "server.log", conf=conf) as server:
        yield ConnectServer(server.point, f"http://127.0.0.1:{ui}")


pytest_plugins = ["tests.azurite", "tests.mariadb"]
