"""The one place that reads the environment (and, later, secrets and profiles)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_ENV = "ORCHESTRATOR_DATA_DIR"


@dataclass(frozen=True)
class Settings:
    """Resolved configuration of one process."""

    data_dir: Path

    @property
    def pool_cache_dir(self) -> Path:
        """Where value pools built with Faker are cached, keyed by locale and seed."""
        return self.data_dir / "cache" / "pools"


def get_settings() -> Settings:
    """Read the configuration now (cheap; tests change the environment between calls)."""
    data_dir = Path(os.environ.get(DATA_DIR_ENV) or "data").expanduser().resolve()
    return Settings(data_dir=data_dir)
