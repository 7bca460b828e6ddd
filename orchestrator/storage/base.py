"""The Storage protocol every lake (local filesystem, ADLS Gen2) implements."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import BinaryIO, Protocol


@dataclass(frozen=True)
class WrittenFile:
    """What a completed write produced."""

    path: str
    size: int
    sha256: str


class Writer(Protocol):
    """A file being written; it becomes visible under its path only when the context exits cleanly."""

    def write(self, data: bytes) -> None: ...

    @property
    def result(self) -> WrittenFile: ...


class Storage(Protocol):
    """A lake addressed by relative, forward-slash paths such as ``raw/alice/g-123/orders.jsonl``."""

    def open_write(self, path: str, *, overwrite: bool = False) -> AbstractContextManager[Writer]:
        """Write a file atomically; without ``overwrite`` an existing file is an AlreadyExists error.

        Write-once files (raw) are made durable before they appear; overwritten ones (silver, gold) are
        derived from raw and reproducible, so they are atomic but not forced to disk one by one."""
        ...

    def open_read(self, path: str) -> BinaryIO:
        """Read a file as a stream; NotFound if it does not exist."""
        ...

    def exists(self, path: str) -> bool: ...

    def list(self, prefix: str) -> Iterator[str]:
        """Paths of the files under ``prefix`` (a folder), sorted."""
        ...

    def delete_prefix(self, prefix: str) -> None:
        """Remove a folder and everything in it (a failed job's partial output, a deleted job's files)."""
        ...

    def free_bytes(self) -> int | None:
        """Bytes the lake can still take, or None where no such limit applies (a cloud storage account)."""
        ...
