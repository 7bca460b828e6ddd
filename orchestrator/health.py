"""Connection tests for the external systems; the settings page shows their messages."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConnectionCheck:
    """The outcome of a connection test: what happened and, when it failed, which setting to change."""

    ok: bool
    message: str
    field: str | None = None
