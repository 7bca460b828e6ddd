"""The whole pipeline on the azure profile, against Azurite: the lake on the Blob API of an ADLS Gen2
account, the queues on Azure Storage Queues. And Azurite stopped mid-run."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from collections.abc import Iterator

import pyarrow.parquet as pq
import pytest
from azure.storage.blob import BlobServiceClient

from orchestrator import worker
from orchestrator.cleaning import pipeline
from orchestrator.clouds.azure.adls import AdlsLake
from orchestrator.generation.spec import GenerationSpec
from orchestrator.service import execute_job, generate_job, job_outputs, launch_clean
from orchestrator.storage import open_lake
from tests.azurite import Azurite, running_azurite


def _use(server: Azurite, monkeypatch: pytest.MonkeyPatch) -> str:
    """Switch this test to the azure profile on ``server``, with a fresh file system."""
    name = f"lake{uuid.uuid4().hex[:10]}"
    BlobServiceClient.from_connection_string(server.connection_string).create_container(name)
    monkeypatch.setenv("ORCHESTRATOR_PROFILE", "azure")
    monkeypatch.setenv("ORCHESTRATOR_AZURE_STORAGE_CONNECTION_STRING", server.connection_string)
    monkeypatch.setenv("ORCHESTRATOR_AZURE_FILE_SYSTEM", name)
    return name


@pytest.fixture
def azure(azurite: Azurite, data_dir, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    yield _use(azurite, monkeypatch)


def _read(lake, path: str) -> bytes:
    with lake.open_read(path) as handle:
        return handle.read()


def test_generate_route_clean_and_load_on_the_azure_profile(azure, data_dir):
    lake = open_lake()
    assert isinstance(lake, AdlsLake)
    generated = generate_job(GenerationSpec(rows=300, seed=5), "alice")
    assert lake.exists(generated.manifest_path)
    assert not (data_dir / "raw").exists()  # nothing of the lake lands on local disk

    launched = launch_clean("alice", generated.job_id)
    assert launched.job.route == "small"
    finished = worker.drain("small")
    assert [job.job_id for job in finished] == [launched.job.job_id]
    job = finished[0]
    assert job.state == "succeeded", job.error

    outputs = job_outputs(job)
    assert set(outputs["silver"]) == set(generated.tables)
    orders = pq.read_table(io.BytesIO(_read(lake, outputs["silver"]["orders"])))
    assert orders.num_rows == outputs["tables"]["orders"]["rows_out"] > 0
    assert all(lake.exists(path) for path in outputs["gold"].values())
    manifest = json.loads(_read(lake, generated.manifest_path))
    for table in manifest["tables"].values():
        assert hashlib.sha256(_read(lake, table["raw_path"])).hexdigest() == table["sha256"]
    assert worker.drain("small") == []  # the message was deleted once the job finished


def test_azurite_stopped_mid_run_fails_the_job_clearly_and_a_retry_succeeds(data_dir, monkeypatch):
    with running_azurite("blob", "queue") as server:
        _use(server, monkeypatch)
        generated = generate_job(GenerationSpec(rows=300, seed=6), "alice")
        build_gold = pipeline.build_gold

        def outage(contract, silver):  # the lake goes away after silver was written, before gold
            server.stop("blob")
            return build_gold(contract, silver)

        monkeypatch.setattr(pipeline, "build_gold", outage)
        failed = execute_job(launch_clean("alice", generated.job_id).job.job_id)
        assert failed.state == "failed"
        assert failed.error.startswith("cannot reach the lake at http://127.0.0.1:"), failed.error
        assert "AccountKey" not in failed.error

        monkeypatch.setattr(pipeline, "build_gold", build_gold)
        server.start("blob")
        lake = open_lake()
        silver = [p for p in lake.list("silver") if p.endswith(".parquet")]
        assert silver and not any(p.endswith("manifest.json") for p in lake.list("silver"))
        for path in silver:  # what was written before the outage is whole
            pq.read_table(io.BytesIO(_read(lake, path)))
        assert not list(lake.list("gold"))

        retried = execute_job(launch_clean("alice", generated.job_id).job.job_id)
        assert retried.state == "succeeded", retried.error
        assert job_outputs(retried)["gold"]
