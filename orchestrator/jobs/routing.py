"""The routing rule: small batches are cleaned in-process with pandas, large ones by a Spark engine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from orchestrator.errors import InvalidInput
from orchestrator.jobs.store import KIND_CLEAN, Job, JobStore, new_job_id
from orchestrator.queues.base import Queue

Route = Literal["small", "large"]

DEFAULT_SMALL_BATCH_MAX_ROWS = 10_000
THRESHOLD_FIELD = "ORCHESTRATOR_SMALL_BATCH_MAX_ROWS"  # the setting a user changes to move the boundary
QUEUE_NAMES: dict[str, str] = {"small": "clean-small", "large": "clean-large"}
# How long a received message stays hidden from other drains. It does not hold the job: a running job is held
# by its worker's lease (orchestrator.jobs.holders), and a job whose worker is gone is recovered from the job
# store at the next worker's wake, not when its message comes back; a message of a finished job is deleted.
VISIBILITY_SECONDS = 15 * 60


@dataclass(frozen=True)
class Launch:
    """The cleaning job a launch produced, and whether this launch created it or found it running."""

    job: Job
    created: bool


def route(total_rows: int, threshold: int = DEFAULT_SMALL_BATCH_MAX_ROWS) -> Route:
    """``small`` for a batch of at most ``threshold`` rows, else ``large``."""
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise InvalidInput(THRESHOLD_FIELD, f"{threshold!r} must be a whole number of rows, 1 or more")
    if isinstance(total_rows, bool) or not isinstance(total_rows, int) or total_rows < 0:
        raise InvalidInput("total_rows", f"{total_rows!r} must be a whole number of rows, 0 or more")
    return "small" if total_rows <= threshold else "large"


def launch_cleaning(
    store: JobStore,
    queues: Mapping[str, Queue],
    *,
    user: str,
    parent_id: str,
    total_rows: int,
    threshold: int = DEFAULT_SMALL_BATCH_MAX_ROWS,
    params: dict[str, Any] | None = None,
) -> Launch:
    """Record a cleaning job with its route and put it on that route's queue.

    A launch while the parent already has a queued or running cleaning job returns that job and sends
    nothing. If the queue refuses the message the job is marked failed, so no job waits for a message
    that was never sent.
    """
    chosen = route(total_rows, threshold)
    job, created = store.create_job(
        new_job_id(KIND_CLEAN),
        user,
        KIND_CLEAN,
        parent_id=parent_id,
        route=chosen,
        rows_in=total_rows,
        params=params,
    )
    if not created:
        return Launch(job, created=False)
    try:
        queues[chosen].send({"job_id": job.job_id})
    except Exception as exc:
        store.fail(job.job_id, f"could not be queued on {chosen}: {exc}")
        raise
    return Launch(job, created=True)
