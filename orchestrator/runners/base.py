"""The Runner protocol every place a batch can run implements, its run states and the one polling wait."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from orchestrator.errors import InvalidInput, WorkbenchError
from orchestrator.health import ConnectionCheck

QUEUED = "QUEUED"
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"

RUN_STATES: tuple[str, ...] = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
TERMINAL_STATES: frozenset[str] = frozenset({SUCCEEDED, FAILED, CANCELLED})

# Names the run itself passes to the notebook or pipeline; a request may not override them.
RESERVED_PARAMETERS: tuple[str, ...] = ("job_id", "user", "parent_job_id")


class RunnerError(WorkbenchError):
    """The service that runs a batch refused the request or could not be reached; the message says why."""


class RunTimeout(RunnerError, TimeoutError):
    """A run did not reach a terminal state within the time the caller was prepared to wait."""

    def __init__(self, run_id: str, waited_seconds: float, last: RunStatus) -> None:
        super().__init__(
            f"run {run_id} was still {last.state} after {waited_seconds:.0f} s; "
            "wait longer (timeout) or cancel the run"
        )
        self.run_id = run_id
        self.waited_seconds = waited_seconds
        self.last = last


@dataclass(frozen=True)
class RunRequest:
    """What to run: the cleaning job, who asked for it, its generation job and extra string parameters."""

    job_id: str
    user: str
    parent_job_id: str
    parameters: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in RESERVED_PARAMETERS:
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidInput(name, f"must be a non-empty string, got {value!r}")
        for key, value in self.parameters.items():
            if key in RESERVED_PARAMETERS:
                raise InvalidInput("parameters", f"{key!r} is set from the request itself; remove it")
            if not isinstance(key, str) or not key or not isinstance(value, str):
                raise InvalidInput("parameters", f"{key!r}={value!r}: names and values must be strings")

    def run_parameters(self) -> dict[str, str]:
        """Every parameter the notebook or pipeline receives: the identifiers first, then the extras."""
        return {
            "job_id": self.job_id,
            "user": self.user,
            "parent_job_id": self.parent_job_id,
            **self.parameters,
        }


@dataclass(frozen=True)
class RunStatus:
    """Where a run stands: one of RUN_STATES, the service's message, its own id and page, and the notebook's
    stages that have ended with their seconds, in order, from a run that tells them (a local one)."""

    state: str
    run_id: str
    message: str = ""
    url: str | None = None
    stages: tuple[tuple[str, float], ...] = ()

    @property
    def terminal(self) -> bool:
        """True once the run can no longer change state."""
        return self.state in TERMINAL_STATES


class Runner(Protocol):
    """A place a batch runs; run ids are the service's own, as strings, so job records can keep them."""

    name: str

    def submit(self, request: RunRequest) -> RunStatus:
        """Start one run and return its first status (which carries the run id)."""
        ...

    def status(self, run_id: str) -> RunStatus:
        """Ask the service where the run stands now."""
        ...

    def cancel(self, run_id: str) -> None:
        """Ask the service to stop the run; it reaches CANCELLED asynchronously."""
        ...

    def test_connection(self) -> ConnectionCheck:
        """Reach the service once without starting anything; say what works or which setting to change."""
        ...


def text_setting(env: Mapping[str, str], key: str, default: str | None = None) -> str:
    """A setting's text, stripped; a missing required setting names the variable to set."""
    value = (env.get(key) or "").strip() or default
    if value is None:
        raise InvalidInput(key, "is not set; set it in the environment or the secrets file")
    return value


def number_setting(env: Mapping[str, str], key: str, default: float) -> float:
    """A positive number of seconds or workers; anything else names the variable and the value it had."""
    raw = (env.get(key) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(key, f"must be a number, got {raw!r}") from None
    if value <= 0:
        raise InvalidInput(key, f"must be greater than 0, got {raw!r}")
    return value


def map_state(service: str, raw: str, table: Mapping[str, str]) -> str:
    """Translate a service's run state into ours; an unknown state is an error, not a guess."""
    try:
        return table[raw]
    except KeyError:
        raise RunnerError(f"{service} reported an unknown run state {raw!r}") from None


def wait_for(
    runner: Runner,
    run_id: str,
    timeout: float,
    poll_interval: float = 10.0,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    heard: Callable[[RunStatus], None] = lambda _status: None,
) -> RunStatus:
    """Poll a run until it is terminal and return that status; RunTimeout if ``timeout`` seconds pass first
    (``math.inf``: wait for as long as it runs). ``heard`` hears every status polled, the terminal one too;
    what it raises ends the wait.

    The run is left as it is on timeout, or when ``heard`` raises: the caller decides whether to keep waiting
    or cancel it.
    """
    if timeout <= 0:
        raise InvalidInput("timeout", f"must be a positive number of seconds, got {timeout}")
    if poll_interval <= 0:
        raise InvalidInput("poll_interval", f"must be a positive number of seconds, got {poll_interval}")
    started = clock()
    while True:
        status = runner.status(run_id)
        heard(status)
        if status.terminal:
            return status
        waited = clock() - started
        if waited >= timeout:
            raise RunTimeout(run_id, waited, status)
        sleep(min(poll_interval, timeout - waited))
