"""The Queue protocol, shaped after Azure Storage Queues so the local queue and the Azure adapter swap."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from orchestrator.errors import InvalidInput, NotFound, WorkbenchError

Clock = Callable[[], float]
"""Seconds since the epoch; injectable so tests of visibility timeouts need not sleep."""

MAX_BODY_BYTES = 64 * 1024  # Azure's limit on one message
MAX_BATCH = 32  # Azure hands out at most 32 messages per receive or peek
MAX_VISIBILITY_SECONDS = 7 * 24 * 3600  # Azure's longest visibility timeout
DEFAULT_TTL_SECONDS = 7 * 24 * 3600  # Azure's default time to live
DEFAULT_MAX_ATTEMPTS = 5  # Azure Functions' default maxDequeueCount
POISON_SUFFIX = "-poison"  # Azure Functions' naming of the poison queue

_QUEUE_NAME = re.compile(r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class Message:
    """One message as handed out by receive (with a pop receipt) or peek (without one)."""

    id: str
    body: str
    pop_receipt: str | None
    dequeue_count: int
    inserted_at: datetime
    next_visible_at: datetime
    expires_at: datetime | None  # None: never expires

    def json(self) -> Any:
        """The body parsed as JSON (what ``send`` produced from a dict)."""
        return json.loads(self.body)


class LeaseLost(WorkbenchError):
    """The message is no longer held with this pop receipt; someone else owns or finished it."""


class MessageNotFound(LeaseLost, NotFound):
    """The message was deleted or expired (Azure: 404 MessageNotFound)."""


class PopReceiptMismatch(LeaseLost):
    """The message was received again since, so the receipt is stale (Azure: 400 PopReceiptMismatch)."""


class Queue(Protocol):
    """A durable queue with at-least-once delivery: a received message stays hidden for its visibility
    timeout and is gone only when deleted with its latest pop receipt."""

    @property
    def name(self) -> str: ...

    @property
    def poison(self) -> Queue | None:
        """Where messages go after more than ``max_attempts`` receives; None for a poison queue itself."""
        ...

    def send(
        self, body: str | dict[str, Any], visibility_delay: int = 0, ttl: int | None = DEFAULT_TTL_SECONDS
    ) -> str:
        """Add a message (a dict is sent as JSON) and return its id; ``ttl=None`` never expires."""
        ...

    def receive(self, max_messages: int = 1, visibility_timeout: int = 30) -> list[Message]:
        """Take up to ``max_messages`` visible messages, hiding each for ``visibility_timeout`` seconds;
        one already received ``max_attempts`` times moves to the poison queue instead of being handed out."""
        ...

    def delete(self, message_id: str, pop_receipt: str) -> None:
        """Remove a received message; a stale receipt is PopReceiptMismatch, a gone one MessageNotFound."""
        ...

    def update_visibility(self, message_id: str, pop_receipt: str, visibility_timeout: int) -> Message:
        """Extend (or end, with 0) a received message's invisibility; returns it with a new pop receipt."""
        ...

    def peek(self, max_messages: int = 1) -> list[Message]:
        """Look at visible messages without receiving them (no pop receipt, no dequeue count change)."""
        ...

    def approximate_count(self) -> int:
        """Messages in the queue, visible or not."""
        ...

    def clear(self) -> None:
        """Remove every message of this queue."""
        ...


def check_queue_name(name: str, *, reserve_poison_suffix: bool = True) -> str:
    """A queue name valid in Azure: 3-63 lower-case letters, digits and single hyphens."""
    limit = 63 - len(POISON_SUFFIX) if reserve_poison_suffix else 63
    if not isinstance(name, str) or len(name) > limit or not _QUEUE_NAME.fullmatch(name):
        raise InvalidInput(
            "queue",
            f"{name!r} is not a valid queue name; use 3-{limit} lower-case letters, digits and single "
            "hyphens, starting and ending with a letter or digit",
        )
    return name


# Characters XML 1.0 cannot carry: Azure would store such a message and never hand it out intact.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def encode_body(body: str | dict[str, Any]) -> str:
    """The text a message carries: a dict as JSON, a string as is; refused beyond Azure's 64 KiB or when it
    holds characters a queue message cannot carry (every implementation refuses the same bodies)."""
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    if _NOT_XML.search(text):
        raise InvalidInput(
            "body", "holds control characters a queue message cannot carry; send a dict (as JSON) instead"
        )
    size = len(text.encode("utf-8"))
    if size > MAX_BODY_BYTES:
        raise InvalidInput(
            "body",
            f"the message is {size} bytes and a queue message holds at most {MAX_BODY_BYTES} (64 KiB); "
            "put the payload in the lake and send its path",
        )
    return text


def check_seconds(field: str, value: int, low: int, high: int = MAX_VISIBILITY_SECONDS) -> int:
    """A whole number of seconds within Azure's limits for ``field``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(field, f"{value!r} must be a whole number of seconds from {low} to {high}")
    return value


def check_batch(max_messages: int) -> int:
    """How many messages one receive or peek may return: 1 to 32, as in Azure."""
    if (
        isinstance(max_messages, bool)
        or not isinstance(max_messages, int)
        or not 1 <= max_messages <= MAX_BATCH
    ):
        raise InvalidInput("max_messages", f"{max_messages!r} must be a whole number from 1 to {MAX_BATCH}")
    return max_messages


def check_ttl(ttl: int | None, visibility_delay: int) -> int | None:
    """A time to live longer than the visibility delay, or None for a message that never expires."""
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1:
        raise InvalidInput("ttl", f"{ttl!r} must be a whole number of seconds of at least 1, or None")
    if ttl <= visibility_delay:
        raise InvalidInput("ttl", f"{ttl} must be longer than the visibility delay ({visibility_delay} s)")
    return ttl
