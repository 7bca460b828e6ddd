"""Generation on Spark: every built-in contract's files come out as a local run writes them (raw byte for
byte, truth, answer key and duplicate map row for row), the engine is chosen on the command line or by size,
and a cancelled Spark generation leaves no files and no Spark work. All on the tests' one Spark Connect
server, as the product reaches it through ORCHESTRATOR_SPARK_CONNECT."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import requests

from orchestrator.cleaning.spark import connect
from orchestrator.clouds.aliyun import AliyunSettings
from orchestrator.config import AzureStorageSettings, MySQLSettings, Settings
from orchestrator.domain.contract import built_in, built_in_names
from orchestrator.errors import InvalidInput
from orchestrator.generation import on_spark
from orchestrator.generation.generator import generate
from orchestrator.generation.spec import GenerationSpec
from orchestrator.jobs.store import JobCancelled, JobStore
from orchestrator.service import generate_job, queue_generation, run_generation
from orchestrator.storage import LocalLake, paths
from tests.test_spark_connect import _running_jobs

REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.fixture
def on_server(settings, spark_connect, monkeypatch):
    """The product's Spark is the tests' Spark Connect server."""
    monkeypatch.setenv(connect.CONNECT_ENV, spark_connect.point.address)
    return spark_connect


def _tagged_jobs(ui: str, job_id: str) -> list[dict]:
    """The server's Spark jobs (any state) tagged with a generation's job id."""
    app = requests.get(f"{ui}/api/v1/applications", timeout=60).json()[0]["id"]
    jobs = requests.get(f"{ui}/api/v1/applications/{app}/jobs", timeout=60).json()
    return [job for job in jobs if any(job_id in tag for tag in job.get("jobTags", []))]


def _files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


def test_spark_tasks_carry_the_lake_settings_and_no_other_secret(tmp_path):
    # Every task is pickled with its plan and may run on another machine: it takes what opening the lake
    # needs (the storage account key), never the database's password, a function key or another cloud.
    lake = AzureStorageSettings(
        "lake", account_url="https://a.blob.core.windows.net", account_key="lake-key", functions_key="fnkey"
    )
    settings = Settings(
        data_dir=tmp_path,
        profile="azure",
        mysql=MySQLSettings("db", "workbench", "loader", password="db-password"),
        cloud_settings=lake,
        clouds={"azure": lake, "aliyun": AliyunSettings("b", "https://oss", access_key_secret="oss-secret")},
    )
    shop = built_in("shop").contract
    plan = on_spark.Plan(GenerationSpec(rows=10), "alice", "job-1", shop, ["orders"], settings)
    shipped = pickle.dumps(plan)
    assert b"lake-key" in shipped
    for secret in (b"db-password", b"fnkey", b"oss-secret"):
        assert secret not in shipped
    assert plan.settings.for_lake() == plan.settings  # what opens the lake there is what the tasks got


@pytest.mark.parametrize("contract", built_in_names())
def test_spark_writes_the_files_a_local_run_writes(contract, on_server, tmp_path):
    # Several chunks per table (and for the shop, order families whose child ids follow earlier chunks').
    spec = GenerationSpec(rows=450, seed=11, chunk_rows=160, contract=contract, error_rate=0.5)
    job_id = f"generate-same-{contract}"  # a job's Spark Connect session is its own, released at its end
    local = generate(spec, "alice", storage=LocalLake(tmp_path / "local"), job_id=job_id, engine="local")
    spark = generate(spec, "alice", storage=LocalLake(tmp_path / "spark"), job_id=job_id, engine="spark")
    assert local.to_dict() | {"seconds": 0} == spark.to_dict() | {"seconds": 0}
    assert local.errors_injected > 0 and sum(t.rows > t.truth_rows for t in local.tables.values())  # dirty
    mine, theirs = _files(tmp_path / "local"), _files(tmp_path / "spark")
    assert mine.keys() == theirs.keys()  # nothing of the Spark tasks' parts is left
    for name, path in mine.items():
        if name.endswith(".parquet"):  # truth, answer key, duplicates: the same rows in the same order
            assert pq.read_table(path).equals(pq.read_table(theirs[name])), name
        elif name.endswith("manifest.json"):
            ours, spark_manifest = json.loads(path.read_bytes()), json.loads(theirs[name].read_bytes())
            for manifest in (ours, spark_manifest):
                del manifest["created_at"], manifest["seconds"]
            assert ours == spark_manifest
        else:  # raw JSON Lines and the contract: byte for byte
            assert path.read_bytes() == theirs[name].read_bytes(), name
    assert _tagged_jobs(on_server.ui, job_id)  # it did run on the server


def test_auto_runs_on_spark_from_the_size_setting_on(on_server, settings, monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_SPARK_GENERATION_MIN_ROWS", "300")
    spec = GenerationSpec(rows=299, seed=2, tables=("customers", "orders"))
    small = generate_job(spec, "alice")
    large = generate_job(GenerationSpec(rows=300, seed=2, tables=("customers", "orders")), "alice")
    assert not _tagged_jobs(on_server.ui, small.job_id)
    assert _tagged_jobs(on_server.ui, large.job_id)
    forced = generate_job(spec, "alice", engine="spark")
    assert _tagged_jobs(on_server.ui, forced.job_id)
    lake = settings.data_dir
    for result in (small, large, forced):
        assert (lake / result.manifest_path).is_file()
        assert not (lake / paths.truth_dir("alice", result.job_id) / "parts").exists()
    assert (lake / small.tables["orders"].raw_path).read_bytes() == (
        lake / forced.tables["orders"].raw_path
    ).read_bytes()


def test_an_unknown_engine_is_refused_by_name(settings):
    spec = GenerationSpec(rows=10)
    with pytest.raises(InvalidInput) as refused:
        queue_generation(spec, "alice", engine="gpu")
    assert refused.value.field == "engine" and "local, spark, auto" in str(refused.value)
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "generate",
            "--user",
            "alice",
            "--rows",
            "10",
            "--engine",
            "gpu",
        ],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 2 and "--engine" in cli.stderr and "'local', 'spark', 'auto'" in cli.stderr


def test_a_cancelled_spark_generation_leaves_no_files_and_no_spark_work(on_server, settings):
    job = queue_generation(GenerationSpec(rows=400_000, seed=5, chunk_rows=10_000), "alice", engine="spark")
    ended: list[BaseException] = []

    def run() -> None:
        try:
            run_generation(job.job_id)
        except BaseException as error:  # the cancel, seen by the generation
            ended.append(error)

    runner = threading.Thread(target=run)
    runner.start()
    deadline = time.monotonic() + 300
    while not any(job.job_id in tag for j in _running_jobs(on_server.ui) for tag in j.get("jobTags", [])):
        assert runner.is_alive() and time.monotonic() < deadline, ended
        time.sleep(0.1)
    store = JobStore.default()
    try:
        store.cancel(job.job_id)
    finally:
        store.close()
    runner.join(120)
    assert not runner.is_alive() and isinstance(ended[0], JobCancelled)
    deadline = time.monotonic() + 60
    while _running_jobs(on_server.ui):  # interrupted tasks end on their own time, but they end
        assert time.monotonic() < deadline, _running_jobs(on_server.ui)
        time.sleep(0.2)
    assert not (settings.data_dir / paths.raw_dir("alice", job.job_id)).exists()
    assert not (settings.data_dir / paths.truth_dir("alice", job.job_id)).exists()
