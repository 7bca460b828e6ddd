"""Durable queues: the Queue protocol, its local SQLite twin and the Azure Storage Queue adapter."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.clouds import cloud_of
from orchestrator.config import Settings, get_settings
from orchestrator.queues.base import LeaseLost, Message, MessageNotFound, PopReceiptMismatch, Queue
from orchestrator.queues.local import LocalQueue

if TYPE_CHECKING:
    from orchestrator.clouds.azure.queues import AzureQueue

__all__ = [
    "AzureQueue",
    "LeaseLost",
    "LocalQueue",
    "Message",
    "MessageNotFound",
    "PopReceiptMismatch",
    "Queue",
    "open_queue",
]


def open_queue(name: str, settings: Settings | None = None) -> Queue:
    """The queue of the configured profile, as its cloud's entry names it (orchestrator.clouds): the local
    SQLite queue, or Azure Storage Queues for ``azure``; a cloud's SDK loads only for its own profile."""
    settings = settings or get_settings()
    return cloud_of(settings).open_queue(name, settings)


def __getattr__(name: str) -> object:
    """``AzureQueue`` on first use, so importing the package does not load the Azure SDK."""
    if name == "AzureQueue":
        from orchestrator.clouds.azure.queues import AzureQueue

        return AzureQueue
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
