"""The lake: a Storage protocol, its local filesystem implementation and the medallion paths."""

from orchestrator.storage.base import Storage, WrittenFile
from orchestrator.storage.local import LocalLake

__all__ = ["LocalLake", "Storage", "WrittenFile"]
