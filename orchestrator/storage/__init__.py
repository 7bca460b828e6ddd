"""The lake: a Storage protocol, its local filesystem implementation and the medallion paths."""

from __future__ import annotations

from orchestrator.clouds import cloud_of
from orchestrator.config import Settings, get_settings
from orchestrator.storage.base import Storage, WrittenFile
from orchestrator.storage.local import LocalLake

__all__ = ["LocalLake", "Storage", "WrittenFile", "open_lake"]


def open_lake(settings: Settings | None = None) -> Storage:
    """The lake of the configured profile, as its cloud's entry names it (orchestrator.clouds): local files,
    ADLS Gen2 for ``azure``, OSS for ``aliyun``; a cloud's SDK loads only for its own profile."""
    settings = settings or get_settings()
    return cloud_of(settings).open_lake(settings)
