"""Where a batch runs: the Runner protocol, its run states and the one polling wait."""

from orchestrator.runners.base import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUN_STATES,
    RUNNING,
    SUCCEEDED,
    TERMINAL_STATES,
    Runner,
    RunnerError,
    RunRequest,
    RunStatus,
    RunTimeout,
    wait_for,
)

__all__ = [
    "CANCELLED",
    "FAILED",
    "QUEUED",
    "RUNNING",
    "RUN_STATES",
    "SUCCEEDED",
    "TERMINAL_STATES",
    "RunRequest",
    "RunStatus",
    "RunTimeout",
    "Runner",
    "RunnerError",
    "wait_for",
]
