"""The spark engine on the runner the settings choose.

Databricks end to end: the worker's job goes through the real databricks-sdk to a local workspace whose
cluster runs the notebook on local Spark. Data Factory: the real SDK starts the large-batch pipeline on a
local ARM server whose notebook activity runs the same way, and the worker leaves the loads to the pipeline.
And the settings a cluster runner needs.
"""

from __future__ import annotations

import duckdb
import pyarrow.parquet as pq
import pytest

from orchestrator.cleaning import stages
from orchestrator.cleaning.pipeline import CleaningJob, OnSpark, run_cleaning
from orchestrator.config import get_settings
from orchestrator.errors import InvalidInput
from orchestrator.generation.spec import GenerationSpec
from orchestrator.loading.warehouse import warehouse_path
from orchestrator.runners import SparkTarget, spark_target
from orchestrator.runners.databricks import DatabricksRunner
from orchestrator.runners.datafactory import DataFactoryRunner
from orchestrator.runners.local_spark import LocalSparkRunner
from orchestrator.service import execute_job, generate_job, job_outputs, launch_clean
from orchestrator.storage import open_lake, paths
from tests.fake_arm import FakeDataFactory, StaticToken, make_certificate
from tests.fake_cluster import LocalCluster
from tests.fake_databricks import API, FakeDatabricks
from tests.test_runner_datafactory import FACTORY, config_for
from tests.test_runner_datafactory import TOKEN as ARM_TOKEN

TOKEN = "dapi-cluster-secret-0042"
NOTEBOOK = "/Workspace/Shared/data-workbench/notebooks/clean_large_batch"


def _large_batch_settings(mp: pytest.MonkeyPatch, root, runner: str) -> None:
    mp.setenv("ORCHESTRATOR_DATA_DIR", str(root))
    mp.setenv("ORCHESTRATOR_SMALL_BATCH_MAX_ROWS", "1000")
    mp.setenv("ORCHESTRATOR_SPARK_RUNNER", runner)


@pytest.fixture(scope="module")
def databricks_job(tmp_path_factory):
    """A batch over the small-batch limit, run by the worker on Databricks; the cluster sees the lake at its
    own root (here: the same folder)."""
    root = tmp_path_factory.mktemp("data")
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster-logs"))
    with FakeDatabricks(TOKEN, cluster) as workspace, pytest.MonkeyPatch.context() as mp:
        _large_batch_settings(mp, root, "databricks")
        mp.setenv("ORCHESTRATOR_CLUSTER_LAKE_ROOT", str(root))
        mp.setenv("DATABRICKS_HOST", workspace.url)
        mp.setenv("DATABRICKS_TOKEN", TOKEN)
        generated = generate_job(GenerationSpec(rows=150, seed=8, error_rate=0.4), "alice")
        launched = launch_clean("alice", generated.job_id)
        job = execute_job(launched.job.job_id)
        outputs = job_outputs(job)
        settings = get_settings()
    return root, settings, generated, job, outputs, workspace.received(f"{API}/submit"), workspace.url


def test_the_worker_runs_a_large_batch_on_databricks_with_the_job_and_the_clusters_lake(databricks_job):
    root, _settings, generated, job, _outputs, submits, workspace_url = databricks_job
    assert job.state == "succeeded", job.error
    assert job.route == "large" and job.engine == "spark"
    assert tuple(job.timings) == stages.SPARK  # Databricks tells no stages of the notebook: one for the run
    assert len(submits) == 1
    assert submits[0].headers["authorization"] == f"Bearer {TOKEN}"
    run = job.remote_run  # where its owner finds the run: the workspace's own page of it
    assert (run["service"], run["state"]) == ("databricks", "succeeded")
    assert run["url"] == f"{workspace_url}/#job/0/run/{run['run_id']}"
    task = submits[0].body["tasks"][0]
    assert task["notebook_task"]["notebook_path"] == NOTEBOOK
    assert task["notebook_task"]["base_parameters"] == {
        "job_id": job.job_id,
        "user": "alice",
        "parent_job_id": generated.job_id,
        "lake_root": str(root),
    }


def test_the_clusters_outputs_are_loaded_like_any_spark_job(databricks_job):
    root, settings, generated, job, outputs, _submits, _url = databricks_job
    for name, counts in outputs["tables"].items():
        assert counts["rows_in"] == generated.tables[name].rows
        assert pq.read_metadata(root / outputs["silver"][name]).num_rows == counts["rows_out"]
    with duckdb.connect(str(warehouse_path(settings)), read_only=True) as con:
        loaded = con.execute(
            "SELECT count(*) FROM gold_daily_revenue WHERE job_id = ?", [job.job_id]
        ).fetchone()
    assert loaded[0] == pq.read_metadata(root / outputs["gold"]["daily_revenue"]).num_rows > 0


def test_a_cluster_that_cannot_see_the_lake_fails_the_job_with_the_notebooks_reason(tmp_path, monkeypatch):
    cluster = LocalCluster(tmp_path / "cluster-logs")
    with FakeDatabricks(TOKEN, cluster) as workspace:
        _large_batch_settings(monkeypatch, tmp_path / "data", "databricks")
        monkeypatch.setenv("ORCHESTRATOR_CLUSTER_LAKE_ROOT", str(tmp_path / "elsewhere"))
        monkeypatch.setenv("DATABRICKS_HOST", workspace.url)
        monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
        generated = generate_job(GenerationSpec(rows=1200, seed=3, tables=("orders",)), "alice")
        job = execute_job(launch_clean("alice", generated.job_id).job.job_id)
    assert job.state == "failed"
    assert f"no generated job {generated.job_id} for user alice" in job.error
    assert not (tmp_path / "data" / "silver").exists()


def test_the_data_factory_pipeline_runs_the_notebook_and_keeps_the_loads(tmp_path, monkeypatch):
    """The large-batch pipeline loads gold and silver itself (adf/), so the worker reads the outputs and
    writes the silver manifest but loads nothing."""
    cert, key = make_certificate(tmp_path)
    cluster = LocalCluster(tmp_path / "cluster-logs")
    with FakeDataFactory(cert, key, ARM_TOKEN, FACTORY, {"large_batch"}, cluster) as factory:
        _large_batch_settings(monkeypatch, tmp_path / "data", "datafactory")
        settings = get_settings()
        generated = generate_job(GenerationSpec(rows=120, seed=4, tables=("orders", "payments")), "alice")
        runner = DataFactoryRunner(config_for(factory.url, cert), credential=StaticToken(ARM_TOKEN))
        heard: list[tuple[str, float]] = []  # the run's state and its seconds, at each look while it runs
        job = CleaningJob(
            settings,
            open_lake(settings),
            "alice",
            generated.job_id,
            "c-adf-1",
            running=lambda status, seconds: heard.append((status.state, seconds)),
        )
        target = SparkTarget(runner, {"lake_root": str(settings.data_dir)}, loads_outputs=True)
        outcome = run_cleaning(job, OnSpark(target, poll_seconds=0.5))
        (created,) = factory.received(f"{FACTORY}/pipelines/large_batch/createRun")
    assert created.body == {
        "job_id": "c-adf-1",
        "user": "alice",
        "parent_job_id": generated.job_id,
        "lake_root": str(settings.data_dir),
    }
    assert outcome.rows_in == sum(t.rows for t in generated.tables.values())
    assert outcome.loaded == {}
    assert heard and {state for state, _ in heard} <= {"QUEUED", "RUNNING"}, heard
    assert [seconds for _, seconds in heard] == sorted(seconds for _, seconds in heard)
    assert not warehouse_path(settings).exists()
    assert (settings.data_dir / paths.silver_manifest("alice", generated.job_id, "c-adf-1")).is_file()


def test_the_settings_choose_the_runner_and_what_its_runs_carry(data_dir, monkeypatch):
    assert isinstance(spark_target(get_settings()).runner, LocalSparkRunner)
    monkeypatch.setenv("ORCHESTRATOR_CLUSTER_LAKE_ROOT", "/Volumes/main/workbench/lake")
    monkeypatch.setenv("ORCHESTRATOR_SPARK_RUNNER", "databricks")
    monkeypatch.setenv("DATABRICKS_HOST", "https://adb-1.azuredatabricks.net")
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    target = spark_target(get_settings())
    assert isinstance(target.runner, DatabricksRunner) and not target.loads_outputs
    assert target.parameters == {"lake_root": "/Volumes/main/workbench/lake"}
    monkeypatch.setenv("ORCHESTRATOR_SPARK_RUNNER", "datafactory")
    for name, value in (
        ("AZURE_SUBSCRIPTION_ID", "sub-1"),
        ("AZURE_RESOURCE_GROUP", "rg"),
        ("ADF_FACTORY_NAME", "f"),
    ):
        monkeypatch.setenv(name, value)
    target = spark_target(get_settings())
    assert isinstance(target.runner, DataFactoryRunner) and target.runner.pipeline == "large_batch"
    assert target.loads_outputs and target.parameters == {"lake_root": "/Volumes/main/workbench/lake"}


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"ORCHESTRATOR_SPARK_RUNNER": "yarn"}, "ORCHESTRATOR_SPARK_RUNNER"),
        ({"ORCHESTRATOR_SPARK_RUNNER": "databricks"}, "ORCHESTRATOR_CLUSTER_LAKE_ROOT"),
        (
            {"ORCHESTRATOR_SPARK_RUNNER": "databricks", "ORCHESTRATOR_CLUSTER_LAKE_ROOT": "/Volumes/l"},
            "DATABRICKS_HOST",
        ),
        (
            {"ORCHESTRATOR_SPARK_RUNNER": "datafactory", "ORCHESTRATOR_CLUSTER_LAKE_ROOT": "/Volumes/l"},
            "AZURE_SUBSCRIPTION_ID",
        ),
    ],
)
def test_a_cluster_runner_without_its_settings_names_what_to_set(data_dir, monkeypatch, settings, named):
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(InvalidInput, match=f"^{named}: "):
        spark_target(get_settings())


def test_a_job_whose_runner_is_not_configured_fails_naming_the_setting_and_writes_nothing(
    data_dir, monkeypatch
):
    monkeypatch.setenv("ORCHESTRATOR_SMALL_BATCH_MAX_ROWS", "100")
    generated = generate_job(GenerationSpec(rows=300, seed=2, tables=("orders",)), "alice")
    monkeypatch.setenv("ORCHESTRATOR_SPARK_RUNNER", "databricks")
    job = execute_job(launch_clean("alice", generated.job_id).job.job_id)
    assert job.state == "failed" and job.error.startswith("ORCHESTRATOR_CLUSTER_LAKE_ROOT: is not set")
    assert not (data_dir / "silver").exists()
