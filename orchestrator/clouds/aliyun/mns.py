"""The Queue protocol on Alibaba Cloud's Simple Message Queue (formerly MNS), through aliyun-mns-sdk.

MNS keeps the visibility timeout, the dequeue count and the receipt handles itself; as the Azure adapter does,
this one adds what Azure Functions would: a message received more than ``max_attempts`` times is moved to
``<name>-poison`` instead of being handed out. Where MNS cannot do what the protocol allows, the call is
refused with an InvalidInput naming the argument (docs/aliyun.md lists each):

- a receive or lease of more than 12 hours (MNS's ``VisibilityTimeout`` is 1 to 43,200 s); MNS's receive takes
  no timeout of its own, so a receive whose timeout differs from the queue's ``VisibilityTimeout`` (30 s, as
  the adapter creates queues) sets it per message with ``ChangeMessageVisibility``;
- a time to live other than the queue's ``MessageRetentionPeriod`` (7 days, the protocol's default): MNS has
  no time to live per message, and keeps none for ever;
- a peek at more than 16 messages (``BatchPeekMessage``'s limit; a receive of up to 32 takes two calls);
- a body of more than 48 KiB: bodies travel base64-encoded (the SDK's default, so every SDK reads them), so
  the bytes arrive exactly as sent, carriage returns included, and 48 KiB is what MNS's 64 KiB then holds.

Releasing a lease (a visibility timeout of 0) asks MNS for its least, 1 s. A receipt handle is valid until
its message's next visible time (MNS's rule, stricter than Azure's); a stale one is PopReceiptMismatch when
this object handed out a later one for the message, else MessageNotFound (MNS answers MessageNotExist to
both).

The SDK holds one HTTP connection per client and sets no timeout on HTTPS; each queue object has its own
client, used under a lock, with a timeout set on its connection.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from mns.account import Account
from mns.mns_exception import MNSClientNetworkException, MNSExceptionBase, MNSServerException
from mns.mns_request import GetQueueAttributesRequest, GetQueueAttributesResponse
from mns.queue import Message as MnsMessage
from mns.queue import Queue as SdkQueue
from mns.queue import QueueMeta

from orchestrator.errors import InvalidInput, ServiceError
from orchestrator.health import ConnectionCheck
from orchestrator.queues.base import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TTL_SECONDS,
    POISON_SUFFIX,
    Message,
    MessageNotFound,
    PopReceiptMismatch,
    check_batch,
    check_queue_name,
    check_seconds,
    check_ttl,
    encode_body,
)

T = TypeVar("T")

MAX_VISIBILITY_SECONDS = 43_200  # MNS: VisibilityTimeout 1..43200 s
MAX_DELAY_SECONDS = 7 * 24 * 3600  # MNS: DelaySeconds 0..604800 s
RETENTION_SECONDS = (
    DEFAULT_TTL_SECONDS  # MessageRetentionPeriod of the queues the adapter creates (MNS's most)
)
QUEUE_VISIBILITY_SECONDS = 30  # VisibilityTimeout of the queues the adapter creates (the protocol's default)
MAX_MESSAGE_SIZE = 64 * 1024  # MaximumMessageSize: MNS's most, what the adapter creates queues with
MAX_BODY_BYTES = MAX_MESSAGE_SIZE // 4 * 3  # 48 KiB: base64 of this fills 64 KiB
MAX_PER_CALL = 16  # BatchReceiveMessage and BatchPeekMessage hand out at most 16
REMEMBERED_LEASES = 1024  # received messages kept per queue object, for update_visibility's answer
_ENDPOINT_EXAMPLE = "https://<account-id>.mns.<region>.aliyuncs.com"
_RETRIED = ("InternalError", "InternalServerError", "QpsLimitExceeded")


@dataclass(frozen=True)
class MnsConfig:
    """Where the queues live and the access key that signs requests; the secret never appears in repr()."""

    endpoint: str
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(default="", repr=False)  # STS: sent as the security-token header
    timeout_s: float = 30.0  # connecting and each read of one request
    retries: int = 3  # network failures and MNS's 5xx, with backoff

    def __post_init__(self) -> None:
        parts = urlsplit(self.endpoint or "")
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path.strip("/")
            or parts.query
            or parts.username
        ):
            raise InvalidInput(
                "endpoint",
                f"{self.endpoint!r} must be the account's Simple Message Queue endpoint, such as "
                f"{_ENDPOINT_EXAMPLE}",
            )
        if not self.access_key_id:
            raise InvalidInput("access_key_id", "is empty; give the RAM user's AccessKey ID")
        if not self.access_key_secret:
            raise InvalidInput("access_key_secret", "is empty; give the RAM user's AccessKey secret")
        if self.retries < 0:
            raise InvalidInput("retries", f"{self.retries} must be 0 or more")
        if self.timeout_s <= 0:
            raise InvalidInput("timeout_s", f"{self.timeout_s} must be positive")

    @property
    def base_url(self) -> str:
        parts = urlsplit(self.endpoint)
        return f"{parts.scheme}://{parts.netloc}"


class _Refused(Exception):
    """MNS refused with an error code a caller may expect; ``error`` is what to raise otherwise."""

    def __init__(self, code: str, error: ServiceError) -> None:
        super().__init__(code)
        self.code = code
        self.error = error


def _moment(milliseconds: int | str) -> datetime:
    return datetime.fromtimestamp(int(milliseconds) / 1000, UTC)


class MnsQueue:
    """A named MNS queue; it is created on first use, its poison queue on first poison message."""

    def __init__(
        self, name: str, config: MnsConfig, *, max_attempts: int | None = DEFAULT_MAX_ATTEMPTS
    ) -> None:
        if max_attempts is not None and (
            isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1
        ):
            raise InvalidInput("max_attempts", f"{max_attempts!r} must be a whole number of at least 1")
        self._name = check_queue_name(name, reserve_poison_suffix=max_attempts is not None)
        self.config = config
        self.endpoint = config.base_url
        self._max_attempts = max_attempts
        self._client = Account(
            self.endpoint, config.access_key_id, config.access_key_secret, config.security_token
        ).mns_client
        # The SDK gives a plain-HTTP connection a socket timeout and an HTTPS one none: set both.
        self._client.set_connection_timeout(config.timeout_s)
        self._client.http.conn.timeout = config.timeout_s
        self._queue = SdkQueue(name, self._client)
        self._queue.set_encoding(True)
        self._lock = threading.Lock()
        self._created = False
        self._visibility = QUEUE_VISIBILITY_SECONDS
        self._retention = RETENTION_SECONDS
        self._max_size = MAX_MESSAGE_SIZE
        self._held: dict[str, Message] = {}
        self._poison: MnsQueue | None = None

    def __repr__(self) -> str:
        return f"MnsQueue({self.endpoint}, name={self._name!r})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def poison(self) -> MnsQueue | None:
        if self._max_attempts is None:
            return None
        if self._poison is None:
            self._poison = MnsQueue(self._name + POISON_SUFFIX, self.config, max_attempts=None)
        return self._poison

    def close(self) -> None:
        """Release the HTTP connections (this queue's and its poison queue's)."""
        if self._poison is not None:
            self._poison.close()
        with self._lock:
            self._client.close_connection()

    # -- calls ---------------------------------------------------------------------------------------------

    def _call(self, action: str, run: Callable[[], T], *, retries: int | None = None) -> T:
        """One SDK call under this object's lock, retried on network failures and MNS's 5xx. A refusal or a
        failure is a _Refused carrying MNS's code (for callers that expect some) and the ServiceError to
        raise, which names the setting to check. The SDK's own text is left out: it holds URLs and request
        details."""
        attempts = (self.config.retries if retries is None else retries) + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                with self._lock:
                    return run()
            except MNSServerException as err:
                if err.type in _RETRIED and not last:
                    time.sleep(0.2 * 2**attempt)
                    continue
                raise _Refused(err.type, self._refusal(err.type, action)) from None
            except MNSClientNetworkException as err:
                if err.type == "RespDataDamaged":
                    raise _Refused(
                        err.type,
                        ServiceError(
                            f"{self.endpoint} answered the request to {action}, but not as Simple Message "
                            "Queue does; check that endpoint is the account's MNS endpoint, such as "
                            f"{_ENDPOINT_EXAMPLE}",
                            "endpoint",
                        ),
                    ) from None
                if not last:
                    time.sleep(0.2 * 2**attempt)
                    continue
                raise _Refused(
                    err.type,
                    ServiceError(
                        f"cannot reach Simple Message Queue at {self.endpoint} to {action}; check endpoint "
                        "and that the service answers there",
                        "endpoint",
                    ),
                ) from None
            except MNSExceptionBase as err:
                raise _Refused(
                    err.type, ServiceError(f"Simple Message Queue refused to {action} ({err.type})")
                ) from None
        raise AssertionError("unreachable")

    def _refusal(self, code: str, action: str) -> ServiceError:
        where = f"Simple Message Queue at {self.endpoint}"
        if code == "InvalidAccessKeyId":
            return ServiceError(f"{where} does not know the access key; check access_key_id", "access_key_id")
        if code == "SignatureDoesNotMatch":
            return ServiceError(
                f"{where} refused the signature; check access_key_secret", "access_key_secret"
            )
        if "SecurityToken" in code:
            return ServiceError(
                f"{where} refused the security token ({code}); renew security_token with its temporary "
                "access key",
                "security_token",
            )
        if code == "AccessDenied":
            return ServiceError(
                f"{where} refused to {action} (AccessDenied); check the access key's permissions on the "
                "queue (mns:SendMessage, ReceiveMessage, DeleteMessage, ChangeMessageVisibility, "
                "PeekMessage, GetQueueAttributes, CreateQueue)",
                "access_key_id",
            )
        if code == "QueueNotExist":
            return ServiceError(
                f"queue {self._name!r} does not exist at {self.endpoint}; create it or let the access key "
                "create queues (mns:CreateQueue)",
                "queue",
            )
        return ServiceError(f"{where} answered {code} to {action}")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Calls whose refusals are all errors."""
        try:
            yield
        except _Refused as refused:
            raise refused.error from None

    def _ensure(self, retries: int | None = None) -> None:
        """Create the queue once per object with the adapter's attributes; an existing queue with other
        attributes is left as it is and its own are used (a queue the key may not create must exist)."""
        if self._created:
            return
        meta = QueueMeta(
            vis_timeout=QUEUE_VISIBILITY_SECONDS,
            max_msg_size=MAX_MESSAGE_SIZE,
            msg_ttl=RETENTION_SECONDS,
            delay_sec=0,
            polling_wait_sec=0,
        )
        try:
            self._call(f"create queue {self._name}", lambda: self._queue.create(meta), retries=retries)
        except _Refused as refused:
            if refused.code not in ("QueueAlreadyExist", "AccessDenied"):
                raise refused.error from None
            with self._errors():
                found = self._attributes(f"read the attributes of {self._name}", retries)
            self._visibility = found.visibility_timeout
            self._retention = found.message_retention_period
            self._max_size = found.maximum_message_size
        self._created = True

    def _attributes(self, action: str, retries: int | None = None) -> GetQueueAttributesResponse:
        """GetQueueAttributes through the client, which (unlike the SDK's Queue) warns of nothing."""

        def run() -> GetQueueAttributesResponse:
            answer = GetQueueAttributesResponse()
            self._client.get_queue_attributes(GetQueueAttributesRequest(self._name), answer)
            return answer

        return self._call(action, run, retries=retries)

    # -- the protocol --------------------------------------------------------------------------------------

    def test_connection(self) -> ConnectionCheck:
        """Reach the queue once without retries (creating it if missing); say what works or what to fix."""
        try:
            self._ensure(retries=0)
            with self._errors():
                count = self._count(self._attributes("check the connection", retries=0))
        except ServiceError as err:
            return ConnectionCheck(False, str(err), err.field)
        return ConnectionCheck(
            True, f"connected to queue {self._name!r} at {self.endpoint} (about {count} messages in it)"
        )

    def send(
        self, body: str | dict[str, Any], visibility_delay: int = 0, ttl: int | None = DEFAULT_TTL_SECONDS
    ) -> str:
        text = encode_body(body)
        delay = check_seconds("visibility_delay", visibility_delay, 0, MAX_DELAY_SECONDS)
        ttl = check_ttl(ttl, delay)
        self._ensure()
        if ttl != self._retention:
            raise InvalidInput(
                "ttl",
                f"{ttl!r} cannot be kept: Simple Message Queue has no time to live per message and keeps "
                f"every message of queue {self._name} for its MessageRetentionPeriod, {self._retention} s; "
                "send with that ttl",
            )
        return self._put(text, delay)

    def _put(self, text: str, delay: int) -> str:
        limit = self._max_size // 4 * 3
        size = len(text.encode("utf-8"))
        if size > limit:
            raise InvalidInput(
                "body",
                f"the message is {size} bytes and a Simple Message Queue message holds at most {limit} "
                f"({limit // 1024} KiB) once base64-encoded; put the payload in the lake and send its path",
            )
        with self._errors():
            sent = self._call(
                f"send to {self._name}",
                lambda: self._queue.send_message(MnsMessage(text, delay_seconds=delay)),
            )
        return sent.message_id

    def receive(self, max_messages: int = 1, visibility_timeout: int = 30) -> list[Message]:
        wanted = check_batch(max_messages)
        timeout = check_seconds("visibility_timeout", visibility_timeout, 1, MAX_VISIBILITY_SECONDS)
        self._ensure()
        taken: list[Message] = []
        while len(taken) < wanted:
            asked = min(MAX_PER_CALL, wanted - len(taken))
            batch = self._batch(
                f"receive from {self._name}", lambda n=asked: self._queue.batch_receive_message(n, 0)
            )
            for item in batch:
                if self._max_attempts is not None and item.dequeue_count > self._max_attempts:
                    self._to_poison(item)
                    continue
                handle, next_visible = item.receipt_handle, item.next_visible_time
                if timeout != self._visibility:
                    try:
                        changed = self._change(handle, timeout)
                    except _Refused as refused:
                        if refused.code in ("MessageNotExist", "ReceiptHandleError"):
                            continue  # its lease ran out already: it is someone else's now
                        raise refused.error from None
                    handle, next_visible = changed.receipt_handle, changed.next_visible_time
                taken.append(self._remember(self._message(item, handle, _moment(next_visible))))
            if len(batch) < asked:  # the queue had no more visible messages
                break
        return taken

    def _batch(self, action: str, run: Callable[[], list[Any]]) -> list[Any]:
        """A batch receive or peek; MNS answers MessageNotExist when no message is visible."""
        try:
            return self._call(action, run)
        except _Refused as refused:
            if refused.code == "MessageNotExist":
                return []
            raise refused.error from None

    def _change(self, handle: str, timeout: int) -> MnsMessage:
        return self._call(
            f"change a message's visibility in {self._name}",
            lambda: self._queue.change_message_visibility(handle, timeout),
        )

    def _to_poison(self, item: Any) -> None:
        """Copy an exhausted message to the poison queue, then delete it here."""
        poison = self.poison
        assert poison is not None  # only a queue with max_attempts moves messages
        poison._ensure()
        poison._put(item.message_body.decode("utf-8"), 0)
        with self._errors():
            self._call(
                f"move a message from {self._name} to {poison.name}",
                lambda: self._queue.delete_message(item.receipt_handle),
            )

    def _message(self, item: Any, receipt: str | None, next_visible_at: datetime) -> Message:
        inserted = _moment(item.enqueue_time)
        return Message(
            id=item.message_id,
            body=item.message_body.decode("utf-8"),
            pop_receipt=receipt,
            dequeue_count=item.dequeue_count,
            inserted_at=inserted,
            next_visible_at=next_visible_at,
            expires_at=_moment(item.enqueue_time + self._retention * 1000),
        )

    def _remember(self, message: Message) -> Message:
        """Keep the latest lease of a message: MNS's answer to a visibility change lacks its body and counts,
        and its MessageNotExist does not tell a stale receipt from a gone message."""
        self._held.pop(message.id, None)
        self._held[message.id] = message
        while len(self._held) > REMEMBERED_LEASES:
            del self._held[next(iter(self._held))]
        return message

    def _lost(self, refused: _Refused, message_id: str, receipt: str) -> Exception:
        """The protocol's error for a refused receipt."""
        if refused.code not in ("MessageNotExist", "ReceiptHandleError"):
            return refused.error
        held = self._held.get(message_id)
        if refused.code == "ReceiptHandleError" or (held is not None and held.pop_receipt != receipt):
            return PopReceiptMismatch(
                "the message was received again (or its lease changed) after this receipt was issued"
            )
        self._held.pop(message_id, None)
        return MessageNotFound(
            f"message is not in queue {self._name} under this receipt (deleted, expired, or its visibility "
            "timeout passed)"
        )

    def delete(self, message_id: str, pop_receipt: str) -> None:
        self._ensure()
        try:
            self._call(f"delete from {self._name}", lambda: self._queue.delete_message(pop_receipt))
        except _Refused as refused:
            raise self._lost(refused, message_id, pop_receipt) from None
        self._held.pop(message_id, None)

    def update_visibility(self, message_id: str, pop_receipt: str, visibility_timeout: int) -> Message:
        """MNS answers a change with only the new receipt and time, so the message must have been received
        through this object (as a worker extending its own lease does). 0 asks for MNS's least, 1 s."""
        timeout = check_seconds("visibility_timeout", visibility_timeout, 0, MAX_VISIBILITY_SECONDS)
        held = self._held.get(message_id)
        if held is None:
            raise InvalidInput(
                "message_id",
                f"{message_id} was not received through this queue object; extend a lease from the "
                "object that received the message",
            )
        try:
            changed = self._change(pop_receipt, max(timeout, 1))
        except _Refused as refused:
            raise self._lost(refused, message_id, pop_receipt) from None
        return self._remember(
            replace(
                held,
                pop_receipt=changed.receipt_handle,
                next_visible_at=_moment(changed.next_visible_time),
            )
        )

    def peek(self, max_messages: int = 1) -> list[Message]:
        wanted = check_batch(max_messages)
        if wanted > MAX_PER_CALL:
            raise InvalidInput(
                "max_messages", f"{wanted} is more than Simple Message Queue peeks at once ({MAX_PER_CALL})"
            )
        self._ensure()
        now = datetime.now(UTC)  # a peeked message is visible now; MNS does not say since when
        items = self._batch(f"peek at {self._name}", lambda: self._queue.batch_peek_message(wanted))
        return [self._message(item, None, now) for item in items]

    @staticmethod
    def _count(found: GetQueueAttributesResponse) -> int:
        return found.active_messages + found.inactive_messages + found.delay_messages

    def approximate_count(self) -> int:
        """Visible, received and delayed messages, as GetQueueAttributes counts them."""
        self._ensure()
        with self._errors():
            return self._count(self._attributes(f"count the messages of {self._name}"))

    def clear(self) -> None:
        """MNS has no call that empties a queue (and a deleted one cannot be made again at once:
        QueueDeletedRecently), so the visible messages are received and deleted, 16 at a time; messages
        held by a consumer or delayed cannot be reached, and a queue left with some is an error saying so."""
        self._ensure()
        while batch := self._batch(
            f"clear {self._name}", lambda: self._queue.batch_receive_message(MAX_PER_CALL, 0)
        ):
            for item in batch:
                with contextlib.suppress(_Refused):  # gone meanwhile: cleared all the same
                    self._call(
                        f"clear {self._name}", lambda h=item.receipt_handle: self._queue.delete_message(h)
                    )
        self._held.clear()
        left = self.approximate_count()
        if left:
            raise ServiceError(
                f"queue {self._name} still holds {left} messages that are received or delayed; Simple "
                "Message Queue hands them out again only when their time comes, so clear it again then"
            )
