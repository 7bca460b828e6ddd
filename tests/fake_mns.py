"""A local Simple Message Queue (formerly MNS) speaking the part of its REST API the queue adapter uses:
CreateQueue, GetQueueAttributes, DeleteQueue, SendMessage, ReceiveMessage and BatchReceiveMessage (waitseconds
0 only), PeekMessage and BatchPeekMessage, DeleteMessage and ChangeMessageVisibility. Every request must be
signed (``Authorization: MNS <AccessKeyId>:<Signature>``, HMAC-SHA1 over the verb, Content-MD5, Content-Type,
Date, the x-mns-* headers and the resource) with the one access key it knows, checked here from Alibaba's
documented algorithm, not the SDK's code. Answers are what MNS sends: XML in MNS's namespace, millisecond
times, errors as <Error> documents with MNS's codes. Time is the given clock, so tests move it by hand; a
receipt handle is valid until its message's NextVisibleTime, as MNS documents."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from tests.fake_http import RestartableServer

NAMESPACE = "http://mns.aliyuncs.com/doc/v1/"
_QUEUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,119}")
# The attributes CreateQueue takes, their defaults and ranges, as MNS documents them.
ATTRIBUTES = {
    "DelaySeconds": (0, 0, 604_800),
    "MaximumMessageSize": (65_536, 1_024, 65_536),
    "MessageRetentionPeriod": (345_600, 60, 604_800),
    "VisibilityTimeout": (30, 1, 43_200),
    "PollingWaitSeconds": (0, 0, 30),
}


@dataclass
class _Message:
    id: str
    body: str  # as sent: the adapter's base64 text
    enqueued: int  # ms
    next_visible: int  # ms
    dequeue_count: int = 0
    first_dequeue: int = 0
    handle: str = ""  # the current lease's receipt handle; "" until received


@dataclass
class StoredQueue:
    name: str
    attributes: dict[str, int]
    created: int
    messages: dict[str, _Message] = field(default_factory=dict)


@dataclass(frozen=True)
class Seen:
    """A request as the server saw it: the operation's name, the queue, the query; headers lower-case."""

    operation: str
    queue: str
    query: dict[str, str]
    headers: dict[str, str]


class _Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _no_message() -> _Refusal:
    return _Refusal(404, "MessageNotExist", "Message not exist.")


class FakeMns(RestartableServer):
    """One MNS account endpoint; ``start`` and ``stop`` keep the port and the queues."""

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        clock: Callable[[], float] = time.time,
        security_token: str | None = None,
    ) -> None:
        super().__init__()
        self.access_key_id = access_key_id
        self._secret = access_key_secret
        self._token = security_token  # an STS token every request must carry (the security-token header)
        self.clock = clock
        self.queues: dict[str, StoredQueue] = {}
        self.requests: list[Seen] = []
        self.hold: threading.Event | None = None  # set: answers wait until it is set (a hung service)
        self.denied: set[str] = set()  # operations the key may not call (403 AccessDenied)
        self._issued: set[str] = set()  # every receipt handle ever handed out

    def __exit__(self, *exc: object) -> None:
        if self.hold is not None:
            self.hold.set()
        super().__exit__(*exc)

    def seen(self, operation: str) -> list[Seen]:
        with self.lock:
            return [r for r in self.requests if r.operation == operation]

    def _now(self) -> int:
        return int(self.clock() * 1000)

    # -- the signature, as Alibaba documents it -----------------------------------------------------------

    def _check_signature(self, method: str, resource: str, headers: dict[str, str], body: bytes) -> None:
        auth = headers.get("authorization", "")
        if not auth:
            raise _Refusal(400, "MissingAuthorizationHeader", "Authorization header is required.")
        scheme, _, credential = auth.partition(" ")
        key_id, _, signature = credential.partition(":")
        if scheme != "MNS" or not signature:
            raise _Refusal(400, "InvalidAuthorizationHeader", "The Authorization header format is invalid.")
        if "date" not in headers:
            raise _Refusal(400, "MissingDateHeader", "Date header is required.")
        try:
            parsedate_to_datetime(headers["date"])
        except (TypeError, ValueError):
            raise _Refusal(400, "InvalidDateHeader", "The Date header format is invalid.") from None
        if key_id != self.access_key_id:
            raise _Refusal(403, "InvalidAccessKeyId", "The AccessKey Id you provided is not exist.")
        if headers.get("security-token") != self._token:
            raise _Refusal(403, "InvalidSecurityToken", "The security token you provided is invalid.")
        mns_headers = "".join(
            f"{name}:{value}\n" for name, value in sorted(headers.items()) if name.startswith("x-mns-")
        )
        to_sign = (
            f"{method}\n{headers.get('content-md5', '')}\n{headers.get('content-type', '')}\n"
            f"{headers['date']}\n{mns_headers}{resource}"
        )
        expected = base64.b64encode(
            hmac.new(self._secret.encode(), to_sign.encode(), hashlib.sha1).digest()
        ).decode()
        if not hmac.compare_digest(expected, signature):
            raise _Refusal(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.",
            )
        # MNS's Content-MD5 is the base64 of the body's hexadecimal MD5 (as Alibaba's SDKs send it).
        digest = base64.b64encode(hashlib.md5(body).hexdigest().encode()).decode()
        if "content-md5" in headers and headers["content-md5"] != digest:
            raise _Refusal(400, "InvalidDegist", "The Content-MD5 you specified is invalid.")

    # -- the operations -----------------------------------------------------------------------------------

    def _answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple:
        url = urlsplit(target)
        # MNS reads the query literally: a receipt handle's '+' and '/' are not decoded.
        query = dict(pair.partition("=")[::2] for pair in url.query.split("&") if pair)
        segments = [unquote(s) for s in url.path.strip("/").split("/")]
        name = segments[1] if len(segments) > 1 and segments[0] == "queues" else ""
        operation = self._operation(method, segments, query)
        with self.lock:
            self.requests.append(Seen(operation, name, query, headers))
        self._check_signature(method, target, headers, body)
        if headers.get("x-mns-version") != "2015-06-06":
            raise _Refusal(400, "InvalidArgument", "The x-mns-version header is missing or not 2015-06-06.")
        if not name:
            raise _Refusal(400, "InvalidRequestURL", "Http request URL format invalid.")
        if operation in self.denied:
            raise _Refusal(
                403,
                "AccessDenied",
                "The OwnerId that your Access Key Id associated to is forbidden for this operation.",
            )
        with self.lock:
            if operation == "CreateQueue":
                return self._create(name, body)
            queue = self.queues.get(name)
            if queue is None:
                raise _Refusal(404, "QueueNotExist", "The queue name you provided is not exist.")
            self._expire(queue)
            if operation == "GetQueueAttributes":
                return 200, {}, self._attributes(queue)
            if operation == "DeleteQueue":
                del self.queues[name]
                return 204, {}, b""
            if operation == "SendMessage":
                return self._send(queue, body)
            if operation in ("ReceiveMessage", "BatchReceiveMessage"):
                return self._receive(queue, query, batch=operation == "BatchReceiveMessage")
            if operation in ("PeekMessage", "BatchPeekMessage"):
                return self._peek(queue, query, batch=operation == "BatchPeekMessage")
            if operation == "DeleteMessage":
                del queue.messages[self._leased(queue, query).id]
                return 204, {}, b""
            if operation == "ChangeMessageVisibility":
                return self._change(queue, query)
        raise _Refusal(400, "InvalidRequestURL", "Http request URL format invalid.")

    @staticmethod
    def _operation(method: str, segments: list[str], query: dict[str, str]) -> str:
        if len(segments) == 2:
            if method == "PUT" and "metaoverride" not in query:
                return "CreateQueue"
            return {"GET": "GetQueueAttributes", "DELETE": "DeleteQueue"}.get(method, "Unsupported")
        if len(segments) == 3 and segments[2] == "messages":
            if method == "POST":
                return "SendMessage"
            if method == "GET":
                peek = "Peek" if query.get("peekonly") == "true" else "Receive"
                return ("Batch" if "numOfMessages" in query else "") + peek + "Message"
            if method == "DELETE":
                return "DeleteMessage"
            if method == "PUT":
                return "ChangeMessageVisibility"
        return "Unsupported"

    def _create(self, name: str, body: bytes) -> tuple:
        if not _QUEUE_NAME.fullmatch(name):
            raise _Refusal(
                400,
                "InvalidQueueName",
                "The queue name you provided is not valid. It must start with a letter or digit and "
                "contain only letters, digits and hyphens (-), at most 120 characters.",
            )
        given = _fields(body, "Queue")
        attributes = {}
        for key, (default, low, high) in ATTRIBUTES.items():
            value = _whole(given.get(key, str(default)), key, low, high)
            attributes[key] = value
        existing = self.queues.get(name)
        if existing is not None:
            if existing.attributes != attributes:
                raise _Refusal(409, "QueueAlreadyExist", "The queue you want to create is already exist.")
            return 204, {"Location": f"{self.endpoint}/queues/{name}"}, b""  # the SDK reads it on 204 too
        self.queues[name] = StoredQueue(name, attributes, self._now())
        return 201, {"Location": f"{self.endpoint}/queues/{name}"}, b""

    def _expire(self, queue: StoredQueue) -> None:
        """Messages past the queue's retention period are gone."""
        limit = self._now() - queue.attributes["MessageRetentionPeriod"] * 1000
        for message_id in [m.id for m in queue.messages.values() if m.enqueued <= limit]:
            del queue.messages[message_id]

    def _attributes(self, queue: StoredQueue) -> bytes:
        now = self._now()
        active = sum(m.next_visible <= now for m in queue.messages.values())
        delayed = sum(m.next_visible > now and not m.dequeue_count for m in queue.messages.values())
        inactive = len(queue.messages) - active - delayed
        return _xml(
            "Queue",
            QueueName=queue.name,
            CreateTime=str(queue.created // 1000),
            LastModifyTime=str(queue.created // 1000),
            **{key: str(value) for key, value in queue.attributes.items()},
            ActiveMessages=str(active),
            InactiveMessages=str(inactive),
            DelayMessages=str(delayed),
            LoggingEnabled="False",
        )

    def _send(self, queue: StoredQueue, body: bytes) -> tuple:
        given = _fields(body, "Message")
        text = given.get("MessageBody", "")
        size = len(text.encode())
        limit = queue.attributes["MaximumMessageSize"]
        if not 1 <= size <= limit:
            raise _Refusal(
                400, "InvalidArgument", f"The value of MessageBody should between 1 and {limit} bytes."
            )
        delay = _whole(given.get("DelaySeconds", str(queue.attributes["DelaySeconds"])), "DelaySeconds",
                       0, 604_800)  # fmt: skip
        _whole(given.get("Priority", "8"), "Priority", 1, 16)
        now = self._now()
        message = _Message(uuid.uuid4().hex.upper(), text, now, now + delay * 1000)
        queue.messages[message.id] = message
        return 201, {}, _xml("Message", MessageId=message.id, MessageBodyMD5=_md5(text))

    def _visible(self, queue: StoredQueue) -> list[_Message]:
        now = self._now()
        return sorted((m for m in queue.messages.values() if m.next_visible <= now), key=lambda m: m.enqueued)

    def _count(self, query: dict[str, str], batch: bool) -> int:
        return _whole(query["numOfMessages"], "numOfMessages", 1, 16) if batch else 1

    def _receive(self, queue: StoredQueue, query: dict[str, str], *, batch: bool) -> tuple:
        if query.get("waitseconds", "0") != "0":
            raise _Refusal(400, "InvalidArgument", "The fake answers at once: send waitseconds=0.")
        taken = self._visible(queue)[: self._count(query, batch)]
        if not taken:
            raise _no_message()
        now = self._now()
        for message in taken:
            message.dequeue_count += 1
            message.first_dequeue = message.first_dequeue or now
            message.next_visible = now + queue.attributes["VisibilityTimeout"] * 1000
            message.handle = self._handle()
        items = [self._fields(m, receipt=True) for m in taken]
        return 200, {}, _messages(items) if batch else _xml("Message", **items[0])

    def _peek(self, queue: StoredQueue, query: dict[str, str], *, batch: bool) -> tuple:
        shown = self._visible(queue)[: self._count(query, batch)]
        if not shown:
            raise _no_message()
        items = [self._fields(m, receipt=False) for m in shown]
        return 200, {}, _messages(items) if batch else _xml("Message", **items[0])

    def _handle(self) -> str:
        handle = base64.b64encode(secrets.token_bytes(24)).decode()  # with '+' and '/', as MNS's are
        self._issued.add(handle)
        return handle

    def _fields(self, message: _Message, *, receipt: bool) -> dict[str, str]:
        out = {
            "MessageId": message.id,
            "MessageBodyMD5": _md5(message.body),
            "MessageBody": message.body,
            "EnqueueTime": str(message.enqueued),
            "FirstDequeueTime": str(message.first_dequeue),
            "DequeueCount": str(message.dequeue_count),
            "Priority": "8",
        }
        if receipt:
            out |= {"ReceiptHandle": message.handle, "NextVisibleTime": str(message.next_visible)}
        return out

    def _leased(self, queue: StoredQueue, query: dict[str, str]) -> _Message:
        """The message whose current lease ``ReceiptHandle`` is; a handle is valid until NextVisibleTime."""
        handle = query.get("ReceiptHandle", "")
        if not handle:
            raise _Refusal(400, "MissingReceiptHandle", "ReceiptHandle is required.")
        if handle not in self._issued:
            raise _Refusal(400, "ReceiptHandleError", "The receipt handle you provide is not valid.")
        for message in queue.messages.values():
            if message.handle == handle and message.next_visible > self._now():
                return message
        raise _no_message()

    def _change(self, queue: StoredQueue, query: dict[str, str]) -> tuple:
        if "VisibilityTimeout" not in query:
            raise _Refusal(400, "MissingVisibilityTimeout", "VisibilityTimeout is required.")
        timeout = _whole(query["VisibilityTimeout"], "VisibilityTimeout", 1, 43_200)
        message = self._leased(queue, query)
        message.next_visible = self._now() + timeout * 1000
        message.handle = self._handle()
        return (
            200,
            {},
            _xml("ChangeVisibility", ReceiptHandle=message.handle, NextVisibleTime=str(message.next_visible)),
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                # Headers and body are two writes: without this, each answer waits for a delayed ACK.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                fake.track(self.connection)

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                request_id = uuid.uuid4().hex[:24].upper()
                try:
                    status, out, data = fake._answer(self.command, self.path, headers, body)
                except _Refusal as refusal:
                    status, out = refusal.status, {}
                    data = _xml(
                        "Error",
                        Code=refusal.code,
                        Message=refusal.message,
                        RequestId=request_id,
                        HostId=fake.endpoint,
                    )
                if fake.hold is not None:
                    fake.hold.wait()
                try:
                    self.send_response(status)
                    if data:
                        self.send_header("Content-Type", "text/xml;charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("x-mns-request-id", request_id)
                    self.send_header("x-mns-version", "2015-06-06")
                    for name, value in out.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    pass

            do_GET = do_PUT = do_POST = do_DELETE = _serve

        return Handler


def _whole(text: str, name: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise _Refusal(
            400, "InvalidArgument", f"The value of {name} should between {low} and {high} seconds/bytes."
        )
    return value


def _fields(body: bytes, root: str) -> dict[str, str]:
    """The children of an MNS request document, whose root must be ``root`` (in MNS's namespace or none)."""
    try:
        document = ElementTree.fromstring(body) if body else ElementTree.Element(root)
    except ElementTree.ParseError:
        raise _Refusal(400, "MalformedXML", "The XML you provided was not well-formed.") from None
    if document.tag not in (root, f"{{{NAMESPACE}}}{root}"):
        raise _Refusal(
            400,
            "InvalidArgument",
            f"The XML you provided did not validate against our published schema, cause by {document.tag}.",
        )
    return {child.tag.rpartition("}")[2]: child.text or "" for child in document}


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest().upper()


def _xml(root: str, **children: str) -> bytes:
    inner = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in children.items())
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{NAMESPACE}">{inner}</{root}>'.encode()


def _messages(items: list[dict[str, str]]) -> bytes:
    inner = "".join(
        "<Message>" + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in item.items()) + "</Message>"
        for item in items
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Messages xmlns="{NAMESPACE}">{inner}</Messages>'.encode()
    )
