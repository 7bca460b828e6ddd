"""The lake: a Storage protocol, its local filesystem implementation and the medallion paths."""

from __future__ import annotations

from orchestrator.config import Settings, get_settings
from orchestrator.storage.base import Storage, WrittenFile
from orchestrator.storage.local import LocalLake

__all__ = ["LocalLake", "Storage", "WrittenFile", "open_lake"]


def open_lake(settings: Settings | None = None) -> Storage:
    """The lake of the configured profile: local files, or ADLS Gen2 for ``azure``."""
    settings = settings or get_settings()
    if settings.azure_storage is None:
        return LocalLake(settings.data_dir)
    from orchestrator.storage.adls import AdlsConfig, AdlsLake  # the Azure SDK loads only for this profile

    az = settings.azure_storage
    return AdlsLake(
        AdlsConfig(
            file_system=az.file_system,
            account_url=az.account_url,
            account_key=az.account_key,
            connection_string=az.connection_string,
        )
    )
