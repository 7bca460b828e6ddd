"""The local cloud: the lake is files under the data folder, the queues SQLite under its state folder."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.config import Settings
    from orchestrator.queues.local import LocalQueue
    from orchestrator.storage.local import LocalLake


def open_lake(settings: Settings) -> LocalLake:
    from orchestrator.storage.local import LocalLake

    return LocalLake(settings.data_dir)


def open_queue(name: str, settings: Settings) -> LocalQueue:
    from orchestrator.queues.local import LocalQueue

    return LocalQueue.default(name, settings)
