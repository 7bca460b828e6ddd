"""Shared fixtures: every test gets its own data root, so no test sees another's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import DATA_DIR_ENV, Settings, get_settings


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "data"
    monkeypatch.setenv(DATA_DIR_ENV, str(root))
    return root


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return get_settings()


pytest_plugins = ["tests.azurite", "tests.mariadb"]
