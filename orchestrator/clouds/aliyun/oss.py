"""The OSS lake: the Storage protocol on an Alibaba Cloud OSS bucket, through Alibaba's alibabacloud-oss-v2.

It mirrors the ADLS adapter. A file that fits in one chunk is one PutObject, atomic by itself; a larger one is
a multipart upload whose parts stay invisible until CompleteMultipartUpload publishes them in one request
(a failed write aborts the upload). ``x-oss-forbid-overwrite: true`` on that publishing request gives
write-once; every body is sent with its Content-MD5, and the SDK checks the CRC64 OSS computes of each
PutObject and UploadPart against its own, as the adapter checks the whole object's after completing it.
Reads are a seekable stream of ranged GetObject calls pinned to the ETag seen when the file was opened.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO
from urllib.parse import urlsplit

import alibabacloud_oss_v2 as oss
from alibabacloud_oss_v2 import exceptions as oss_errors
from alibabacloud_oss_v2.crc import Crc64

from orchestrator.errors import AlreadyExists, InvalidInput, NotFound, ServiceError
from orchestrator.health import ConnectionCheck
from orchestrator.storage.base import WrittenFile
from orchestrator.storage.paths import check_lake_path
from orchestrator.storage.ranged import RangedReader

_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
_REGION_IN_HOST = re.compile(r"^oss-([a-z0-9-]+?)(?:-internal)?\.aliyuncs\.com$")
MIN_PART = 100 * 1024  # OSS refuses a part smaller than this, but for the last one (EntityTooSmall)


def _sort_key(path: str) -> list[str]:
    """Order paths segment by segment, as the local lake does ('raw/a/x' before 'raw/a-b/x')."""
    return path.split("/")


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@dataclass(frozen=True)
class OssConfig:
    """Where the lake lives and how requests are signed (V4); the secret never appears in repr()."""

    bucket: str
    endpoint: str
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(default="", repr=False)  # STS: sent as x-oss-security-token
    region: str = ""  # empty: read from the endpoint (oss-<region>.aliyuncs.com)
    path_style: bool = False
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    retries: int = 3
    chunk_size: int = 8 * 1024 * 1024

    def __post_init__(self) -> None:
        if not isinstance(self.bucket, str) or not _BUCKET.fullmatch(self.bucket):
            raise InvalidInput(
                "bucket",
                f"{self.bucket!r} is not a valid bucket name; use 3-63 lower-case letters, digits or "
                "hyphens, starting and ending with a letter or digit",
            )
        parts = urlsplit(self.endpoint)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path.strip("/")
            or parts.query
        ):
            raise InvalidInput(
                "endpoint",
                f"{self.endpoint!r} must be the region's OSS endpoint, such as "
                "https://oss-cn-hangzhou.aliyuncs.com",
            )
        if not self.access_key_id:
            raise InvalidInput("access_key_id", "is empty; give the RAM user's AccessKey ID")
        if not self.access_key_secret:
            raise InvalidInput("access_key_secret", "is empty; give the RAM user's AccessKey secret")
        if not self.signing_region:
            raise InvalidInput(
                "region",
                f"is empty and {parts.hostname!r} does not name one; set the bucket's region, such as "
                "cn-hangzhou",
            )
        if self.retries < 0:
            raise InvalidInput("retries", f"{self.retries} must be 0 or more")
        if self.chunk_size < MIN_PART:
            raise InvalidInput(
                "chunk_size", f"{self.chunk_size} must be at least {MIN_PART} (OSS's least part)"
            )
        for name in ("connect_timeout_s", "read_timeout_s"):
            if getattr(self, name) <= 0:
                raise InvalidInput(name, f"{getattr(self, name)} must be positive")

    @property
    def signing_region(self) -> str:
        """The region the V4 signature is scoped to: the setting, else the endpoint's."""
        if self.region:
            return self.region
        found = _REGION_IN_HOST.match(urlsplit(self.endpoint).hostname or "")
        return found.group(1) if found else ""


class _OssWriter:
    """Buffers one chunk; a larger file becomes a multipart upload, invisible until it is completed."""

    def __init__(self, lake: OssLake, path: str) -> None:
        self._lake = lake
        self._path = path
        self._buffer = bytearray()
        self._digest = hashlib.sha256()
        self._crc = Crc64(0)
        self._size = 0
        self._upload_id: str | None = None
        self._parts: list[oss.UploadPart] = []
        self.result: WrittenFile | None = None

    def write(self, data: bytes) -> None:
        self._digest.update(data)
        self._crc.update(data)
        self._size += len(data)
        self._buffer += data
        chunk = self._lake.config.chunk_size
        while len(self._buffer) > chunk:  # keep the last chunk back: a file of one chunk is one PutObject
            self._upload(bytes(self._buffer[:chunk]))
            del self._buffer[:chunk]

    def _upload(self, chunk: bytes) -> None:
        lake = self._lake
        if self._upload_id is None:
            with lake._service(f"write {self._path}"):
                started = lake._client.initiate_multipart_upload(
                    oss.InitiateMultipartUploadRequest(bucket=lake.config.bucket, key=self._path)
                )
            self._upload_id = started.upload_id
        number = len(self._parts) + 1
        with lake._service(f"write {self._path}"):
            done = lake._client.upload_part(
                oss.UploadPartRequest(
                    bucket=lake.config.bucket,
                    key=self._path,
                    upload_id=self._upload_id,
                    part_number=number,
                    body=chunk,
                    content_md5=_md5(chunk),
                )
            )
        self._parts.append(oss.UploadPart(part_number=number, etag=done.etag))

    def commit(self, *, overwrite: bool) -> None:
        """Publish the file in one request; without overwrite, only if the path is still free."""
        lake = self._lake
        forbid = None if overwrite else True
        try:
            with lake._service(f"publish {self._path}"):
                if self._upload_id is None:
                    body = bytes(self._buffer)
                    request = oss.PutObjectRequest(
                        bucket=lake.config.bucket,
                        key=self._path,
                        body=body,
                        content_md5=_md5(body),
                        forbid_overwrite=forbid,
                    )
                    try:
                        lake._client.put_object(request)
                    except oss_errors.OperationError as wrapped:
                        if isinstance(wrapped.unwrap(), oss_errors.InconsistentError):
                            lake._delete(self._path)  # published altered: never leave it readable
                        raise
                else:
                    if self._buffer:
                        self._upload(bytes(self._buffer))
                    done = lake._client.complete_multipart_upload(
                        oss.CompleteMultipartUploadRequest(
                            bucket=lake.config.bucket,
                            key=self._path,
                            upload_id=self._upload_id,
                            complete_multipart_upload=oss.CompleteMultipartUpload(parts=self._parts),
                            forbid_overwrite=forbid,
                        )
                    )
                    self._upload_id = None  # completed: nothing left to abort
                    self._check_whole(done.headers.get("x-oss-hash-crc64ecma"))
        except _Refused as refused:
            if not overwrite and refused.code == "FileAlreadyExists":
                raise AlreadyExists(f"{self._path} exists already and is written only once") from None
            raise refused.error from None
        self._buffer.clear()
        self.result = WrittenFile(self._path, self._size, self._digest.hexdigest())

    def _check_whole(self, crc: str | None) -> None:
        """The CRC64 OSS computed of the completed object against the bytes written; a mismatch removes it."""
        if crc is not None and crc != str(self._crc.sum64()):
            self._lake._delete(self._path)
            raise ServiceError(
                f"{self._path} reached the lake at {self._lake.endpoint} altered (CRC64 differs); it was "
                "removed, write it again"
            )

    def abort(self) -> None:
        """Discard the parts of an upload that will not be completed (OSS would keep them, billed)."""
        if self._upload_id is None:
            return
        upload_id, self._upload_id = self._upload_id, None
        request = oss.AbortMultipartUploadRequest(
            bucket=self._lake.config.bucket, key=self._path, upload_id=upload_id
        )
        with contextlib.suppress(ServiceError, _Refused), self._lake._service(f"abandon {self._path}"):
            self._lake._client.abort_multipart_upload(request)


class _OssReader(RangedReader):
    """An object read in ranged GetObject calls pinned with If-Match to the ETag seen when it was opened."""

    def __init__(self, lake: OssLake, path: str, size: int, etag: str) -> None:
        super().__init__(path, size, etag)
        self._lake = lake

    def _range(self, offset: int, length: int) -> bytes:
        request = oss.GetObjectRequest(
            bucket=self._lake.config.bucket,
            key=self._path,
            range_header=f"bytes={offset}-{offset + length - 1}",
            range_behavior="standard",
            if_match=self._etag,
        )
        try:
            with self._lake._service(f"read {self._path}"):
                answer = self._lake._client.get_object(request)
                try:
                    data = answer.body.read()
                finally:
                    answer.body.close()
        except _Refused as refused:
            if refused.code == "PreconditionFailed":
                raise self.replaced() from None
            raise refused.error from None
        if len(data) != length:
            raise ServiceError(
                f"the lake at {self._lake.endpoint} sent {len(data)} of {length} bytes of {self._path}"
            )
        return data


class _Altered(ServiceError):
    """OSS reported a CRC64 of what it stored that differs from the bytes sent."""


class _Refused(Exception):
    """OSS refused with an error code a caller may expect; ``error`` is what to raise otherwise."""

    def __init__(self, code: str, error: ServiceError) -> None:
        super().__init__(code)
        self.code = code
        self.error = error


DELETE_BATCH = 1000  # keys per DeleteMultipleObjects at most, as OSS allows


class OssLake:
    """Objects in one OSS bucket, with the local lake's guarantees."""

    def __init__(self, config: OssConfig) -> None:
        self.config = config
        parts = urlsplit(config.endpoint)
        self.endpoint = f"{parts.scheme}://{parts.netloc}"
        self._client = oss.Client(
            oss.Config(
                region=config.signing_region,
                endpoint=config.endpoint,
                signature_version="v4",
                credentials_provider=oss.credentials.StaticCredentialsProvider(
                    config.access_key_id, config.access_key_secret, config.security_token or None
                ),
                retry_max_attempts=config.retries + 1,
                connect_timeout=config.connect_timeout_s,
                readwrite_timeout=config.read_timeout_s,
                use_path_style=config.path_style,
                disable_ssl=parts.scheme == "http",
            )
        )

    def __repr__(self) -> str:
        return f"OssLake({self.endpoint}, bucket={self.config.bucket!r})"

    @contextlib.contextmanager
    def _service(self, action: str) -> Iterator[None]:
        """A call to OSS: the SDK's failures become ServiceErrors naming the setting to check (a refusal with
        a code a caller expects is a _Refused carrying that error). The SDK's own text is left out: it holds
        URLs and request details."""
        try:
            yield
        except oss_errors.OperationError as wrapped:
            error = wrapped.unwrap()
            if isinstance(error, oss_errors.ServiceError):
                raise _Refused(
                    error.code or "", self._refusal(error.status_code, error.code, action)
                ) from None
            if isinstance(error, oss_errors.InconsistentError):
                raise _Altered(
                    f"the lake at {self.endpoint} stored different bytes than were sent to {action} (CRC64); "
                    "write it again"
                ) from None
            raise ServiceError(
                f"cannot reach the lake at {self.endpoint} to {action}; check endpoint and that OSS answers "
                "there",
                "endpoint",
            ) from None
        except oss_errors.BaseError as err:
            raise ServiceError(
                f"the lake at {self.endpoint} failed to {action} ({type(err).__name__})"
            ) from None

    def _refusal(self, status: int, code: str | None, action: str) -> ServiceError:
        if code == "NoSuchBucket":
            return ServiceError(
                f"bucket {self.config.bucket!r} does not exist at {self.endpoint}; create it or change "
                "bucket",
                "bucket",
            )
        if code == "InvalidAccessKeyId":
            return ServiceError(f"OSS at {self.endpoint} does not know the access key; check access_key_id",
                                "access_key_id")  # fmt: skip
        if code == "SignatureDoesNotMatch":
            return ServiceError(
                f"OSS at {self.endpoint} refused the signature; check access_key_secret (and region)",
                "access_key_secret",
            )
        if code and "SecurityToken" in code:
            return ServiceError(
                f"OSS at {self.endpoint} refused the security token ({code}); renew security_token with "
                "its temporary access key",
                "security_token",
            )
        if status == 403:
            return ServiceError(
                f"OSS at {self.endpoint} refused to {action} ({code}); check the access key's permissions "
                "on the bucket",
                "access_key_id",
            )
        if not code or code == "BadErrorResponse":
            return ServiceError(
                f"{self.endpoint} answered {status} to {action}, but not as OSS does; check that endpoint "
                "names the bucket's region's OSS endpoint",
                "endpoint",
            )
        return ServiceError(f"the lake at {self.endpoint} answered {status} ({code}) to {action}")

    @contextlib.contextmanager
    def _calls(self, action: str) -> Iterator[None]:
        """A call whose refusals are all errors."""
        try:
            with self._service(action):
                yield
        except _Refused as refused:
            raise refused.error from None

    def _head(self, path: str, action: str) -> tuple[int, str] | None:
        """Size and ETag of the object at ``path``, or None when there is none."""
        try:
            with self._service(f"{action} {path}"):
                found = self._client.head_object(oss.HeadObjectRequest(bucket=self.config.bucket, key=path))
        except _Refused as refused:
            if refused.code == "NoSuchKey":
                return None
            raise refused.error from None
        return found.content_length, found.etag

    def _delete(self, path: str) -> None:
        with self._calls(f"delete {path}"):
            self._client.delete_object(oss.DeleteObjectRequest(bucket=self.config.bucket, key=path))

    def test_connection(self) -> ConnectionCheck:
        """List one object of the bucket (the permission the lake needs anyway), without retries, and say what
        works or which setting to change."""
        try:
            with self._calls("check the connection"):
                self._client.list_objects_v2(
                    oss.ListObjectsV2Request(bucket=self.config.bucket, max_keys=1), retry_max_attempts=1
                )
        except ServiceError as err:
            return ConnectionCheck(False, str(err), err.field)
        return ConnectionCheck(True, f"connected to bucket {self.config.bucket!r} at {self.endpoint}")

    @contextlib.contextmanager
    def open_write(self, path: str, *, overwrite: bool = False) -> Iterator[_OssWriter]:
        """Write a file atomically; without ``overwrite`` an existing file is an AlreadyExists error."""
        check_lake_path(path)
        if not overwrite and self._head(path, "check") is not None:
            raise AlreadyExists(f"{path} exists already and is written only once")
        writer = _OssWriter(self, path)
        try:
            yield writer
            writer.commit(overwrite=overwrite)
        finally:
            writer.abort()

    def open_read(self, path: str) -> BinaryIO:
        """Read a file as a seekable stream; NotFound if it does not exist."""
        found = self._head(check_lake_path(path), "open")
        if found is None:
            raise NotFound(f"{path} does not exist")
        size, etag = found
        return io.BufferedReader(_OssReader(self, path, size, etag), buffer_size=self.config.chunk_size)

    def exists(self, path: str) -> bool:
        return self._head(check_lake_path(path), "check") is not None

    def list(self, prefix: str) -> Iterator[str]:
        """Paths of the files under the folder ``prefix``, sorted segment by segment."""
        folder = check_lake_path(prefix) + "/"
        names: list[str] = []
        with self._calls(f"list {prefix}"):
            pages = self._client.list_objects_v2_paginator()
            for page in pages.iter_page(oss.ListObjectsV2Request(bucket=self.config.bucket, prefix=folder)):
                names += [item.key for item in page.contents or [] if not item.key.endswith("/")]
        return iter(sorted(names, key=_sort_key))

    def delete_prefix(self, prefix: str) -> None:
        """Remove every file under the folder ``prefix``: one DeleteMultipleObjects per 1000 keys (OSS's
        most), in quiet mode, with the Content-MD5 OSS requires of its body (the SDK adds it). A key already
        gone is no error: OSS deletes what is there."""
        names = [*self.list(prefix)]
        for start in range(0, len(names), DELETE_BATCH):
            batch = names[start : start + DELETE_BATCH]
            with self._calls(f"delete {len(batch)} files under {prefix}"):
                self._client.delete_multiple_objects(
                    oss.DeleteMultipleObjectsRequest(
                        bucket=self.config.bucket,
                        encoding_type="url",
                        delete=oss.Delete(
                            objects=[oss.ObjectIdentifier(key=name) for name in batch], quiet=True
                        ),
                    )
                )

    def free_bytes(self) -> None:
        """A bucket has no capacity a generation could reach."""
        return None


__all__ = ["MIN_PART", "OssConfig", "OssLake"]
