"""Runs a batch as an Azure Data Factory pipeline run (ARM: createRun, pipelineruns, cancel)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import quote

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.policies import RetryPolicy
from azure.identity import ClientSecretCredential, DefaultAzureCredential
from azure.mgmt.datafactory import DataFactoryManagementClient

from orchestrator.errors import InvalidInput
from orchestrator.health import ConnectionCheck
from orchestrator.runners.base import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    RunnerError,
    RunRequest,
    RunStatus,
    map_state,
    number_setting,
    text_setting,
)

SMALL_BATCH = "small"
LARGE_BATCH = "large"

_STATES: dict[str, str] = {
    "Queued": QUEUED,
    "InProgress": RUNNING,
    "Canceling": RUNNING,
    "Succeeded": SUCCEEDED,
    "Failed": FAILED,
    "Cancelled": CANCELLED,
}


@dataclass(frozen=True)
class DataFactoryConfig:
    """Which factory runs the pipelines, as whom, and how long to wait for Azure Resource Manager."""

    subscription_id: str
    resource_group: str
    factory_name: str
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    small_pipeline: str = "small_batch"
    large_pipeline: str = "large_batch"
    management_url: str = "https://management.azure.com"
    ca_bundle: str | None = None  # a CA file for networks that inspect TLS; None trusts the system store
    http_timeout_seconds: float = 10.0
    retry_timeout_seconds: float = 20.0

    def __post_init__(self) -> None:
        for name, key in (
            ("subscription_id", "AZURE_SUBSCRIPTION_ID"),
            ("resource_group", "AZURE_RESOURCE_GROUP"),
            ("factory_name", "ADF_FACTORY_NAME"),
        ):
            if not getattr(self, name).strip():
                raise InvalidInput(key, "is empty; set it to the Data Factory's " + name.replace("_", " "))
        if not self.management_url.startswith("https://"):
            raise InvalidInput(
                "AZURE_MANAGEMENT_URL", f"must be an https:// URL, got {self.management_url!r}"
            )

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> DataFactoryConfig:
        """Build from environment-style settings (AZURE_SUBSCRIPTION_ID, ADF_FACTORY_NAME, …)."""
        return cls(
            subscription_id=text_setting(env, "AZURE_SUBSCRIPTION_ID"),
            resource_group=text_setting(env, "AZURE_RESOURCE_GROUP"),
            factory_name=text_setting(env, "ADF_FACTORY_NAME"),
            tenant_id=text_setting(env, "AZURE_TENANT_ID", "") or None,
            client_id=text_setting(env, "AZURE_CLIENT_ID", "") or None,
            client_secret=text_setting(env, "AZURE_CLIENT_SECRET", "") or None,
            small_pipeline=text_setting(env, "ADF_SMALL_PIPELINE", cls.small_pipeline),
            large_pipeline=text_setting(env, "ADF_LARGE_PIPELINE", cls.large_pipeline),
            management_url=text_setting(env, "AZURE_MANAGEMENT_URL", cls.management_url),
            ca_bundle=text_setting(env, "ADF_CA_BUNDLE", "") or None,
            http_timeout_seconds=number_setting(env, "ADF_HTTP_TIMEOUT_SECONDS", cls.http_timeout_seconds),
            retry_timeout_seconds=number_setting(env, "ADF_RETRY_TIMEOUT_SECONDS", cls.retry_timeout_seconds),
        )

    @property
    def factory_resource_id(self) -> str:
        """The factory's ARM id, as Data Factory Studio links expect it."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.DataFactory/factories/{self.factory_name}"
        )


def default_credential(config: DataFactoryConfig) -> TokenCredential:
    """A service principal when a client secret is set, else Azure's default chain (managed identity, …)."""
    if config.client_secret:
        if not (config.tenant_id and config.client_id):
            raise InvalidInput("AZURE_TENANT_ID", "and AZURE_CLIENT_ID must be set with AZURE_CLIENT_SECRET")
        return ClientSecretCredential(config.tenant_id, config.client_id, config.client_secret)
    return DefaultAzureCredential()


class DataFactoryRunner:
    """Starts the small- or large-batch pipeline, polls it and cancels it. The large-batch pipeline cleans
    the job its parameters name; the small-batch one takes none: it asks the Azure Functions app to drain the
    small queue, where the job waits (adf/pipelines/small_batch.json)."""

    def __init__(
        self, config: DataFactoryConfig, batch: str = LARGE_BATCH, credential: TokenCredential | None = None
    ) -> None:
        pipelines = {SMALL_BATCH: config.small_pipeline, LARGE_BATCH: config.large_pipeline}
        if batch not in pipelines:
            raise InvalidInput("batch", f"must be {SMALL_BATCH!r} or {LARGE_BATCH!r}, got {batch!r}")
        self.config = config
        self.batch = batch
        self.pipeline = pipelines[batch]
        self.name = f"datafactory-{batch}"
        self._client = DataFactoryManagementClient(
            credential or default_credential(config),
            config.subscription_id,
            base_url=config.management_url,
            credential_scopes=[f"{config.management_url.rstrip('/')}/.default"],
            retry_policy=RetryPolicy(
                retry_total=3, retry_backoff_factor=0.5, timeout=config.retry_timeout_seconds
            ),
            connection_timeout=config.http_timeout_seconds,
            read_timeout=config.http_timeout_seconds,
            connection_verify=config.ca_bundle or True,
        )

    def submit(self, request: RunRequest) -> RunStatus:
        """Create a pipeline run: the large-batch pipeline's parameters are the request's identifiers and
        extras; the small-batch pipeline drains the small queue, the request's job with the others there."""
        cfg = self.config
        parameters = request.run_parameters() if self.batch == LARGE_BATCH else {}
        with self._service_errors(f"start pipeline {self.pipeline} for job {request.job_id}"):
            created = self._client.pipelines.create_run(
                cfg.resource_group, cfg.factory_name, self.pipeline, parameters=parameters
            )
        return RunStatus(state=QUEUED, run_id=created.run_id, url=self._monitor_url(created.run_id))

    def status(self, run_id: str) -> RunStatus:
        """Map the pipeline run's status onto ours, keeping Data Factory's message."""
        cfg = self.config
        with self._service_errors(f"read run {run_id}"):
            run = self._client.pipeline_runs.get(cfg.resource_group, cfg.factory_name, run_id)
        state = map_state("Data Factory", run.status or "no status", _STATES)
        message = run.message or ""
        if state == FAILED and not message:
            message = "Data Factory gave no message"
        elif run.status == "Canceling":
            message = message or "cancelling"
        return RunStatus(state=state, run_id=run_id, message=message, url=self._monitor_url(run_id))

    def cancel(self, run_id: str) -> None:
        """Cancel the run and the pipelines it started (the run then ends Cancelled)."""
        cfg = self.config
        with self._service_errors(f"cancel run {run_id}"):
            self._client.pipeline_runs.cancel(cfg.resource_group, cfg.factory_name, run_id, is_recursive=True)

    def test_connection(self) -> ConnectionCheck:
        """Read the pipeline once: the factory answers, the credentials are accepted, the pipeline exists."""
        cfg = self.config
        setting = "ADF_LARGE_PIPELINE" if self.pipeline == cfg.large_pipeline else "ADF_SMALL_PIPELINE"
        try:
            with self._service_errors(f"read pipeline {self.pipeline}"):
                try:
                    self._client.pipelines.get(cfg.resource_group, cfg.factory_name, self.pipeline)
                except ResourceNotFoundError:
                    return ConnectionCheck(
                        False,
                        f"Data Factory {cfg.factory_name} has no pipeline {self.pipeline} (or the factory is "
                        f"not in resource group {cfg.resource_group}); deploy adf/ or change {setting}",
                        setting,
                    )
        except RunnerError as error:
            return ConnectionCheck(False, str(error))
        return ConnectionCheck(
            True, f"Data Factory {cfg.factory_name} answers; pipeline {self.pipeline} is there"
        )

    def _monitor_url(self, run_id: str) -> str:
        """The run's page in Data Factory Studio."""
        factory = quote(self.config.factory_resource_id, safe="")
        return f"https://adf.azure.com/en/monitoring/pipelineruns/{run_id}?factory={factory}"

    @contextmanager
    def _service_errors(self, action: str) -> Iterator[None]:
        """Turn azure-core's errors into RunnerErrors that say what to change (and never carry a secret)."""
        where = f"Data Factory {self.config.factory_name} at {self.config.management_url}"
        try:
            yield
        except ClientAuthenticationError as err:
            raise RunnerError(
                f"{where} rejected the credentials (401) when asked to {action}; check AZURE_TENANT_ID, "
                "AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"
            ) from err
        except HttpResponseError as err:
            if err.status_code == 403:
                raise RunnerError(
                    f"{where} refused to {action} (403); give the service principal the "
                    "Data Factory Contributor role on the factory"
                ) from err
            reason = err.error.message if err.error and err.error.message else err.reason
            raise RunnerError(f"{where} could not {action} ({err.status_code}: {reason})") from err
        except ServiceResponseError as err:
            raise RunnerError(
                f"{where} gave no answer within {self.config.http_timeout_seconds:g} s "
                f"when asked to {action}; check AZURE_MANAGEMENT_URL and the network, "
                "or raise ADF_HTTP_TIMEOUT_SECONDS"
            ) from err
        except ServiceRequestError as err:
            raise RunnerError(
                f"{where} is unreachable when asked to {action} ({err.message}); "
                "check AZURE_MANAGEMENT_URL, ADF_CA_BUNDLE and the network"
            ) from err
        except AzureError as err:
            raise RunnerError(f"{where} could not {action}: {err.message}") from err
