"""Settings checks shared by the Azure Storage adapters (the ADLS Gen2 lake and the Storage Queues)."""

from __future__ import annotations

from urllib.parse import urlsplit

from orchestrator.errors import InvalidInput


def check_account(url_field: str, url: str, example: str, account_key: str, connection_string: str) -> None:
    """Either a connection string, or an endpoint URL (without a query) with the account's key."""
    if connection_string:
        if url or account_key:
            raise InvalidInput(
                "connection_string", f"give either a connection string or {url_field} and account_key"
            )
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise InvalidInput(
            url_field, f"{url!r} must be the account's endpoint without a query, such as {example}"
        )
    if not account_key:
        raise InvalidInput("account_key", "is empty; give the storage account's access key")
