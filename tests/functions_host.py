"""The Functions host's part for tests: function_app's functions as the host indexes them, and a local
server that serves the app's HTTP triggers under /api/ as the host does (function key checked)."""

from __future__ import annotations

import functools
import json
from typing import Any

import azure.functions as func

from function_app import app
from tests.fake_http import RecordedRequest, RecordingServer


@functools.cache
def indexed() -> dict[str, Any]:
    """The app's functions by name, indexed once as the host does (a second indexing refuses the names)."""
    return {function.get_function_name(): function for function in app.get_functions()}


def user_function(name: str) -> Any:
    """The Python function behind ``name``, called as the host calls it."""
    return indexed()[name].get_user_function()


class FunctionsHost:
    """Serves the app's HTTP triggers under /api/ on a local port, refusing a request without the function
    key (function-level auth) with 401 as the host does, and hands the trigger the request as received."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.server = RecordingServer(self._respond)

    def __enter__(self) -> FunctionsHost:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    @property
    def url(self) -> str:
        return self.server.url

    def _respond(self, request: RecordedRequest) -> tuple[int, Any]:
        route = request.path.removeprefix("/api/")
        for function in indexed().values():
            trigger = function.get_trigger()
            methods = [str(getattr(m, "value", m)) for m in getattr(trigger, "methods", None) or []]
            if getattr(trigger, "route", None) == route and request.method in methods:
                break
        else:
            return 404, None
        if request.headers.get("x-functions-key") != self.key and request.query.get("code") != [self.key]:
            return 401, None
        body = b"" if request.body is None else json.dumps(request.body).encode()
        response = function.get_user_function()(
            func.HttpRequest(request.method, self.url + request.path, headers=request.headers, body=body)
        )
        return response.status_code, json.loads(response.get_body())
