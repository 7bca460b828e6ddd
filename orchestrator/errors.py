"""Errors a user can cause; each names the field and what to change."""

from __future__ import annotations

import sys
from collections.abc import Callable


class WorkbenchError(Exception):
    """Base class of errors whose message is meant for the user (no traceback needed)."""


class InvalidInput(WorkbenchError, ValueError):
    """A request argument is out of range or malformed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class NotFound(WorkbenchError, LookupError):
    """A job, layer or file that the request names does not exist."""


class AlreadyExists(WorkbenchError, FileExistsError):
    """A write-once object exists already."""


class Busy(WorkbenchError):
    """A request refused while the user has as many like it in progress as allowed; the message names them
    and what to wait for."""


class ServiceError(WorkbenchError, OSError):
    """An external service (lake, queue, database, runner) could not carry out a request.

    ``field`` names the setting to check, if any. Messages never carry secrets or the SDK's raw text.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def run_notebook(main: Callable[[], object], *, on_cluster: bool) -> None:
    """Run a notebook's ``main``. On a cluster our error fails the run with its message; run as a script it
    is printed as ``error: ...`` and the process exits 1, without a traceback."""
    try:
        main()
    except WorkbenchError as exc:
        if on_cluster:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
