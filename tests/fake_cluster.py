"""A cluster for the local service twins: a submitted run of the notebook really runs, on local Spark through
the product's own local runner, with the run's parameters as the notebook's widgets."""

from __future__ import annotations

from pathlib import Path

from orchestrator.runners import RunRequest, RunStatus
from orchestrator.runners.local_spark import LocalSparkConfig, LocalSparkRunner


class LocalCluster:
    """Runs notebooks for a fake workspace or factory; each run's log goes to ``logs``."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self._runs: dict[str, tuple[LocalSparkRunner, str]] = {}

    def start(self, key: str, parameters: dict[str, str]) -> None:
        """Start the notebook for the service's run ``key``; the lake is where ``lake_root`` says."""
        widgets = dict(parameters)
        config = LocalSparkConfig(lake_root=Path(widgets.pop("lake_root")), runs_dir=self.logs)
        runner = LocalSparkRunner(config)
        request = RunRequest(widgets.pop("job_id"), widgets.pop("user"), widgets.pop("parent_job_id"))
        self._runs[key] = (runner, runner.submit(request).run_id)

    def __contains__(self, key: str) -> bool:
        return key in self._runs

    def status(self, key: str) -> RunStatus:
        runner, run_id = self._runs[key]
        return runner.status(run_id)

    def cancel(self, key: str) -> None:
        runner, run_id = self._runs[key]
        runner.cancel(run_id)
