"""What the Azure Storage adapters (the ADLS Gen2 lake and the Storage Queues) share: the settings check and
the errors a call can end in."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from azure.core.exceptions import AzureError, HttpResponseError, ServiceRequestError, ServiceResponseError

from orchestrator.errors import InvalidInput, ServiceError


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


@dataclass(frozen=True)
class StorageService:
    """One storage service as its errors name it: what it is, where, and the settings to check."""

    name: str  # "the lake", "the queue service"
    endpoint: str  # without a query, where a SAS token would sit
    where: str  # the setting that names the endpoint
    key: str  # the setting that holds the credentials
    endpoint_kind: str  # what ``where`` should name, such as "the storage account's queue endpoint"

    @classmethod
    def of(
        cls, name: str, endpoint: str, connection_string: str, url_field: str, endpoint_kind: str
    ) -> StorageService:
        """The settings to name follow from how the account was given: a connection string or URL and key."""
        where, key = (
            ("connection_string", "connection_string") if connection_string else (url_field, "account_key")
        )
        return cls(name, endpoint, where, key, endpoint_kind)

    @contextlib.contextmanager
    def calls(self, action: str, known: Callable[[str | None], Exception | None]) -> Iterator[None]:
        """Turn the SDK's failures into ServiceErrors naming the action and the setting to check; ``known``
        gives the adapter's own error for a refusal's error code, if it has one. The SDK's own text is left
        out, as it may carry URLs."""
        try:
            yield
        except (ServiceRequestError, ServiceResponseError):
            raise ServiceError(
                f"cannot reach {self.name} at {self.endpoint} to {action}; "
                f"check {self.where} and that the service is running",
                self.where,
            ) from None
        except HttpResponseError as err:
            code = getattr(err.error_code, "value", err.error_code)  # the SDK gives an enum for known codes
            raise known(code) or self._refusal(err.status_code, code, action) from None
        except AzureError as err:
            raise ServiceError(
                f"{self.name} at {self.endpoint} failed to {action} ({type(err).__name__})"
            ) from None

    def _refusal(self, status: int | None, code: str | None, action: str) -> ServiceError:
        if status == 403:
            return ServiceError(
                f"the storage account at {self.endpoint} refused the credentials; check {self.key}", self.key
            )
        if not code:
            return ServiceError(
                f"{self.endpoint} answered {status} to {action}, but not as a storage service does; "
                f"check that {self.where} names {self.endpoint_kind}",
                self.where,
            )
        return ServiceError(f"{self.name} at {self.endpoint} answered {status} ({code}) to {action}")
