"""The ADLS Gen2 lake: the Storage protocol on an Azure storage account, through its Blob API.

An ADLS Gen2 account serves the Blob API next to the Data Lake (DFS) API, and every call used here
is a Blob call: staged blocks committed in one request give atomic publish without a rename, an
``If-None-Match: *`` condition on that commit gives write-once, and ranged reads pinned to an ETag
give a seekable stream. The same calls are served by Azurite, so the adapter is tested end to end.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO
from urllib.parse import urlsplit

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobBlock, BlobClient, BlobServiceClient, ExponentialRetry

from orchestrator.azure_accounts import StorageService, check_account
from orchestrator.errors import AlreadyExists, InvalidInput, NotFound, ServiceError
from orchestrator.health import ConnectionCheck
from orchestrator.storage.base import WrittenFile
from orchestrator.storage.paths import check_lake_path
from orchestrator.storage.ranged import RangedReader

_FILE_SYSTEM = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")
# On an account with a hierarchical namespace the Blob API lists directories as empty blobs with this flag.
_FOLDER_FLAG = "hdi_isfolder"


def _sort_key(path: str) -> list[str]:
    """Order paths segment by segment, as the local lake does ('raw/a/x' before 'raw/a-b/x')."""
    return path.split("/")


@dataclass(frozen=True)
class AdlsConfig:
    """Where the lake lives and how to sign in; the key and connection string never appear in repr()."""

    file_system: str
    account_url: str = ""
    account_key: str = field(default="", repr=False)
    connection_string: str = field(default="", repr=False)
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    retries: int = 3
    chunk_size: int = 8 * 1024 * 1024

    def __post_init__(self) -> None:
        if not isinstance(self.file_system, str) or not _FILE_SYSTEM.fullmatch(self.file_system):
            raise InvalidInput(
                "file_system",
                f"{self.file_system!r} is not a valid file system name; use 3-63 lower-case letters, "
                "digits or single hyphens, starting and ending with a letter or digit",
            )
        check_account(
            "account_url",
            self.account_url,
            "https://<account>.dfs.core.windows.net",
            self.account_key,
            self.connection_string,
        )
        if self.retries < 0:
            raise InvalidInput("retries", f"{self.retries} must be 0 or more")
        for name in ("chunk_size", "connect_timeout_s", "read_timeout_s"):
            if getattr(self, name) <= 0:
                raise InvalidInput(name, f"{getattr(self, name)} must be positive")


class _AdlsWriter:
    """Stages chunks as uncommitted blocks; nothing is visible until the block list is committed."""

    def __init__(self, lake: AdlsLake, path: str) -> None:
        self._lake = lake
        self._path = path
        self._blob = lake._blob(path)
        self._token = uuid.uuid4().hex  # block ids unique to this write
        self._blocks: list[BlobBlock] = []
        self._buffer = bytearray()
        self._digest = hashlib.sha256()
        self._size = 0
        self.result: WrittenFile | None = None

    def write(self, data: bytes) -> None:
        self._digest.update(data)
        self._size += len(data)
        self._buffer += data
        chunk = self._lake.config.chunk_size
        while len(self._buffer) >= chunk:
            self._stage(bytes(self._buffer[:chunk]))
            del self._buffer[:chunk]

    def _stage(self, chunk: bytes) -> None:
        block_id = base64.b64encode(f"{self._token}-{len(self._blocks):06d}".encode()).decode()
        with self._lake._service(f"write {self._path}"):
            self._blob.stage_block(block_id, chunk, validate_content=True)
        self._blocks.append(BlobBlock(block_id))

    def commit(self, *, overwrite: bool) -> None:
        """Publish every staged block in one request; without overwrite, only if the path is still free."""
        if self._buffer:
            self._stage(bytes(self._buffer))
            self._buffer.clear()
        condition = {} if overwrite else {"if_none_match": "*"}
        with self._lake._service(f"publish {self._path}"):
            try:
                self._blob.commit_block_list(self._blocks, **condition)
            except HttpResponseError as err:
                if not overwrite and err.status_code in (409, 412):
                    raise AlreadyExists(f"{self._path} exists already and is written only once") from None
                raise
        self.result = WrittenFile(self._path, self._size, self._digest.hexdigest())


class _BlobReader(RangedReader):
    """A blob read in ranged downloads pinned (If-Match) to the ETag seen when it was opened."""

    def __init__(self, lake: AdlsLake, path: str, size: int, etag: str) -> None:
        super().__init__(path, size, etag)
        self._lake = lake
        self._blob = lake._blob(path)

    def _range(self, offset: int, length: int) -> bytes:
        with self._lake._service(f"read {self._path}"):
            try:
                return self._blob.download_blob(
                    offset=offset,
                    length=length,
                    etag=self._etag,
                    match_condition=MatchConditions.IfNotModified,
                ).readall()
            except ResourceModifiedError:
                raise self.replaced() from None


class AdlsLake:
    """Files in one ADLS Gen2 file system (a Blob container), with the local lake's guarantees."""

    def __init__(self, config: AdlsConfig) -> None:
        self.config = config
        options = {
            "connection_timeout": config.connect_timeout_s,
            "read_timeout": config.read_timeout_s,
            "retry_policy": ExponentialRetry(
                initial_backoff=1, increment_base=2, retry_total=config.retries, random_jitter_range=1
            ),
        }
        try:
            if config.connection_string:
                service = BlobServiceClient.from_connection_string(config.connection_string, **options)
            else:
                # An ADLS Gen2 account answers the Blob API on its .blob. endpoint.
                url = config.account_url.replace(".dfs.core.", ".blob.core.")
                service = BlobServiceClient(url, credential=config.account_key, **options)
        except ValueError:
            if config.connection_string:
                raise InvalidInput(
                    "connection_string", "is malformed; copy it again from the portal"
                ) from None
            raise InvalidInput(
                "account_url",
                f"{config.account_url!r} does not name a storage account; "
                "use https://<account>.dfs.core.windows.net",
            ) from None
        self._container = service.get_container_client(config.file_system)
        parts = urlsplit(service.url)  # without the query, where a SAS token would sit
        self.endpoint = f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")
        self._errors = StorageService.of(
            "the lake",
            self.endpoint,
            config.connection_string,
            "account_url",
            "the storage account's endpoint",
        )

    def __repr__(self) -> str:
        return f"AdlsLake({self.endpoint}, file_system={self.config.file_system!r})"

    def _blob(self, path: str) -> BlobClient:
        return self._container.get_blob_client(path)

    def _service(self, action: str) -> contextlib.AbstractContextManager[None]:
        """A call to the lake: the SDK's failures become ServiceErrors naming the setting to check."""
        return self._errors.calls(action, self._known)

    def _known(self, code: str | None) -> ServiceError | None:
        if code == "ContainerNotFound":
            return ServiceError(
                f"file system {self.config.file_system!r} does not exist at {self.endpoint}; "
                "create it or change file_system",
                "file_system",
            )
        return None

    def _file_properties(self, path: str, action: str) -> tuple[int, str] | None:
        """Size and ETag of the file at ``path``, or None when there is no file (or only a directory)."""
        with self._service(f"{action} {path}"):
            try:
                props = self._blob(path).get_blob_properties()
            except ResourceNotFoundError as err:
                if err.error_code == "ContainerNotFound":
                    raise
                return None
        if props.metadata.get(_FOLDER_FLAG) == "true":
            return None
        return props.size, props.etag

    def test_connection(self) -> ConnectionCheck:
        """Reach the file system once, without retries, and say what works or which setting to change."""
        try:
            with self._service("check the connection"):
                self._container.get_container_properties(retry_total=0)
        except ServiceError as err:
            return ConnectionCheck(False, str(err), err.field)
        return ConnectionCheck(
            True, f"connected to file system {self.config.file_system!r} at {self.endpoint}"
        )

    @contextlib.contextmanager
    def open_write(self, path: str, *, overwrite: bool = False) -> Iterator[_AdlsWriter]:
        """Write a file atomically; without ``overwrite`` an existing file is an AlreadyExists error."""
        check_lake_path(path)
        if not overwrite and self._file_properties(path, "check") is not None:
            raise AlreadyExists(f"{path} exists already and is written only once")
        writer = _AdlsWriter(self, path)
        yield writer
        writer.commit(overwrite=overwrite)

    def open_read(self, path: str) -> BinaryIO:
        """Read a file as a seekable stream; NotFound if it does not exist."""
        found = self._file_properties(check_lake_path(path), "open")
        if found is None:
            raise NotFound(f"{path} does not exist")
        size, etag = found
        return io.BufferedReader(_BlobReader(self, path, size, etag), buffer_size=self.config.chunk_size)

    def exists(self, path: str) -> bool:
        return self._file_properties(check_lake_path(path), "check") is not None

    def list(self, prefix: str) -> Iterator[str]:
        """Paths of the files under the folder ``prefix``, sorted segment by segment."""
        folder = check_lake_path(prefix) + "/"
        with self._service(f"list {prefix}"):
            names = [
                blob.name
                for blob in self._container.list_blobs(name_starts_with=folder, include=["metadata"])
                if (blob.metadata or {}).get(_FOLDER_FLAG) != "true"
            ]
        return iter(sorted(names, key=_sort_key))

    def delete_prefix(self, prefix: str) -> None:
        """Remove every file under the folder ``prefix``."""
        for name in self.list(prefix):
            with self._service(f"delete {name}"), contextlib.suppress(ResourceNotFoundError):
                self._blob(name).delete_blob()

    def free_bytes(self) -> None:
        """A storage account takes petabytes: no limit a generation could reach."""
        return None
