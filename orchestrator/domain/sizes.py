"""Sizes as people read them, and the room on the lake's disk every writer leaves free."""

from __future__ import annotations

DISK_RESERVE_BYTES = (
    1_000_000_000  # what a generation or a cleaning leaves free on the lake's disk, at the least
)


def size_text(size: float) -> str:
    """A number of bytes as people read it: 512 B, 38 MB, 1.4 GB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}" if size < 10 * scale else f"{size / scale:,.0f} {unit}"
    return f"{size:.0f} B"
