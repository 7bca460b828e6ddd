"""A cloud per job, and sync between clouds: jobs created on one of the configured clouds live there; a job's
files are copied to another cloud verified, resumably, idempotently and never over what is there. The local
lake beside an ADLS Gen2 account on Azurite and an OSS bucket on tests/fake_oss.py, each through its real SDK.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from orchestrator.config import get_settings
from orchestrator.errors import InvalidInput
from orchestrator.generation.spec import GenerationSpec
from orchestrator.jobs import placement
from orchestrator.service import delete_job, execute_job, generate_job, job_outputs, launch_clean
from orchestrator.storage import open_lake, paths
from orchestrator.sync import SyncConflict, sync_job
from tests.azurite import Azurite
from tests.fake_oss import FakeOss
from tests.gen_helpers import stored_job

ROOT = Path(__file__).resolve().parents[1]
OSS_KEY, OSS_SECRET = "LTAI5tSyncTest", "sync-secret-0042"


@pytest.fixture(scope="module")
def oss() -> Iterator[FakeOss]:
    with FakeOss(OSS_KEY, OSS_SECRET, "cn-test", ("lake",)) as fake:
        yield fake


@pytest.fixture
def clouds(data_dir, azurite: Azurite, oss: FakeOss, tmp_path, monkeypatch) -> Iterator[None]:
    """This machine as the default cloud, beside an ADLS Gen2 file system of the test's own and OSS."""
    name = f"lake{uuid.uuid4().hex[:10]}"
    BlobServiceClient.from_connection_string(azurite.connection_string).create_container(name)
    oss.buckets["lake"].clear()
    for setting, value in {
        "ORCHESTRATOR_SECRETS_FILE": str(tmp_path / "no-secrets.toml"),
        "ORCHESTRATOR_CLOUDS": "local,azure,aliyun",
        "ORCHESTRATOR_AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
        "ORCHESTRATOR_AZURE_FILE_SYSTEM": name,
        "ORCHESTRATOR_ALIYUN_OSS_BUCKET": "lake",
        "ORCHESTRATOR_ALIYUN_OSS_ENDPOINT": oss.endpoint,
        "ORCHESTRATOR_ALIYUN_OSS_REGION": "cn-test",
        "ORCHESTRATOR_ALIYUN_OSS_PATH_STYLE": "true",
        "ORCHESTRATOR_ALIYUN_ACCESS_KEY_ID": OSS_KEY,
        "ORCHESTRATOR_ALIYUN_ACCESS_KEY_SECRET": OSS_SECRET,
        "ORCHESTRATOR_ALIYUN_MNS_ENDPOINT": "http://127.0.0.1:9",  # queues are not used by a sync
    }.items():
        monkeypatch.setenv(setting, value)
    yield


def _files(lake, *folders: str) -> dict[str, str]:
    """Every file under ``folders`` with its SHA-256."""
    found = {}
    for folder in folders:
        for path in lake.list(folder):
            with lake.open_read(path) as handle:
                found[path] = hashlib.sha256(handle.read()).hexdigest()
    return found


def _cleaned(user: str, cloud: str | None = None):
    generated = generate_job(GenerationSpec(rows=120, seed=7, error_rate=0.2), user, cloud=cloud)
    launched = launch_clean(user, generated.job_id)
    return generated, execute_job(launched.job.job_id)


def _job_folders(generation, cleaning) -> tuple[str, ...]:
    user, job_id = generation.user, generation.job_id
    return (
        paths.raw_dir(user, job_id),
        paths.truth_dir(user, job_id),
        paths.silver_dir(user, job_id, cleaning.job_id),
        paths.gold_dir(user, job_id, cleaning.job_id),
    )


@pytest.mark.parametrize("target", ["azure", "aliyun"])
def test_a_job_is_copied_whole_and_verified_and_a_second_sync_copies_nothing(clouds, target):
    generated, cleaning = _cleaned("alice")
    settings = get_settings()
    local, remote = open_lake(settings), open_lake(settings.on_cloud(target))
    before = _files(local, *_job_folders(generated, cleaning))
    told: list[tuple[int, int]] = []

    first = sync_job(generated.job_id, target, user="alice", progress=lambda d, t, _: told.append((d, t)))

    assert (first.copied, first.kept, first.source, first.target) == (len(before), 0, "local", target)
    assert _files(remote, *_job_folders(generated, cleaning)) == before  # every byte, by SHA-256
    assert told[-1] == (len(before), len(before)) and [d for d, _ in told] == list(range(1, len(before) + 1))
    assert {job.job_id for job in first.jobs} == {generated.job_id, cleaning.job_id}
    for job_id in (generated.job_id, cleaning.job_id):
        assert placement.clouds_of(stored_job(job_id), settings) == ["local", target]
    again = sync_job(generated.job_id, target, user="alice")
    assert (again.copied, again.kept, again.bytes_copied) == (0, len(before), 0)
    assert _files(local, *_job_folders(generated, cleaning)) == before  # the source is only read


def test_a_sync_killed_half_way_shows_no_copy_and_goes_on_where_it_stopped(clouds):
    generated, cleaning = _cleaned("alice")
    settings = get_settings()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "orchestrator", "sync", generated.job_id, "--to", "azure"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("[3/"):
            process.send_signal(signal.SIGKILL)
            break
    process.wait()
    process.stdout.close()
    total = int(lines[-1].split("/")[1].split("]")[0])
    remote = open_lake(settings.on_cloud("azure"))
    # no job at the target: its raw manifest is not there and the store names no copy
    assert not remote.exists(paths.raw_manifest("alice", generated.job_id))
    assert placement.copies(stored_job(generated.job_id)) == []
    resumed = subprocess.run(
        [*command, "--json"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    result = json.loads(resumed.stdout)
    assert result["kept"] >= 3 and result["copied"] + result["kept"] == total
    assert _files(remote, *_job_folders(generated, cleaning)) == _files(
        open_lake(settings), *_job_folders(generated, cleaning)
    )
    assert placement.copies(stored_job(generated.job_id)) == ["azure"]


def test_a_different_file_at_the_target_is_never_overwritten_and_the_job_is_not_recorded_there(clouds):
    generated, _ = _cleaned("alice")
    settings = get_settings()
    remote = open_lake(settings.on_cloud("aliyun"))
    table = paths.raw_table("alice", generated.job_id, "orders")
    with remote.open_write(table) as writer:
        writer.write(b'{"order_id": "not the same"}\n')

    with pytest.raises(SyncConflict, match=r"orders\.jsonl: the target holds a different file"):
        sync_job(generated.job_id, "aliyun", user="alice")

    with remote.open_read(table) as handle:
        assert handle.read() == b'{"order_id": "not the same"}\n'
    assert not remote.exists(paths.raw_manifest("alice", generated.job_id))
    assert placement.copies(stored_job(generated.job_id)) == []


def test_a_job_lives_on_the_cloud_it_was_created_on_and_is_cleaned_where_its_data_is(clouds):
    settings = get_settings()
    generated = generate_job(GenerationSpec(rows=80, seed=3), "bob", cloud="azure")
    azure, local = open_lake(settings.on_cloud("azure")), open_lake(settings)
    assert azure.exists(generated.manifest_path) and not local.exists(generated.manifest_path)
    assert placement.home(stored_job(generated.job_id), settings) == "azure"
    with pytest.raises(
        InvalidInput, match=r"^cloud: .* lives on azure, not on 'aliyun'; sync it there first"
    ):
        launch_clean("bob", generated.job_id, cloud="aliyun")

    sync_job(generated.job_id, "local", user="bob")
    on_copy = execute_job(launch_clean("bob", generated.job_id, cloud="local").job.job_id)

    assert on_copy.state == "succeeded" and placement.home(on_copy, settings) == "local"
    assert local.exists(paths.silver_manifest("bob", generated.job_id, on_copy.job_id))
    assert not azure.exists(paths.silver_manifest("bob", generated.job_id, on_copy.job_id))
    assert job_outputs(on_copy)["tables"]  # read where it was cleaned
    delete_job(generated.job_id, user="bob")  # every copy goes with the job
    assert not any(lake.exists(generated.manifest_path) for lake in (azure, local))


def test_only_configured_clouds_and_the_owner_s_jobs_are_synced(clouds, monkeypatch):
    generated = generate_job(GenerationSpec(rows=40, seed=1), "alice")
    with pytest.raises(InvalidInput, match=r"^to: .* lives on local already"):
        sync_job(generated.job_id, "local", user="alice")
    with pytest.raises(Exception, match="does not exist"):
        sync_job(generated.job_id, "azure", user="mallory")
    monkeypatch.setenv("ORCHESTRATOR_CLOUDS", "local")
    with pytest.raises(InvalidInput, match=r"^cloud: 'azure' is not one of the configured clouds \(local\)"):
        sync_job(generated.job_id, "azure", user="alice")
    with pytest.raises(InvalidInput, match=r"^ORCHESTRATOR_CLOUDS: 'gcp' is not a cloud"):
        monkeypatch.setenv("ORCHESTRATOR_CLOUDS", "local,gcp")
        get_settings()
