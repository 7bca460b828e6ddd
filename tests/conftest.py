"""Shared fixtures: every test gets its own data root, so no test sees another's files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.config import DATA_DIR_ENV, Settings, get_settings


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


pytest_plugins = ["tests.azurite", "tests.mariadb"]
