"""A seekable stream over one version of a cloud object, read in ranged requests: what every cloud lake's
``open_read`` returns (inside an io.BufferedReader). A lake's reader says how to fetch one range pinned to the
version (ETag) seen when the file was opened; an object replaced meanwhile stops the read (``replaced``)."""

from __future__ import annotations

import io

from orchestrator.errors import ServiceError


class RangedReader(io.RawIOBase):
    """The stream; subclasses implement ``_range``."""

    def __init__(self, path: str, size: int, etag: str) -> None:
        self._path = path
        self._size = size
        self._etag = etag
        self._pos = 0

    def _range(self, offset: int, length: int) -> bytes:
        """``length`` bytes from ``offset`` of the version opened (raising ``replaced()`` if it is gone)."""
        raise NotImplementedError

    def replaced(self) -> ServiceError:
        return ServiceError(f"{self._path} was replaced while it was being read; read it again")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def _fetch(self, length: int) -> bytes:
        length = min(length, self._size - self._pos)
        if length <= 0:
            return b""
        data = self._range(self._pos, length)
        self._pos += len(data)
        return data

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._fetch(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        """The rest of the object in one ranged request (the SDK may stream it in chunks)."""
        return self._fetch(self._size - self._pos)
