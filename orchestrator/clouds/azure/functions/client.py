"""The workbench's side of the small path on Azure Functions: ask the function app's HTTP trigger to drain
the small queue now (orchestrator.clouds.SMALL_RUNNERS["azure-functions"].invoke), as Clean now does.

The function key travels in the ``x-functions-key`` header, never in the URL, so no log of a URL carries it;
no message here names it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from orchestrator.clouds.azure.functions.small_batches import ROUTE
from orchestrator.config import AzureStorageSettings
from orchestrator.errors import InvalidInput, ServiceError

if TYPE_CHECKING:
    from orchestrator.config import Settings

URL_FIELD = "ORCHESTRATOR_AZURE_FUNCTIONS_URL"
KEY_FIELD = "ORCHESTRATOR_AZURE_FUNCTIONS_KEY"
KEY_HEADER = "x-functions-key"
CONNECT_SECONDS = 10
# a drain answers within the Functions HTTP limit (230 s); a longer one goes on in the function app
ANSWER_SECONDS = 240


def trigger_url(account: AzureStorageSettings) -> str:
    """The HTTP trigger's URL under the function app's ORCHESTRATOR_AZURE_FUNCTIONS_URL."""
    base = account.functions_url.strip()
    if not base:
        raise InvalidInput(
            URL_FIELD,
            "is not set: give the function app's URL (such as https://APP.azurewebsites.net) so Clean now "
            "can ask it to drain the small queue; without it the function's 10-minute timer cleans the job",
        )
    url = urlsplit(base)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise InvalidInput(
            URL_FIELD, "must be the function app's http(s) URL, such as https://APP.azurewebsites.net"
        )
    if url.query or url.fragment:
        raise InvalidInput(URL_FIELD, f"must be the app's URL alone; put a function key in {KEY_FIELD}")
    return f"{base.rstrip('/')}/api/{ROUTE}"


def invoke(settings: Settings) -> str:
    """Ask the function app to drain the small queue now and wait for its answer; returns what it reported,
    one line per job that ran. A refusal or an app that does not answer is ServiceError naming the setting."""
    account = settings.cloud_settings
    if not isinstance(account, AzureStorageSettings):
        raise InvalidInput("ORCHESTRATOR_PROFILE", f"the {settings.profile} cloud has no Azure function app")
    url = trigger_url(account)
    if not account.functions_key:
        raise InvalidInput(KEY_FIELD, "is not set: give a function key of the app's drain trigger")
    try:
        response = requests.post(
            url,
            json={"requested_by": "workbench"},
            headers={KEY_HEADER: account.functions_key},
            timeout=(CONNECT_SECONDS, ANSWER_SECONDS),
        )
    except requests.RequestException as exc:
        raise ServiceError(
            f"the function app at {url} did not answer ({type(exc).__name__})", URL_FIELD
        ) from None
    report = _json(response)
    if response.status_code in (401, 403):
        raise ServiceError(f"the function app refused the key (HTTP {response.status_code})", KEY_FIELD)
    if response.status_code == 404:
        raise ServiceError(f"no drain trigger at {url} (HTTP 404): check the app's URL", URL_FIELD)
    if response.status_code != 200 or not isinstance(report.get("jobs"), list):
        reason = report.get("error") or f"HTTP {response.status_code}"
        raise ServiceError(f"the function app did not drain the small queue: {reason}", URL_FIELD)
    return summary(report)


def summary(report: dict[str, Any]) -> str:
    """What a drain reported, as the command line prints it and a job keeps it (the shape every cloud's
    small-batch function answers in)."""
    from orchestrator.clouds import drain_summary

    return drain_summary("Azure Functions", report)


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
