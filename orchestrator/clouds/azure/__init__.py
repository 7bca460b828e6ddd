"""Microsoft Azure: the lake on an ADLS Gen2 account (adls.py) and the queues on the same account's
Storage Queues (queues.py), both in this folder; the Azure SDK loads only when these are opened. Small
batches are cleaned by an Azure Functions app (functions/, registered by function_app.py at the repository's
root), which the workbench asks to drain at once through functions/client.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.config import AzureStorageSettings, lookup
from orchestrator.errors import InvalidInput

if TYPE_CHECKING:
    from orchestrator.clouds.azure.adls import AdlsLake
    from orchestrator.clouds.azure.queues import AzureQueue
    from orchestrator.config import Settings


def read_settings() -> AzureStorageSettings:
    """The storage account behind the lake and the queues (a connection string, or its URL and key), and the
    function app that cleans small batches (functions/: needed only to ask it to drain at once)."""
    settings = AzureStorageSettings(
        file_system=lookup("ORCHESTRATOR_AZURE_FILE_SYSTEM", "lake"),
        account_url=lookup("ORCHESTRATOR_AZURE_STORAGE_URL"),
        queue_url=lookup("ORCHESTRATOR_AZURE_QUEUE_URL"),
        account_key=lookup("ORCHESTRATOR_AZURE_STORAGE_KEY"),
        connection_string=lookup("ORCHESTRATOR_AZURE_STORAGE_CONNECTION_STRING"),
        functions_url=lookup("ORCHESTRATOR_AZURE_FUNCTIONS_URL"),
        functions_key=lookup("ORCHESTRATOR_AZURE_FUNCTIONS_KEY"),
    )
    if not settings.connection_string and not (settings.account_url and settings.account_key):
        raise InvalidInput(
            "ORCHESTRATOR_AZURE_STORAGE_CONNECTION_STRING",
            "the azure profile needs a storage connection string, or ORCHESTRATOR_AZURE_STORAGE_URL "
            "with ORCHESTRATOR_AZURE_STORAGE_KEY",
        )
    return settings


def _account(settings: Settings) -> AzureStorageSettings:
    if not isinstance(settings.cloud_settings, AzureStorageSettings):
        raise InvalidInput(
            "ORCHESTRATOR_PROFILE", f"the {settings.profile} profile has no Azure storage account"
        )
    return settings.cloud_settings


def open_lake(settings: Settings) -> AdlsLake:
    from orchestrator.clouds.azure.adls import AdlsConfig, AdlsLake

    account = _account(settings)
    return AdlsLake(
        AdlsConfig(
            file_system=account.file_system,
            account_url=account.account_url,
            account_key=account.account_key,
            connection_string=account.connection_string,
        )
    )


def open_queue(name: str, settings: Settings) -> AzureQueue:
    from orchestrator.clouds.azure.queues import AzureQueue, AzureQueueConfig

    return AzureQueue(name, AzureQueueConfig.from_settings(_account(settings)))
