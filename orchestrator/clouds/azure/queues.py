"""The Queue protocol on Azure Storage Queues, with the local queue's semantics.

Azure keeps the visibility timeout, dequeue count, pop receipts and time to live itself; the adapter adds
what Azure Functions would: a message received more than ``max_attempts`` times is moved to
``<name>-poison`` instead of being handed out. Bodies travel as plain text (a dict as JSON), exactly as
the local queue stores them, so a message reads the same on either side.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from azure.core.exceptions import (
    ResourceExistsError,
)
from azure.storage.queue import ExponentialRetry, QueueClient, QueueMessage

from orchestrator.azure_accounts import StorageService, check_account
from orchestrator.config import AzureStorageSettings
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

_NEVER = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)  # Azure's expiry time of a message without ttl
REMEMBERED_LEASES = 1024  # received messages kept per queue object, for update_visibility's answer


@dataclass(frozen=True)
class AzureQueueConfig:
    """Where the queues live and how to sign in; the key and connection string never appear in repr()."""

    queue_url: str = ""
    account_key: str = field(default="", repr=False)
    connection_string: str = field(default="", repr=False)
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    retries: int = 3

    def __post_init__(self) -> None:
        check_account(
            "queue_url",
            self.queue_url,
            "https://<account>.queue.core.windows.net",
            self.account_key,
            self.connection_string,
        )
        if self.retries < 0:
            raise InvalidInput("retries", f"{self.retries} must be 0 or more")
        for name in ("connect_timeout_s", "read_timeout_s"):
            if getattr(self, name) <= 0:
                raise InvalidInput(name, f"{getattr(self, name)} must be positive")

    @classmethod
    def from_settings(cls, settings: AzureStorageSettings) -> AzureQueueConfig:
        """The queue side of the storage settings; without a queue URL, the lake account's queue endpoint."""
        if settings.connection_string:
            return cls(queue_url=settings.queue_url, connection_string=settings.connection_string)
        queue_url, found = re.subn(r"\.(?:dfs|blob)\.core\.", ".queue.core.", settings.account_url)
        if not settings.queue_url and not found:
            raise InvalidInput(
                "queue_url",
                "set ORCHESTRATOR_AZURE_QUEUE_URL; it may be left out only when "
                "ORCHESTRATOR_AZURE_STORAGE_URL is an Azure endpoint, such as https://<account>.dfs.core.windows.net",
            )
        return cls(queue_url=settings.queue_url or queue_url, account_key=settings.account_key)


def _expiry(moment: datetime | None) -> datetime | None:
    """Azure's expiry time, with its far-future stand-in for 'never' as None."""
    return None if moment is None or moment >= _NEVER else moment


class AzureQueue:
    """A named Azure Storage Queue; it is created on first use, its poison queue on first poison message."""

    def __init__(
        self, name: str, config: AzureQueueConfig, *, max_attempts: int | None = DEFAULT_MAX_ATTEMPTS
    ) -> None:
        if max_attempts is not None and (isinstance(max_attempts, bool) or max_attempts < 1):
            raise InvalidInput("max_attempts", f"{max_attempts!r} must be a whole number of at least 1")
        self._name = check_queue_name(name, reserve_poison_suffix=max_attempts is not None)
        self.config = config
        self._max_attempts = max_attempts
        options: dict[str, Any] = {
            "connection_timeout": config.connect_timeout_s,
            "read_timeout": config.read_timeout_s,
            "retry_policy": ExponentialRetry(
                initial_backoff=1, increment_base=2, retry_total=config.retries, random_jitter_range=1
            ),
        }
        try:
            if config.connection_string:
                self._client = QueueClient.from_connection_string(config.connection_string, name, **options)
            else:
                self._client = QueueClient(config.queue_url, name, credential=config.account_key, **options)
        except ValueError:
            if config.connection_string:
                raise InvalidInput(
                    "connection_string", "is malformed; copy it again from the portal"
                ) from None
            raise InvalidInput(
                "queue_url",
                f"{config.queue_url!r} does not name a storage account; "
                "use https://<account>.queue.core.windows.net",
            ) from None
        parts = urlsplit(self._client.primary_endpoint)  # without the query, where a SAS token would sit
        self.endpoint = f"{parts.scheme}://{parts.netloc}{parts.path}".removesuffix(f"/{name}")
        self._errors = StorageService.of(
            "the queue service",
            self.endpoint,
            config.connection_string,
            "queue_url",
            "the storage account's queue endpoint",
        )
        self._created = False
        self._held: dict[str, Message] = {}
        self._poison: AzureQueue | None = None

    def __repr__(self) -> str:
        return f"AzureQueue({self.endpoint}, name={self._name!r})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def poison(self) -> AzureQueue | None:
        if self._max_attempts is None:
            return None
        if self._poison is None:
            self._poison = AzureQueue(self._name + POISON_SUFFIX, self.config, max_attempts=None)
        return self._poison

    def close(self) -> None:
        """Release the HTTP connections (this queue's and its poison queue's)."""
        if self._poison is not None:
            self._poison.close()
        self._client.close()

    def _service(self, action: str) -> contextlib.AbstractContextManager[None]:
        """A call to the queue: the SDK's failures become the protocol's errors."""
        return self._errors.calls(action, self._known)

    def _known(self, code: str | None) -> Exception | None:
        if code == "MessageNotFound":
            return MessageNotFound(f"message is not in queue {self._name} (deleted or expired)")
        if code == "PopReceiptMismatch":
            return PopReceiptMismatch("the message was received again after this pop receipt was issued")
        return None

    def _ensure(self, **options: Any) -> None:
        """Create the queue once per object; an existing queue is left as it is."""
        if self._created:
            return
        with self._service(f"create queue {self._name}"), contextlib.suppress(ResourceExistsError):
            self._client.create_queue(**options)
        self._created = True

    def test_connection(self) -> ConnectionCheck:
        """Reach the queue once without retries (creating it if missing); say what works or what to fix."""
        try:
            self._ensure(retry_total=0)
            with self._service("check the connection"):
                count = self._client.get_queue_properties(retry_total=0).approximate_message_count
        except ServiceError as err:
            return ConnectionCheck(False, str(err), err.field)
        return ConnectionCheck(
            True, f"connected to queue {self._name!r} at {self.endpoint} (about {count} messages in it)"
        )

    def send(
        self, body: str | dict[str, Any], visibility_delay: int = 0, ttl: int | None = DEFAULT_TTL_SECONDS
    ) -> str:
        text = encode_body(body)
        delay = check_seconds("visibility_delay", visibility_delay, 0)
        ttl = check_ttl(ttl, delay)
        self._ensure()
        with self._service(f"send to {self._name}"):
            sent = self._client.send_message(
                text, visibility_timeout=delay, time_to_live=-1 if ttl is None else ttl
            )
        return sent.id

    def receive(self, max_messages: int = 1, visibility_timeout: int = 30) -> list[Message]:
        wanted = check_batch(max_messages)
        timeout = check_seconds("visibility_timeout", visibility_timeout, 1)
        self._ensure()
        taken: list[Message] = []
        while len(taken) < wanted:
            asked = wanted - len(taken)
            with self._service(f"receive from {self._name}"):
                batch = list(
                    self._client.receive_messages(
                        messages_per_page=asked, max_messages=asked, visibility_timeout=timeout
                    )
                )
            for item in batch:
                if self._max_attempts is not None and item.dequeue_count > self._max_attempts:
                    self._to_poison(item)
                else:
                    taken.append(self._remember(self._message(item, item.pop_receipt, item.next_visible_on)))
            if len(batch) < asked:  # the queue had no more visible messages
                break
        return taken

    def _to_poison(self, item: QueueMessage) -> None:
        """Copy an exhausted message to the poison queue (never expiring), then delete it here."""
        poison = self.poison
        assert poison is not None  # only a queue with max_attempts moves messages
        poison.send(item.content, ttl=None)
        with self._service(f"move a message from {self._name} to {poison.name}"):
            self._client.delete_message(item.id, item.pop_receipt)

    @staticmethod
    def _message(item: QueueMessage, pop_receipt: str | None, next_visible_on: datetime) -> Message:
        """The protocol's message from the SDK's, with the lease given (Azure's peek has none)."""
        return Message(
            id=item.id,
            body=item.content,
            pop_receipt=pop_receipt,
            dequeue_count=item.dequeue_count,
            inserted_at=item.inserted_on,
            next_visible_at=next_visible_on,
            expires_at=_expiry(item.expires_on),
        )

    def _remember(self, message: Message) -> Message:
        """Keep the latest lease of a message, since Azure's update answer lacks its body and counts."""
        self._held.pop(message.id, None)
        self._held[message.id] = message
        while len(self._held) > REMEMBERED_LEASES:
            del self._held[next(iter(self._held))]
        return message

    def delete(self, message_id: str, pop_receipt: str) -> None:
        self._ensure()
        try:
            with self._service(f"delete from {self._name}"):
                self._client.delete_message(message_id, pop_receipt)
        except MessageNotFound:
            self._held.pop(message_id, None)
            raise
        self._held.pop(message_id, None)  # on PopReceiptMismatch a later lease of this object stays

    def update_visibility(self, message_id: str, pop_receipt: str, visibility_timeout: int) -> Message:
        """Azure answers an update with only the new receipt and time, so the message must have been
        received through this object (as a worker extending its own lease does)."""
        timeout = check_seconds("visibility_timeout", visibility_timeout, 0)
        held = self._held.get(message_id)
        if held is None:
            raise InvalidInput(
                "message_id",
                f"{message_id} was not received through this queue object; extend a lease from the "
                "object that received the message",
            )
        with self._service(f"update a message in {self._name}"):
            updated = self._client.update_message(message_id, pop_receipt, visibility_timeout=timeout)
        return self._remember(
            replace(held, pop_receipt=updated.pop_receipt, next_visible_at=updated.next_visible_on)
        )

    def peek(self, max_messages: int = 1) -> list[Message]:
        wanted = check_batch(max_messages)
        self._ensure()
        now = datetime.now(UTC)  # a peeked message is visible now; Azure does not say since when
        with self._service(f"peek at {self._name}"):
            items = self._client.peek_messages(max_messages=wanted)
        return [self._message(item, None, now) for item in items]

    def approximate_count(self) -> int:
        self._ensure()
        with self._service(f"count the messages of {self._name}"):
            return self._client.get_queue_properties().approximate_message_count

    def clear(self) -> None:
        self._ensure()
        with self._service(f"clear {self._name}"):
            self._client.clear_messages()
