"""The profile table (orchestrator/clouds): each cloud names its lake, queues, small- and large-batch runners,
the settings choose an entry, and nothing else asks which cloud's settings happen to be set."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator.clouds import CLOUDS, LOCAL_LAKE, PROFILES, SMALL_RUNNERS, _resolve, cloud_of
from orchestrator.clouds.aliyun.mns import MnsQueue
from orchestrator.clouds.aliyun.oss import OssLake
from orchestrator.config import SECRETS_FILE_ENV, SPARK_RUNNERS, get_settings
from orchestrator.errors import InvalidInput
from orchestrator.queues import LocalQueue, open_queue
from orchestrator.runners import spark_target
from orchestrator.storage import LocalLake, open_lake
from orchestrator.ui_support import connection_checks
from tests.fake_mns import FakeMns
from tests.fake_oss import FakeOss

REPOSITORY = Path(__file__).resolve().parents[1]


def test_every_entry_names_adapters_that_exist_and_runners_the_settings_know():
    assert tuple(CLOUDS) == PROFILES and {"local", "azure", "aliyun"} <= set(PROFILES)
    for name, cloud in CLOUDS.items():
        assert cloud.name == name
        for target in (cloud.lake, cloud.queues, *([cloud.settings] if cloud.settings else [])):
            assert callable(_resolve(target)), target
        assert cloud.small_batches in SMALL_RUNNERS
        assert cloud.large_batches is None or cloud.large_batches in SPARK_RUNNERS
    assert CLOUDS["local"].lake_on_disk and CLOUDS["local"].queues_on_host
    assert not CLOUDS["azure"].lake_on_disk and not CLOUDS["azure"].queues_on_host
    assert [c.name for c in CLOUDS.values() if c.lake == LOCAL_LAKE] == ["local"]


def test_the_local_profile_opens_the_local_lake_and_queues_and_runs_large_batches_on_local_spark(data_dir):
    settings = get_settings()
    assert cloud_of(settings) is CLOUDS["local"] and settings.cloud_settings is None
    assert isinstance(open_lake(settings), LocalLake) and isinstance(open_queue("jobs", settings), LocalQueue)
    assert settings.spark_runner == "local"


def test_the_azure_profile_reads_its_account_and_runs_large_batches_on_databricks_unless_told(
    data_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv(SECRETS_FILE_ENV, str(tmp_path / "no-secrets.toml"))
    monkeypatch.setenv("ORCHESTRATOR_PROFILE", "azure")
    with pytest.raises(InvalidInput, match=r"^ORCHESTRATOR_AZURE_STORAGE_CONNECTION_STRING: "):
        get_settings()
    monkeypatch.setenv("ORCHESTRATOR_AZURE_STORAGE_URL", "https://acct.dfs.core.windows.net")
    monkeypatch.setenv("ORCHESTRATOR_AZURE_STORAGE_KEY", "a2V5")
    settings = get_settings()
    assert settings.azure_storage is settings.cloud_settings
    assert settings.azure_storage.account_url == "https://acct.dfs.core.windows.net"
    assert "a2V5" not in repr(settings)
    assert settings.spark_runner == "databricks"
    with pytest.raises(InvalidInput, match=r"^ORCHESTRATOR_CLUSTER_LAKE_ROOT: "):
        spark_target(settings)
    monkeypatch.setenv("ORCHESTRATOR_SPARK_RUNNER", "local")
    with pytest.raises(InvalidInput, match="local Spark reads a local lake; with the azure profile"):
        spark_target(get_settings())


def test_no_module_outside_the_table_asks_which_cloud_is_configured():
    """The backend is chosen by looking the profile up in orchestrator/clouds, not by testing which settings
    are set or comparing the profile's name."""
    asks = re.compile(r"azure_storage is (?:not )?None|profile [!=]= \"|\.profile in \(")
    found = [
        f"{path.relative_to(REPOSITORY)}: {line.strip()}"
        for path in [*REPOSITORY.glob("orchestrator/**/*.py"), *REPOSITORY.glob("pages/*.py")]
        if "clouds" not in path.parts
        for line in path.read_text().splitlines()
        if asks.search(line)
    ]
    assert found == []


def test_the_aliyun_profile_keeps_its_lake_in_oss_its_queues_in_mns_and_runs_large_batches_on_emr(
    data_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv(SECRETS_FILE_ENV, str(tmp_path / "no-secrets.toml"))
    monkeypatch.setenv("ORCHESTRATOR_PROFILE", "aliyun")
    with pytest.raises(InvalidInput, match=r"^ORCHESTRATOR_ALIYUN_OSS_BUCKET: is not set"):
        get_settings()
    secret = "aliyun-secret-0042"
    with (
        FakeOss("LTAI5tProfileTest", secret, "cn-test", ("lake",)) as fake,
        FakeMns("LTAI5tProfileTest", secret) as mns,
    ):
        for name, value in {
            "ORCHESTRATOR_ALIYUN_OSS_BUCKET": "lake",
            "ORCHESTRATOR_ALIYUN_OSS_ENDPOINT": fake.endpoint,
            "ORCHESTRATOR_ALIYUN_OSS_REGION": "cn-test",
            "ORCHESTRATOR_ALIYUN_OSS_PATH_STYLE": "true",
            "ORCHESTRATOR_ALIYUN_ACCESS_KEY_ID": "LTAI5tProfileTest",
            "ORCHESTRATOR_ALIYUN_ACCESS_KEY_SECRET": secret,
        }.items():
            monkeypatch.setenv(name, value)
        with pytest.raises(InvalidInput, match=r"^ORCHESTRATOR_ALIYUN_MNS_ENDPOINT: is not set; the aliyun"):
            open_queue("jobs", get_settings())  # the lake alone needs no queue endpoint
        checks = connection_checks(get_settings())  # the Settings page shows it as failed checks
        assert checks["lake"].ok
        for route in ("small", "large"):
            queue_check = checks[f"{route} queue"]
            assert (queue_check.ok, queue_check.field) == (False, "ORCHESTRATOR_ALIYUN_MNS_ENDPOINT")
        monkeypatch.setenv("ORCHESTRATOR_ALIYUN_MNS_ENDPOINT", mns.endpoint)
        settings = get_settings()
        assert secret not in repr(settings) and settings.azure_storage is None
        lake = open_lake(settings)
        assert isinstance(lake, OssLake)
        with lake.open_write("raw/alice/job-1/orders.jsonl") as writer:
            writer.write(b"{}")
        assert fake.buckets["lake"]["raw/alice/job-1/orders.jsonl"].data == b"{}"
        queue = open_queue("jobs", settings)
        assert isinstance(queue, MnsQueue) and not CLOUDS["aliyun"].queues_on_host
        queue.send({"job_id": "c-1"})
        assert [m.json() for m in queue.receive()] == [{"job_id": "c-1"}]
        assert secret not in repr(queue)
        assert settings.spark_runner == "emr-serverless"
        with pytest.raises(InvalidInput, match=r"^ORCHESTRATOR_CLUSTER_LAKE_ROOT: is not set"):
            spark_target(settings)
        checks = connection_checks(settings)
        assert checks["lake"].ok and "bucket 'lake'" in checks["lake"].message
        field = checks["large batches"].field
        assert not checks["large batches"].ok and field == "ORCHESTRATOR_CLUSTER_LAKE_ROOT"
        monkeypatch.setenv("ORCHESTRATOR_CLUSTER_LAKE_ROOT", "/mnt/lake")
        with pytest.raises(
            InvalidInput, match=r"^ORCHESTRATOR_CLUSTER_LAKE_ROOT: '/mnt/lake': EMR Serverless"
        ):
            spark_target(get_settings())
        monkeypatch.setenv("ORCHESTRATOR_CLUSTER_LAKE_ROOT", "oss://lake")
        with pytest.raises(InvalidInput, match=r"^ORCHESTRATOR_ALIYUN_EMR_ENDPOINT: is not set"):
            spark_target(get_settings())
        monkeypatch.delenv("ORCHESTRATOR_CLUSTER_LAKE_ROOT")
        for route in ("small", "large"):
            assert checks[f"{route} queue"].ok and f"'clean-{route}'" in checks[f"{route} queue"].message
        assert {"jobs", "clean-small", "clean-large"} <= set(mns.queues)
        monkeypatch.setenv("ORCHESTRATOR_ALIYUN_ACCESS_KEY_SECRET", "wrong")
        checks = connection_checks(get_settings())
        for name in ("lake", "small queue", "large queue"):
            assert (checks[name].ok, checks[name].field) == (False, "access_key_secret"), name
        monkeypatch.setenv("ORCHESTRATOR_ALIYUN_MNS_ENDPOINT", "mns.cn-test.example")
        with pytest.raises(
            InvalidInput, match=r"^ORCHESTRATOR_ALIYUN_MNS_ENDPOINT: 'mns.cn-test.example' must"
        ):
            open_queue("jobs", get_settings())


def test_an_sts_token_goes_with_every_aliyun_request_and_is_never_shown(
    data_dir, tmp_path, monkeypatch, caplog
):
    """A temporary key pair (STS AssumeRole) comes with a token: OSS, MNS and EMR Serverless Spark each get it
    in their own header, accept it, and refuse a stale one naming the setting; it is kept out of repr() and
    logs."""
    from orchestrator.config import SECRET_NAMES
    from orchestrator.runners.emr_serverless import EmrServerlessRunner
    from tests.fake_acs import AcsKey
    from tests.fake_emr import FakeEmrServerless

    token = "CAIS-sts-token-0042-do-not-log"
    key_id, secret = "STS.NUTemporaryKey", "sts-secret-0042"
    assert "ORCHESTRATOR_ALIYUN_SECURITY_TOKEN" in SECRET_NAMES
    monkeypatch.setenv(SECRETS_FILE_ENV, str(tmp_path / "no-secrets.toml"))
    caplog.set_level("DEBUG")
    with (
        FakeOss(key_id, secret, "cn-test", ("lake",), security_token=token) as oss,
        FakeMns(key_id, secret, security_token=token) as mns,
        FakeEmrServerless(AcsKey(key_id, secret, token), {"w-sts": ("root_queue",)}) as emr,
    ):
        for name, value in {
            "ORCHESTRATOR_PROFILE": "aliyun",
            "ORCHESTRATOR_ALIYUN_OSS_BUCKET": "lake",
            "ORCHESTRATOR_ALIYUN_OSS_ENDPOINT": oss.endpoint,
            "ORCHESTRATOR_ALIYUN_OSS_REGION": "cn-test",
            "ORCHESTRATOR_ALIYUN_OSS_PATH_STYLE": "true",
            "ORCHESTRATOR_ALIYUN_ACCESS_KEY_ID": key_id,
            "ORCHESTRATOR_ALIYUN_ACCESS_KEY_SECRET": secret,
            "ORCHESTRATOR_ALIYUN_SECURITY_TOKEN": token,
            "ORCHESTRATOR_ALIYUN_MNS_ENDPOINT": mns.endpoint,
            "ORCHESTRATOR_ALIYUN_EMR_ENDPOINT": emr.url,
            "ORCHESTRATOR_ALIYUN_EMR_WORKSPACE": "w-sts",
            "ORCHESTRATOR_ALIYUN_EMR_CODE": "oss://lake/code",
            "ORCHESTRATOR_CLUSTER_LAKE_ROOT": "oss://lake",
        }.items():
            monkeypatch.setenv(name, value)
        settings = get_settings()
        lake, queue = open_lake(settings), open_queue("jobs", settings)
        runner = spark_target(settings).runner
        assert isinstance(runner, EmrServerlessRunner)

        with lake.open_write("raw/alice/job-1/orders.jsonl") as writer:
            writer.write(b"{}")
        queue.send({"job_id": "c-1"})
        assert [m.json() for m in queue.receive()] == [{"job_id": "c-1"}]
        checks = connection_checks(settings)

        assert oss.buckets["lake"]["raw/alice/job-1/orders.jsonl"].data == b"{}"
        assert {seen.headers.get("x-oss-security-token") for seen in oss.requests} == {token}
        assert {seen.headers.get("security-token") for seen in mns.requests} == {token}
        assert {request.headers.get("x-acs-security-token") for request in emr.requests} == {token}
        assert all(checks[name].ok for name in ("lake", "small queue", "large queue", "large batches")), (
            checks
        )
        for shown in (
            repr(settings),
            repr(lake),
            repr(queue),
            repr(runner.config),
            *map(str, checks.values()),
        ):
            assert token not in shown and secret not in shown
        assert not [r for r in caplog.records if token in r.getMessage() or secret in r.getMessage()]

        monkeypatch.setenv("ORCHESTRATOR_ALIYUN_SECURITY_TOKEN", "CAIS-expired")
        checks = connection_checks(get_settings())
        for name in ("lake", "small queue", "large queue"):
            assert (checks[name].ok, checks[name].field) == (False, "security_token"), name
        stale = checks["large batches"]
        assert (stale.ok, stale.field) == (False, "ORCHESTRATOR_ALIYUN_SECURITY_TOKEN"), stale.message
        assert "CAIS-expired" not in stale.message and token not in stale.message


def test_both_small_batch_functions_answer_in_the_shape_the_worker_prints():
    """Azure Functions and Function Compute report a drain alike (orchestrator.clouds.drain_summary): the
    service and the seconds, then one line per job as the worker prints a job's end; tests/
    test_function_compute.py and tests/test_azure_functions.py show each through its own service."""
    from orchestrator.clouds import drain_summary
    from orchestrator.clouds.azure.functions.client import summary

    report = {
        "seconds": 1.54,
        "jobs": [
            {"job_id": "c-1", "state": "succeeded", "error": None, "line": "c-1: succeeded"},
            {"job_id": "c-2", "state": "failed", "error": "boom"},
        ],
    }
    assert summary(report) == (
        "Azure Functions drained the small queue in 1.5 s: 2 jobs\nc-1: succeeded\nc-2: failed (boom)"
    )
    assert drain_summary("Function Compute", report).splitlines()[1:] == summary(report).splitlines()[1:]
    assert drain_summary("Function Compute", {"jobs": [], "seconds": 0.2}) == (
        "Function Compute drained the small queue in 0.2 s: no job was waiting"
    )
