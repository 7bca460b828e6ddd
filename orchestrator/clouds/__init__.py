"""The clouds the workbench runs on, as one table: each names its lake (a Storage), its queues (a Queue per
name), where small batches run and which runner takes large ones by default.

``ORCHESTRATOR_PROFILE`` chooses an entry; everything that depends on the cloud looks it up here instead of
asking which settings happen to be set. Adapters are named by ``module:function`` and imported only when the
profile uses them, so a profile never loads another cloud's SDK. Adding a cloud is its adapters in a folder
of their own (as ``orchestrator/clouds/aliyun/``) and one entry below; the Storage, Queue and Runner
protocols and their contract suites (tests/test_storage_contract.py, tests/test_queue_contract.py) are
what every adapter is held to.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.config import Settings
    from orchestrator.queues.base import Queue
    from orchestrator.storage.base import Storage

LOCAL_LAKE = "orchestrator.clouds.local:open_lake"
LOCAL_QUEUES = "orchestrator.clouds.local:open_queue"


@dataclass(frozen=True)
class SmallRunner:
    """Where a cloud's small batches are cleaned: the worker's own drain, or a serverless function with its
    own 10-minute timer trigger that the workbench can also ask to drain at once (``invoke``)."""

    label: str  # as the pages name it
    # module:function(settings) -> str: ask the function to drain the small queue now (synchronously; returns
    # what the function reported); None: the worker drains
    invoke: str | None = None

    def ask(self, settings: Settings) -> str:
        """Ask the function to drain the small queue now; returns what it reported."""
        if self.invoke is None:
            raise ValueError(f"{self.label} is the worker's own drain: there is no function to ask")
        return _resolve(self.invoke)(settings)


def drain_summary(service: str, report: Mapping[str, Any]) -> str:
    """What a function's drain of the small queue reported, as ``invoke`` returns it, the command line prints
    it and the job keeps it, the same for every cloud: a first line with the service and the seconds, then
    one line per job that ran, as the worker prints a job's end (orchestrator.worker.job_line)."""
    jobs = report.get("jobs") or []
    seconds = float(report.get("seconds") or 0)
    head = f"{service} drained the small queue in {seconds:.1f} s"
    if not jobs:
        return f"{head}: no job was waiting"
    lines = [
        str(job.get("line") or f"{job.get('job_id')}: {job.get('state')}" + _error(job.get("error")))
        for job in jobs
    ]
    return f"{head}: {len(jobs)} job{'s' if len(jobs) > 1 else ''}\n" + "\n".join(lines)


def _error(error: object) -> str:
    return f" ({error})" if error else ""


# Where small batches run, by the name a cloud's entry gives: the worker drains the small queue and cleans
# each batch with pandas in its own process, or a function does the same (the worker's drain) on its own
# timer.
WORKER = "worker"
AZURE_FUNCTIONS = "azure-functions"
FUNCTION_COMPUTE = "function-compute"
SMALL_RUNNERS: dict[str, SmallRunner] = {
    WORKER: SmallRunner("the worker (pandas, in process)"),
    AZURE_FUNCTIONS: SmallRunner(
        "Azure Functions (pandas, its own timer trigger every 10 minutes)",
        invoke="orchestrator.clouds.azure.functions.client:invoke",
    ),
    FUNCTION_COMPUTE: SmallRunner(
        "Alibaba Cloud Function Compute (pandas, its own timer trigger every 10 minutes)",
        invoke="orchestrator.clouds.aliyun.function_compute:invoke",
    ),
}


@dataclass(frozen=True)
class Cloud:
    """One entry of the table: what a profile is made of."""

    name: str  # the ORCHESTRATOR_PROFILE value
    label: str  # as the pages name it
    lake: str  # module:function(settings) -> Storage
    queues: str  # module:function(name, settings) -> Queue
    small_batches: str  # a key of SMALL_RUNNERS
    large_batches: str | None  # default ORCHESTRATOR_SPARK_RUNNER; None: the cloud has none of its own yet
    settings: str | None = None  # module:function() -> the cloud's own settings, read from the environment
    database_tls: bool = False  # MySQL connections require and verify TLS by default (a managed database)

    @property
    def lake_on_disk(self) -> bool:
        """Whether the lake is files on this machine (local Spark reads it; its check is the folder's)."""
        return self.lake == LOCAL_LAKE

    @property
    def queues_on_host(self) -> bool:
        """Whether the queues are the SQLite queues under this machine's state folder."""
        return self.queues == LOCAL_QUEUES

    def open_lake(self, settings: Settings) -> Storage:
        return _resolve(self.lake)(settings)

    def open_queue(self, name: str, settings: Settings) -> Queue:
        return _resolve(self.queues)(name, settings)

    @property
    def small_runner(self) -> SmallRunner:
        """Where the cloud's small batches are cleaned."""
        return SMALL_RUNNERS[self.small_batches]

    @property
    def worker_drains_small(self) -> bool:
        """Whether the worker drains the small queue (False: a function's own timer trigger does)."""
        return self.small_runner.invoke is None

    def read_settings(self) -> Any:
        """The cloud's own settings (account, endpoint, secrets), or None if it has none."""
        return _resolve(self.settings)() if self.settings else None


CLOUDS: dict[str, Cloud] = {
    cloud.name: cloud
    for cloud in (
        Cloud(
            "local",
            "this machine",
            lake=LOCAL_LAKE,
            queues=LOCAL_QUEUES,
            small_batches=WORKER,
            large_batches="local",
        ),
        Cloud(
            "azure",
            "Microsoft Azure",
            lake="orchestrator.clouds.azure:open_lake",
            queues="orchestrator.clouds.azure:open_queue",
            small_batches=AZURE_FUNCTIONS,
            large_batches="databricks",
            settings="orchestrator.clouds.azure:read_settings",
            database_tls=True,
        ),
        Cloud(
            "aliyun",
            "Alibaba Cloud",
            lake="orchestrator.clouds.aliyun:open_lake",
            queues="orchestrator.clouds.aliyun:open_queue",
            small_batches=FUNCTION_COMPUTE,
            large_batches="emr-serverless",
            settings="orchestrator.clouds.aliyun:read_settings",
            database_tls=True,
        ),
    )
}
PROFILES = tuple(CLOUDS)


def cloud_of(settings: Settings) -> Cloud:
    """The entry of the settings' profile."""
    return CLOUDS[settings.profile]


def _resolve(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)
