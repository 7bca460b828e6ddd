"""The local filesystem lake: the embedded default and the twin of the ADLS Gen2 adapter."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from orchestrator.config import DATA_DIR_ENV
from orchestrator.errors import AlreadyExists, InvalidInput, NotFound, ServiceError, WorkbenchError
from orchestrator.storage.base import WrittenFile
from orchestrator.storage.paths import check_lake_path


def _cannot_write(path: str, error: OSError) -> ServiceError:
    """A write the disk refused, named by its lake path; a full disk says what frees it."""
    full = error.errno in (errno.ENOSPC, errno.EDQUOT)
    hint = "; free space on the lake's disk (the Jobs page deletes jobs no longer needed)" if full else ""
    return ServiceError(f"cannot write {path}: {error.strerror}{hint}", DATA_DIR_ENV)


class _LocalWriter:
    def __init__(self, handle: BinaryIO, path: str) -> None:
        self._handle = handle
        self._path = path
        self._digest = hashlib.sha256()
        self._size = 0
        self.result: WrittenFile | None = None

    def write(self, data: bytes) -> None:
        try:
            self._handle.write(data)
        except OSError as error:  # a full disk, say: named, where a bare OSError named neither file nor cause
            raise _cannot_write(self._path, error) from None
        self._digest.update(data)
        self._size += len(data)


class LocalLake:
    """Files under one root folder; every write goes to a temporary name and is renamed into place."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def resolve(self, path: str) -> Path:
        """The local file behind a lake path; a path that would leave the root is refused."""
        rel = PurePosixPath(check_lake_path(path))
        full = (self.root / rel).resolve()
        if full != self.root and self.root not in full.parents:
            raise InvalidInput("path", f"{path!r} points outside the lake")
        return full

    @contextlib.contextmanager
    def open_write(self, path: str, *, overwrite: bool = False) -> Iterator[_LocalWriter]:
        final = self.resolve(path)
        if not overwrite and final.exists():
            raise AlreadyExists(f"{path} exists already and is written only once")
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        except OSError as exc:
            raise ServiceError(f"cannot write {path}: {exc.strerror}", DATA_DIR_ENV) from None
        tmp = Path(tmp_name)
        written = False  # the caller's part done: an OSError after it is the disk's, before it the caller's
        try:
            with os.fdopen(fd, "wb") as handle:
                writer = _LocalWriter(handle, path)
                yield writer
                written = True
                handle.flush()
                if not overwrite:  # write-once data (raw) is the source of truth: make it durable
                    os.fsync(handle.fileno())
            if overwrite:
                os.replace(tmp, final)
            else:
                try:
                    os.link(tmp, final)  # fails if the target appeared meanwhile: no clobbering
                except FileExistsError:
                    raise AlreadyExists(f"{path} exists already and is written only once") from None
                tmp.unlink()
            writer.result = WrittenFile(path, writer._size, writer._digest.hexdigest())
        except OSError as error:
            if not written or isinstance(error, WorkbenchError):  # ours say what happened already
                raise
            raise _cannot_write(path, error) from None
        finally:
            tmp.unlink(missing_ok=True)

    def open_read(self, path: str) -> BinaryIO:
        full = self.resolve(path)
        try:
            return full.open("rb")
        except FileNotFoundError:
            raise NotFound(f"{path} does not exist") from None

    def exists(self, path: str) -> bool:
        return self.resolve(path).is_file()

    def list(self, prefix: str) -> Iterator[str]:
        base = self.resolve(prefix)
        if not base.is_dir():
            return iter(())
        files = sorted(p for p in base.rglob("*") if p.is_file() and not p.name.startswith("."))
        return iter(p.relative_to(self.root).as_posix() for p in files)

    def delete_prefix(self, prefix: str) -> None:
        base = self.resolve(prefix)
        if base.is_dir():
            shutil.rmtree(base)

    def free_bytes(self) -> int:
        """Free space on the disk that holds the root (or would, before the root is made)."""
        folder = next(p for p in (self.root, *self.root.parents) if p.exists())
        return shutil.disk_usage(folder).free
