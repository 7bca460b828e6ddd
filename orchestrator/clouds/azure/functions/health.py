"""Whether the function app reaches what it drains: its small queue and how many messages wait there. A
deployment's first call (GET /api/health with a function key)."""

from __future__ import annotations

import azure.functions as func

from orchestrator.clouds.azure.functions.small_batches import answer

bp = func.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """200 with the small queue's message count when it answers, 503 with what is wrong when it does not."""
    from orchestrator.config import get_settings
    from orchestrator.jobs import routing
    from orchestrator.queues import open_queue

    try:
        settings = get_settings()
        waiting = open_queue(routing.QUEUE_NAMES["small"], settings).approximate_count()
    except Exception as exc:  # a setting missing or wrong, a service down: said, so the caller reads it
        return answer(503, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
    return answer(200, {"ok": True, "profile": settings.profile, "small_queue_messages": waiting})
