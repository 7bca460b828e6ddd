"""The small path on Azure Functions: the 10-minute timer trigger and the HTTP trigger that drains at once.

Both drain the small queue of the function app's cloud with the worker's own ``drain`` (one job at a time, a
message deleted only once its job ended), so the function, a worker and a second call can never clean a job
twice: a job another drain holds is left to it. The HTTP trigger takes function-level auth (a function key,
sent by the caller in the ``x-functions-key`` header and checked by the Functions host) and answers JSON:
which jobs ran and how each ended.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import azure.functions as func

from orchestrator.errors import InvalidInput

SCHEDULE = "0 */10 * * * *"  # NCRONTAB (with seconds): second 0 of every tenth minute, UTC
ROUTE = "small-batches/drain"  # served as /api/small-batches/drain
REQUEST_FIELDS = {"requested_by": "who asks, as the log names it (such as workbench or data-factory)"}
MAX_REQUESTED_BY_CHARS = 100

bp = func.Blueprint()
log = logging.getLogger(__name__)


def drain_small() -> dict[str, Any]:
    """Drain the small queue now with the worker's drain; what ran, as the HTTP trigger answers it."""
    from orchestrator import worker
    from orchestrator.config import get_settings

    started = time.monotonic()
    jobs = worker.drain("small", get_settings())
    return {
        "route": "small",
        "jobs": [
            {"job_id": job.job_id, "state": job.state, "error": job.error, "line": worker.job_line(job)}
            for job in jobs
        ],
        "seconds": round(time.monotonic() - started, 3),
    }


@bp.timer_trigger(schedule=SCHEDULE, arg_name="timer", run_on_startup=False, use_monitor=True)
def drain_small_batches(timer: func.TimerRequest) -> None:
    """Every ten minutes: drain the small queue; a failure is raised, so the Functions host records it."""
    if timer.past_due:
        log.warning("the 10-minute drain is late (the app was stopped or busy); draining now")
    report = drain_small()
    for job in report["jobs"]:
        log.info(job["line"])
    log.info("small queue drained: %d jobs in %.1f s", len(report["jobs"]), report["seconds"])


@bp.route(route=ROUTE, methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def drain_small_batches_now(req: func.HttpRequest) -> func.HttpResponse:
    """Drain the small queue now and answer which jobs ran and how each ended (200); a body that is not
    what this trigger takes gets 400 naming the field, a service the drain could not reach 503."""
    try:
        asked = read_request(req.get_body())
    except InvalidInput as exc:
        return answer(400, {"error": str(exc)})
    requested_by = asked.get("requested_by", "")
    log.info("drain of the small queue asked%s", f" by {requested_by}" if requested_by else "")
    try:
        report = drain_small()
    except Exception as exc:  # the queue, lake or job store did not answer: the caller may ask again
        log.exception("drain of the small queue failed")
        return answer(503, {"error": f"the small queue was not drained: {type(exc).__name__}: {exc}"})
    for job in report["jobs"]:
        log.info(job["line"])
    return answer(200, {**report, "requested_by": requested_by})


def read_request(body: bytes) -> dict[str, str]:
    """The HTTP trigger's body: empty, or a JSON object of REQUEST_FIELDS; anything else is InvalidInput."""
    if not body.strip():
        return {}
    try:
        asked = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(
            "body", 'must be a JSON object (or empty), such as {"requested_by": "me"}'
        ) from None
    if not isinstance(asked, dict):
        raise InvalidInput("body", f"must be a JSON object (or empty), not {type(asked).__name__}")
    for name in asked:
        if name not in REQUEST_FIELDS:
            fields = ", ".join(f"{field} ({what})" for field, what in REQUEST_FIELDS.items())
            raise InvalidInput(str(name)[:50], f"is not a field of this request; it takes {fields}")
    requested_by = asked.get("requested_by", "")
    if not isinstance(requested_by, str) or len(requested_by) > MAX_REQUESTED_BY_CHARS:
        raise InvalidInput("requested_by", f"must be a text of at most {MAX_REQUESTED_BY_CHARS} characters")
    return {"requested_by": requested_by} if requested_by else {}


def answer(status: int, body: dict[str, Any]) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")
