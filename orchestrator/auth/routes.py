"""The two HTTP endpoints that set and clear the session cookie from the server, so it can be HttpOnly: a
script in the page (an XSS included) never reads it. Served beside the workbench's pages by the ASGI app
that app.py declares.

After a login the page posts a one-time code (``UserStore.grant_cookie``) to ``SESSION_PATH``; the answer
sets the cookie that names the session. ``LOGOUT_PATH`` expires it. Both are same-origin POSTs and the
cookie is SameSite=Strict, so another site can neither set nor send it.
"""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from orchestrator.auth.settings import COOKIE_NAME, load_auth_settings, open_user_store
from orchestrator.auth.tokens import sign_session

SESSION_PATH = "/_workbench/session"
LOGOUT_PATH = "/_workbench/logout"
MAX_CODE_BYTES = 128


def _served_over_https(request: Request) -> bool:
    """Whether the browser reached us over HTTPS, directly or through a proxy that ended TLS for us."""
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "") == "https"


def _cookie(response: Response, request: Request, value: str, max_age: int) -> Response:
    response.set_cookie(
        COOKIE_NAME,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_served_over_https(request),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _signed_cookie(code: str) -> tuple[str, int] | None:
    """The token and its lifetime in seconds for a login's one-time code, or None for a spent or false one."""
    session = open_user_store().redeem_grant(code)
    if session is None:
        return None
    return sign_session(load_auth_settings().cookie_key, session), int(session.expires_at - time.time())


async def _session(request: Request) -> Response:
    body = await request.body()
    if len(body) > MAX_CODE_BYTES:
        return Response("The login code is not valid.", status_code=400)
    signed = await run_in_threadpool(_signed_cookie, body.decode("ascii", errors="replace"))
    if signed is None:
        return Response("The login code is spent or not valid; log in again.", status_code=403)
    token, max_age = signed
    return _cookie(Response(status_code=204), request, token, max_age)


async def _logout(request: Request) -> Response:
    return _cookie(Response(status_code=204), request, "", 0)


ROUTES = [Route(SESSION_PATH, _session, methods=["POST"]), Route(LOGOUT_PATH, _logout, methods=["POST"])]
