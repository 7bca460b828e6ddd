"""Stopping a process of ours with SIGTERM (make run, service managers) exactly as with Ctrl-C.

While ``stop_signals_raise`` is in force, SIGTERM and SIGINT raise KeyboardInterrupt where the process is, so
whatever it was doing cleans up as after Ctrl-C: a generation is recorded cancelled and keeps nothing, a
cleaning goes back to its queue, no temporary file stays. A library may report the interrupt as an error of
its own (DuckDB raises "Query interrupted"); ``stop_over_errors`` turns such an error back into the
stop, so a stopped cleaning is not recorded as failed and its worker does not go on draining.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

SIGNALS = (signal.SIGTERM, signal.SIGINT)
_received: list[int] = []


def received() -> int | None:
    """The first stop signal this process received while stop signals raise, if any."""
    return _received[0] if _received else None


def _raise(signum: int, frame: object) -> None:
    if not _received:
        _received.append(signum)
    raise KeyboardInterrupt


@contextlib.contextmanager
def stop_signals_raise() -> Iterator[None]:
    """Raise KeyboardInterrupt on SIGTERM and SIGINT while the block runs (each time: a stop that a library
    swallowed can be sent again); then restore the handlers found and forget the stop."""
    found = {number: signal.signal(number, _raise) for number in SIGNALS}
    try:
        yield
    finally:
        for number, handler in found.items():
            signal.signal(number, handler)
        _received.clear()


@contextlib.contextmanager
def stop_over_errors() -> Iterator[None]:
    """Raise KeyboardInterrupt for an error the block raises once a stop signal was received: the stop, as a
    library reported it."""
    try:
        yield
    except Exception as exc:
        if not _received:
            raise
        raise KeyboardInterrupt from exc
