"""Where a batch runs: the Runner protocol, its run states, the one polling wait, and the runner the settings
choose for the spark engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.config import Lookup, Settings
from orchestrator.errors import InvalidInput
from orchestrator.runners.base import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUN_STATES,
    RUNNING,
    SUCCEEDED,
    TERMINAL_STATES,
    Runner,
    RunnerError,
    RunRequest,
    RunStatus,
    RunTimeout,
    wait_for,
)


@dataclass(frozen=True)
class SparkTarget:
    """Where the spark engine runs the notebook: the runner, the parameters every run of it carries, whether
    the run loads the warehouse and the operational database itself, and whether its statuses tell the
    notebook's stages as they end (RunStatus.stages)."""

    runner: Runner
    parameters: dict[str, str] = field(default_factory=dict)
    loads_outputs: bool = False
    tells_stages: bool = False


def spark_target(settings: Settings) -> SparkTarget:
    """The runner ``ORCHESTRATOR_SPARK_RUNNER`` names: local Spark (the embedded default), Databricks, the
    Data Factory large-batch pipeline, EMR Serverless Spark on Alibaba Cloud, or this process's Spark
    session. A cluster's notebook reads the lake at the root that ``ORCHESTRATOR_CLUSTER_LAKE_ROOT`` gives (a
    volume or mount of the same storage, or the bucket on OSS); in this process's session it defaults to the
    local lake. Unset, the runner is the profile's cloud's own (orchestrator.clouds); a cloud without one
    names the setting."""
    if not settings.spark_runner:
        raise InvalidInput(
            "ORCHESTRATOR_SPARK_RUNNER",
            f"is not set, and the {settings.profile} profile has no large-batch runner of its own yet: set "
            "it to databricks, emr-serverless or session, with ORCHESTRATOR_CLUSTER_LAKE_ROOT where it sees "
            "the lake",
        )
    if settings.spark_runner == "local":
        from orchestrator.runners.local_spark import LocalSparkConfig, LocalSparkRunner

        return SparkTarget(LocalSparkRunner(LocalSparkConfig.from_settings(settings)), tells_stages=True)
    if settings.spark_runner == "session":
        from orchestrator.runners.session import SessionRunner

        return SparkTarget(SessionRunner(Path(settings.cluster_lake_root or settings.data_dir)))
    if not settings.cluster_lake_root:
        raise InvalidInput(
            "ORCHESTRATOR_CLUSTER_LAKE_ROOT",
            f"is not set; the {settings.spark_runner} runner's notebook reads the lake there: set it to the "
            "lake's root as the cluster sees it, such as /Volumes/main/workbench/lake",
        )
    parameters = {"lake_root": settings.cluster_lake_root}
    if settings.spark_runner == "emr-serverless":
        from orchestrator.runners.emr_serverless import EmrConfig, EmrServerlessRunner

        if not settings.cluster_lake_root.startswith("oss://"):
            raise InvalidInput(
                "ORCHESTRATOR_CLUSTER_LAKE_ROOT",
                f"{settings.cluster_lake_root!r}: EMR Serverless Spark reads the lake from OSS; set it to "
                "the bucket as the job sees it, such as oss://my-bucket",
            )
        return SparkTarget(EmrServerlessRunner(EmrConfig.from_settings(settings)), parameters)
    if settings.spark_runner == "databricks":
        from orchestrator.runners.databricks import DatabricksConfig, DatabricksRunner

        return SparkTarget(DatabricksRunner(DatabricksConfig.from_mapping(Lookup())), parameters)
    from orchestrator.runners.datafactory import LARGE_BATCH, DataFactoryConfig, DataFactoryRunner

    # The large-batch pipeline loads gold into Synapse and silver into MySQL after the notebook (adf/).
    runner = DataFactoryRunner(DataFactoryConfig.from_mapping(Lookup()), LARGE_BATCH)
    return SparkTarget(runner, parameters, loads_outputs=True)


__all__ = [
    "CANCELLED",
    "FAILED",
    "QUEUED",
    "RUNNING",
    "RUN_STATES",
    "SUCCEEDED",
    "TERMINAL_STATES",
    "RunRequest",
    "RunStatus",
    "RunTimeout",
    "Runner",
    "RunnerError",
    "SparkTarget",
    "spark_target",
    "wait_for",
]
