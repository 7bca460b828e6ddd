"""A local Alibaba Cloud OSS speaking the part of its REST API the OSS lake uses, path-style (/bucket/key):
PutObject (Content-MD5, x-oss-forbid-overwrite), GetObject (Range, If-Match), HeadObject, DeleteObject,
DeleteMultipleObjects (Content-MD5 required, quiet mode), ListObjectsV2, and InitiateMultipartUpload,
UploadPart, CompleteMultipartUpload (x-oss-forbid-overwrite), AbortMultipartUpload. Every request must carry
a V4 signature (OSS4-HMAC-SHA256) made with the one access key it knows, checked here from Alibaba's
documented algorithm, not the SDK's code. Answers are what OSS sends: XML bodies, ETags,
x-oss-hash-crc64ecma, and errors as <Error> documents (in x-oss-err for HEAD)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import crcmod

from tests.fake_http import RestartableServer

MIN_PART = 100 * 1024  # OSS refuses a smaller part unless it is the last
_crc64 = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, xorOut=0xFFFFFFFFFFFFFFFF, rev=True)


def crc64(data: bytes) -> str:
    """CRC-64/ECMA-182 as OSS reports it (x-oss-hash-crc64ecma: decimal)."""
    return str(_crc64(data))


@dataclass
class _Object:
    data: bytes
    etag: str


@dataclass
class _Upload:
    key: str
    parts: dict[int, _Object] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    """A request as the server saw it; header names are lower-case."""

    method: str
    bucket: str
    key: str
    query: dict[str, str]
    headers: dict[str, str]


class _Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class FakeOss(RestartableServer):
    """One OSS region with the buckets given; ``start`` and ``stop`` keep the port and the objects."""

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        region: str,
        buckets: tuple[str, ...],
        security_token: str | None = None,
    ) -> None:
        super().__init__()
        self.access_key_id = access_key_id
        self._secret = access_key_secret
        self._token = security_token  # an STS token every request must carry (x-oss-security-token)
        self.region = region
        self.buckets: dict[str, dict[str, _Object]] = {name: {} for name in buckets}
        self.uploads: dict[str, _Upload] = {}
        self.page_size = 1000  # keys per ListObjectsV2 page at most (max-keys may ask fewer)
        self.altered = False  # store (and report the CRC64 of) one byte more than was sent: a corrupting hop
        self.requests: list[Seen] = []
        self.batch_deletes: list[list[str]] = []  # the keys of each DeleteMultipleObjects, in order

    def seen(self, method: str, **query: str) -> list[Seen]:
        """The requests of ``method`` whose query holds every given parameter (value "" for any value)."""
        with self.lock:
            return [
                r
                for r in self.requests
                if r.method == method
                and all(k in r.query and v in ("", r.query[k]) for k, v in query.items())
            ]

    def put_object(self, bucket: str, key: str, data: bytes) -> None:
        """Store an object as another client of the bucket does (a Spark job on EMR), unsigned and unseen."""
        with self.lock:
            self.buckets[bucket][key] = _Object(data, _etag(data))

    # -- signature V4, as Alibaba documents it ----------------------------------------------------------

    def _check_signature(
        self, method: str, bucket: str, key: str, raw_query: str, headers: dict[str, str]
    ) -> None:
        auth = headers.get("authorization", "")
        if not auth.startswith("OSS4-HMAC-SHA256 "):
            raise _Refusal(403, "AccessDenied", "Authorization header is missing or not OSS4-HMAC-SHA256.")
        fields = dict(part.strip().split("=", 1) for part in auth[len("OSS4-HMAC-SHA256 ") :].split(","))
        key_id, _, scope = fields.get("Credential", "").partition("/")
        if key_id != self.access_key_id:
            raise _Refusal(403, "InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist.")
        date, region, product, terminal = [*scope.split("/"), "", "", "", ""][:4]
        stamp = headers.get("x-oss-date", "")
        if (region, product, terminal) != (self.region, "oss", "aliyun_v4_request") or stamp[:8] != date:
            raise _Refusal(403, "SignatureDoesNotMatch", "The credential scope does not match.")
        skew = abs(
            (
                datetime.now(UTC) - datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            ).total_seconds()
        )
        if skew > 15 * 60:
            raise _Refusal(
                403, "RequestTimeTooSkewed", "The difference between the request time and now is too large."
            )
        additional = [h for h in fields.get("AdditionalHeaders", "").split(";") if h]
        signed = sorted(
            (name, value)
            for name, value in headers.items()
            if name.startswith("x-oss-") or name in ("content-type", "content-md5") or name in additional
        )
        pairs = sorted(pair.partition("=")[::2] for pair in raw_query.split("&") if pair)
        canonical = "\n".join(
            [
                method,
                quote(f"/{bucket}/{key}" if bucket else "/", safe="/"),
                "&".join(f"{k}={v}" if v else k for k, v in pairs),
                "".join(f"{name}:{value}\n" for name, value in signed),
                ";".join(additional),
                headers.get("x-oss-content-sha256", "UNSIGNED-PAYLOAD"),
            ]
        )
        to_sign = "\n".join(
            ["OSS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        signing = ("aliyun_v4" + self._secret).encode()
        for part in (date, region, product, terminal):
            signing = hmac.new(signing, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, fields.get("Signature", "")):
            raise _Refusal(
                403, "SignatureDoesNotMatch", "The request signature we calculated does not match."
            )
        if headers.get("x-oss-security-token") != self._token:  # signed above, as every x-oss-* header
            raise _Refusal(403, "InvalidSecurityToken", "The security token you provided is invalid.")

    # -- the operations ---------------------------------------------------------------------------------

    def _answer(self, method: str, path: str, raw_query: str, headers: dict[str, str], body: bytes) -> tuple:
        bucket, _, key = path.lstrip("/").partition("/")
        bucket, key = unquote(bucket), unquote(key)
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        with self.lock:
            self.requests.append(Seen(method, bucket, key, query, headers))
        self._check_signature(method, bucket, key, raw_query, headers)
        if bucket not in self.buckets:
            raise _Refusal(404, "NoSuchBucket", "The specified bucket does not exist.")
        if (
            "content-md5" in headers
            and base64.b64encode(hashlib.md5(body).digest()).decode() != headers["content-md5"]
        ):
            raise _Refusal(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
        with self.lock:
            objects = self.buckets[bucket]
            if not key:
                if method == "GET" and query.get("list-type") == "2":
                    return self._list(bucket, objects, query)
                if method == "POST" and "delete" in query:
                    return self._delete_many(objects, query, headers, body)
                raise _Refusal(400, "NotImplemented", "This bucket operation is not served here.")
            forbid = headers.get("x-oss-forbid-overwrite", "").lower() == "true"
            if method == "PUT" and "uploadId" in query:
                upload = self._upload(query["uploadId"], key)
                body += b"!" if self.altered else b""
                upload.parts[int(query["partNumber"])] = part = _Object(body, _etag(body))
                return 200, {"ETag": part.etag, "x-oss-hash-crc64ecma": crc64(body)}, b""
            if method == "PUT":
                if forbid and key in objects:
                    raise _Refusal(409, "FileAlreadyExists", "The object you specified already exists.")
                body += b"!" if self.altered else b""
                objects[key] = stored = _Object(body, _etag(body))
                return 200, {"ETag": stored.etag, "x-oss-hash-crc64ecma": crc64(body)}, b""
            if method == "POST" and "uploads" in query:
                upload_id = uuid.uuid4().hex.upper()
                self.uploads[upload_id] = _Upload(key)
                return (
                    200,
                    {},
                    _xml("InitiateMultipartUploadResult", Bucket=bucket, Key=key, UploadId=upload_id),
                )
            if method == "POST" and "uploadId" in query:
                return self._complete(bucket, key, query["uploadId"], body, forbid)
            if method == "DELETE" and "uploadId" in query:
                self._upload(query["uploadId"], key)
                del self.uploads[query["uploadId"]]
                return 204, {}, b""
            if method == "DELETE":
                objects.pop(key, None)
                return 204, {}, b""
            if method in ("GET", "HEAD"):
                return self._get(objects, key, headers, head=method == "HEAD")
        raise _Refusal(400, "NotImplemented", "This operation is not served here.")

    def _delete_many(
        self, objects: dict[str, _Object], query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> tuple:
        """DeleteMultipleObjects: a <Delete> of at most 1000 <Object><Key>, its Content-MD5 required (and
        checked above); a key already gone counts as deleted. Quiet: an empty <DeleteResult>."""
        if "content-md5" not in headers:
            raise _Refusal(400, "MissingArgument", "Missing Some Required Arguments: Content-MD5.")
        try:
            document = ElementTree.fromstring(body)
        except ElementTree.ParseError:
            raise _Refusal(400, "MalformedXML", "The XML you provided was not well-formed.") from None
        keys = [element.findtext("Key") or "" for element in document.iter("Object")]
        if document.tag != "Delete" or not keys or len(keys) > 1000 or "" in keys:
            raise _Refusal(400, "MalformedXML", "A Delete holds 1 to 1000 objects, each with its key.")
        for key in keys:
            objects.pop(key, None)
        self.batch_deletes.append(keys)
        if (document.findtext("Quiet") or "").lower() == "true":
            deleted = ""
        else:
            url = query.get("encoding-type") == "url"
            shown = [escape(quote(key, safe="/") if url else key) for key in keys]
            deleted = "".join(f"<Deleted><Key>{key}</Key></Deleted>" for key in shown)
        xml = f'<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult>{deleted}</DeleteResult>'
        return 200, {}, xml.encode()

    def _upload(self, upload_id: str, key: str) -> _Upload:
        upload = self.uploads.get(upload_id)
        if upload is None or upload.key != key:
            raise _Refusal(404, "NoSuchUpload", "The specified upload does not exist.")
        return upload

    def _complete(self, bucket: str, key: str, upload_id: str, body: bytes, forbid: bool) -> tuple:
        upload = self._upload(upload_id, key)
        listed = [
            (int(part.findtext("PartNumber") or 0), part.findtext("ETag") or "")
            for part in ElementTree.fromstring(body).iter("Part")
        ]
        if not listed or [n for n, _ in listed] != sorted({n for n, _ in listed}):
            raise _Refusal(400, "InvalidPartOrder", "The list of parts was not in ascending order.")
        chosen = []
        for number, etag in listed:
            part = upload.parts.get(number)
            if part is None or part.etag != etag:
                raise _Refusal(400, "InvalidPart", "One or more of the specified parts could not be found.")
            chosen.append(part)
        if any(len(part.data) < MIN_PART for part in chosen[:-1]):
            raise _Refusal(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed.")
        objects = self.buckets[bucket]
        if forbid and key in objects:
            raise _Refusal(409, "FileAlreadyExists", "The object you specified already exists.")
        data = b"".join(part.data for part in chosen)
        whole = hashlib.md5(b"".join(bytes.fromhex(p.etag.strip('"')) for p in chosen)).hexdigest().upper()
        objects[key] = stored = _Object(data, f'"{whole}-{len(chosen)}"')
        del self.uploads[upload_id]
        return (
            200,
            {"ETag": stored.etag, "x-oss-hash-crc64ecma": crc64(data)},
            _xml("CompleteMultipartUploadResult", Bucket=bucket, Key=key, ETag=stored.etag),
        )

    def _get(self, objects: dict[str, _Object], key: str, headers: dict[str, str], *, head: bool) -> tuple:
        found = objects.get(key)
        if found is None:
            raise _Refusal(404, "NoSuchKey", "The specified key does not exist.")
        if "if-match" in headers and headers["if-match"] != found.etag:
            raise _Refusal(
                412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold."
            )
        out = {"ETag": found.etag, "x-oss-hash-crc64ecma": crc64(found.data), "Accept-Ranges": "bytes"}
        data, status = found.data, 200
        if "range" in headers and not head:
            first, _, last = headers["range"].removeprefix("bytes=").partition("-")
            start, end = int(first), min(int(last) if last else len(data) - 1, len(data) - 1)
            if start > end:
                raise _Refusal(416, "InvalidRange", "The requested range cannot be satisfied.")
            data, status = data[start : end + 1], 206
            out["Content-Range"] = f"bytes {start}-{end}/{len(found.data)}"
            del out["x-oss-hash-crc64ecma"]  # OSS gives the whole object's CRC only for a whole read
        out["Content-Length"] = str(len(found.data) if head else len(data))
        return status, out, b"" if head else data

    def _list(self, bucket: str, objects: dict[str, _Object], query: dict[str, str]) -> tuple:
        prefix = query.get("prefix", "")
        after = query.get("continuation-token", "") or query.get("start-after", "")
        limit = min(int(query.get("max-keys", "100")), self.page_size)
        keys = sorted(k for k in objects if k.startswith(prefix) and k > after)
        page, more = keys[:limit], len(keys) > limit
        encode = (lambda k: quote(k, safe="/")) if query.get("encoding-type") == "url" else (lambda k: k)
        contents = "".join(
            f"<Contents><Key>{escape(encode(k))}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>"
            f"<ETag>{escape(objects[k].etag)}</ETag><Type>Normal</Type><Size>{len(objects[k].data)}</Size>"
            "<StorageClass>Standard</StorageClass></Contents>"
            for k in page
        )
        token = f"<NextContinuationToken>{escape(page[-1])}</NextContinuationToken>" if more else ""
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult><Name>{bucket}</Name>'
            f"<Prefix>{escape(encode(prefix))}</Prefix><MaxKeys>{limit}</MaxKeys>"
            f"<EncodingType>{query.get('encoding-type', '')}</EncodingType>"
            f"<IsTruncated>{'true' if more else 'false'}</IsTruncated><KeyCount>{len(page)}</KeyCount>"
            f"{token}{contents}</ListBucketResult>"
        ).encode()
        return 200, {}, body

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                fake.track(self.connection)

            def _serve(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                request_id = uuid.uuid4().hex[:24].upper()
                try:
                    status, out, data = fake._answer(self.command, url.path, url.query, headers, body)
                    kind = "application/xml" if data.startswith(b"<") else "application/octet-stream"
                except _Refusal as refusal:
                    status, kind = refusal.status, "application/xml"
                    data = _xml(
                        "Error",
                        Code=refusal.code,
                        Message=refusal.message,
                        RequestId=request_id,
                        EC="0000-00000000",
                    )
                    out = {"x-oss-ec": "0000-00000000"}
                    if self.command == "HEAD":
                        out["x-oss-err"] = base64.b64encode(data).decode()
                out.setdefault("Content-Length", str(len(data)))
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", kind)
                    self.send_header("x-oss-request-id", request_id)
                    for name, value in out.items():
                        self.send_header(name, value)
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve

        return Handler


def _etag(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest().upper()}"'


def _xml(root: str, **children: str) -> bytes:
    inner = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in children.items())
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}>{inner}</{root}>'.encode()
