"""The durable local queue: one SQLite file shared by the worker and the UI, with Azure Storage Queue
semantics (visibility timeout, dequeue count, pop receipts, time to live, poison queue)."""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.config import Settings, get_settings
from orchestrator.errors import InvalidInput
from orchestrator.queues.base import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TTL_SECONDS,
    POISON_SUFFIX,
    Clock,
    Message,
    MessageNotFound,
    PopReceiptMismatch,
    check_batch,
    check_queue_name,
    check_seconds,
    check_ttl,
    encode_body,
)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS messages (
        seq INTEGER PRIMARY KEY,
        queue TEXT NOT NULL,
        id TEXT NOT NULL UNIQUE,
        body TEXT NOT NULL,
        pop_receipt TEXT,
        dequeue_count INTEGER NOT NULL DEFAULT 0,
        inserted_at REAL NOT NULL,
        next_visible_at REAL NOT NULL,
        expires_at REAL
    )""",
    "CREATE INDEX IF NOT EXISTS messages_by_visibility ON messages (queue, next_visible_at, seq)",
)

_COLUMNS = "id, body, pop_receipt, dequeue_count, inserted_at, next_visible_at, expires_at"


def connect_sqlite(path: Path) -> sqlite3.Connection:
    """Open a state database for use by several processes at once: WAL, a generous busy wait, autocommit.

    ``synchronous=NORMAL`` keeps every committed transaction across a killed process (WAL is on disk);
    only a power cut may lose the last commits, the trade Azure-like throughput needs.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A transaction that takes the write lock up front, so read-then-write is atomic across processes."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def utc_time(seconds: float | None) -> datetime | None:
    """A stored epoch timestamp as an aware UTC datetime (None stays None)."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _message(row: tuple[Any, ...], *, pop_receipt: str | None) -> Message:
    msg_id, body, _, dequeue_count, inserted_at, next_visible_at, expires_at = row
    return Message(
        id=msg_id,
        body=body,
        pop_receipt=pop_receipt,
        dequeue_count=dequeue_count,
        inserted_at=utc_time(inserted_at),
        next_visible_at=utc_time(next_visible_at),
        expires_at=utc_time(expires_at),
    )


class LocalQueue:
    """A named queue in a SQLite file; many queues (and their poison queues) share one file."""

    def __init__(
        self,
        name: str,
        path: Path,
        *,
        max_attempts: int | None = DEFAULT_MAX_ATTEMPTS,
        clock: Clock = time.time,
    ) -> None:
        if max_attempts is not None and (isinstance(max_attempts, bool) or max_attempts < 1):
            raise InvalidInput("max_attempts", f"{max_attempts!r} must be a whole number of at least 1")
        self._name = check_queue_name(name, reserve_poison_suffix=max_attempts is not None)
        self._path = Path(path)
        self._max_attempts = max_attempts
        self._clock = clock
        self._lock = threading.Lock()
        self._conn = connect_sqlite(self._path)
        with self._lock, write_transaction(self._conn) as conn:
            for statement in _SCHEMA:
                conn.execute(statement)
        self._poison: LocalQueue | None = None

    @classmethod
    def default(cls, name: str, settings: Settings | None = None, **kwargs: Any) -> LocalQueue:
        """The queue in the data root's ``state/queues.sqlite``."""
        return cls(name, (settings or get_settings()).state_dir / "queues.sqlite", **kwargs)

    @property
    def name(self) -> str:
        return self._name

    @property
    def poison(self) -> LocalQueue | None:
        if self._max_attempts is None:
            return None
        if self._poison is None:
            self._poison = LocalQueue(
                self._name + POISON_SUFFIX, self._path, max_attempts=None, clock=self._clock
            )
        return self._poison

    def close(self) -> None:
        """Release the database connections (this queue's and its poison queue's)."""
        if self._poison is not None:
            self._poison.close()
        self._conn.close()

    def send(
        self, body: str | dict[str, Any], visibility_delay: int = 0, ttl: int | None = DEFAULT_TTL_SECONDS
    ) -> str:
        text = encode_body(body)
        delay = check_seconds("visibility_delay", visibility_delay, 0)
        ttl = check_ttl(ttl, delay)
        msg_id = str(uuid.uuid4())
        now = self._clock()
        with self._lock:
            self._conn.execute(
                "INSERT INTO messages (queue, id, body, inserted_at, next_visible_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (self._name, msg_id, text, now, now + delay, None if ttl is None else now + ttl),
            )
        return msg_id

    def receive(self, max_messages: int = 1, visibility_timeout: int = 30) -> list[Message]:
        wanted = check_batch(max_messages)
        timeout = check_seconds("visibility_timeout", visibility_timeout, 1)
        now = self._clock()
        taken: list[Message] = []
        with self._lock, write_transaction(self._conn) as conn:
            while len(taken) < wanted:
                rows = conn.execute(
                    f"SELECT seq, {_COLUMNS} FROM messages WHERE queue = ? AND next_visible_at <= ?"
                    " ORDER BY next_visible_at, seq LIMIT ?",
                    (self._name, now, wanted - len(taken)),
                ).fetchall()
                if not rows:
                    break
                for seq, *row in rows:
                    message = self._claim(conn, seq, tuple(row), now, timeout)
                    if message is not None:
                        taken.append(message)
        return taken

    def _claim(
        self, conn: sqlite3.Connection, seq: int, row: tuple[Any, ...], now: float, timeout: int
    ) -> Message | None:
        """Hand out one visible row, or drop it if expired, or move it to the poison queue if exhausted."""
        expires_at, dequeue_count = row[6], row[3]
        if expires_at is not None and expires_at <= now:
            conn.execute("DELETE FROM messages WHERE seq = ?", (seq,))
            return None
        if self._max_attempts is not None and dequeue_count >= self._max_attempts:
            # Poison messages never expire: they wait for someone to look at them.
            conn.execute(
                "UPDATE messages SET queue = ?, pop_receipt = NULL, dequeue_count = 0, inserted_at = ?,"
                " next_visible_at = ?, expires_at = NULL WHERE seq = ?",
                (self._name + POISON_SUFFIX, now, now, seq),
            )
            return None
        receipt = secrets.token_urlsafe(16)
        conn.execute(
            "UPDATE messages SET pop_receipt = ?, dequeue_count = dequeue_count + 1, next_visible_at = ?"
            " WHERE seq = ?",
            (receipt, now + timeout, seq),
        )
        msg_id, body, _, _, inserted_at, _, _ = row
        claimed = (msg_id, body, receipt, dequeue_count + 1, inserted_at, now + timeout, expires_at)
        return _message(claimed, pop_receipt=receipt)

    def delete(self, message_id: str, pop_receipt: str) -> None:
        now = self._clock()
        with self._lock, write_transaction(self._conn) as conn:
            self._held(conn, message_id, pop_receipt, now)
            conn.execute("DELETE FROM messages WHERE queue = ? AND id = ?", (self._name, message_id))

    def update_visibility(self, message_id: str, pop_receipt: str, visibility_timeout: int) -> Message:
        timeout = check_seconds("visibility_timeout", visibility_timeout, 0)
        now = self._clock()
        receipt = secrets.token_urlsafe(16)
        with self._lock, write_transaction(self._conn) as conn:
            self._held(conn, message_id, pop_receipt, now)
            conn.execute(
                "UPDATE messages SET pop_receipt = ?, next_visible_at = ? WHERE queue = ? AND id = ?",
                (receipt, now + timeout, self._name, message_id),
            )
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE queue = ? AND id = ?", (self._name, message_id)
            ).fetchone()
        return _message(row, pop_receipt=receipt)

    def _held(self, conn: sqlite3.Connection, message_id: str, pop_receipt: str, now: float) -> None:
        """Refuse a receipt that no longer holds the message, naming why as Azure does."""
        row = conn.execute(
            "SELECT pop_receipt, expires_at FROM messages WHERE queue = ? AND id = ?",
            (self._name, message_id),
        ).fetchone()
        if row is None or (row[1] is not None and row[1] <= now):
            raise MessageNotFound(f"message {message_id} is not in queue {self._name}")
        if row[0] is None or row[0] != pop_receipt:
            raise PopReceiptMismatch(
                f"message {message_id} was received again after this pop receipt was issued"
            )

    def peek(self, max_messages: int = 1) -> list[Message]:
        wanted = check_batch(max_messages)
        now = self._clock()
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE queue = ? AND next_visible_at <= ?"
                " AND (expires_at IS NULL OR expires_at > ?) ORDER BY next_visible_at, seq LIMIT ?",
                (self._name, now, now, wanted),
            ).fetchall()
        return [_message(row, pop_receipt=None) for row in rows]

    def approximate_count(self) -> int:
        now = self._clock()
        with self._lock:
            (count,) = self._conn.execute(
                "SELECT COUNT(*) FROM messages WHERE queue = ? AND (expires_at IS NULL OR expires_at > ?)",
                (self._name, now),
            ).fetchone()
        return count

    def clear(self) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM messages WHERE queue = ?", (self._name,))
