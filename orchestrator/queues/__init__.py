"""Durable queues: the Queue protocol and its local SQLite twin of Azure Storage Queues."""

from orchestrator.queues.base import LeaseLost, Message, MessageNotFound, PopReceiptMismatch, Queue
from orchestrator.queues.local import LocalQueue

__all__ = ["LeaseLost", "LocalQueue", "Message", "MessageNotFound", "PopReceiptMismatch", "Queue"]
