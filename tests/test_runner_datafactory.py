"""The Data Factory runner drives the real azure-mgmt-datafactory pipeline against a local TLS ARM server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.errors import InvalidInput
from orchestrator.runners import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    RunnerError,
    RunRequest,
    wait_for,
)
from orchestrator.runners.datafactory import SMALL_BATCH, DataFactoryConfig, DataFactoryRunner
from tests.fake_arm import API_VERSION, FakeDataFactory, StaticToken, make_certificate
from tests.fake_http import closed_port

TOKEN = "eyJ0eXAi.arm-secret-token.sig"
SECRET = "client-secret-value-5f3a"
SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"
RESOURCE_GROUP = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-workbench"
FACTORY = f"{RESOURCE_GROUP}/providers/Microsoft.DataFactory/factories/adf-wb"
REQUEST = RunRequest(job_id="c-42", user="alice", parent_job_id="g-41", parameters={"seed": "7"})


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def arm(certificate) -> Iterator[FakeDataFactory]:
    with FakeDataFactory(*certificate, TOKEN, FACTORY, {"small_batch", "large_batch"}) as server:
        yield server


def config_for(url: str, ca_bundle: Path, **overrides: object) -> DataFactoryConfig:
    settings = {"http_timeout_seconds": 2.0, "retry_timeout_seconds": 2.0, **overrides}
    return DataFactoryConfig(
        subscription_id=SUBSCRIPTION,
        resource_group="rg-workbench",
        factory_name="adf-wb",
        tenant_id="tenant-1",
        client_id="client-1",
        client_secret=SECRET,
        management_url=url,
        ca_bundle=str(ca_bundle),
        **settings,
    )


@pytest.fixture
def credential() -> StaticToken:
    return StaticToken(TOKEN)


@pytest.fixture
def runner(arm, certificate, credential) -> DataFactoryRunner:
    return DataFactoryRunner(config_for(arm.url, certificate[0]), credential=credential)


def poll(runner: DataFactoryRunner, run_id: str, timeout: float = 600):
    now = [0.0]
    return wait_for(
        runner,
        run_id,
        timeout=timeout,
        poll_interval=15,
        clock=lambda: now[0],
        sleep=lambda seconds: now.__setitem__(0, now[0] + seconds),
    )


def test_create_run_sends_the_job_parameters_with_a_bearer_token_and_polls_to_success(
    arm, runner, credential
):
    arm.statuses = [("Queued", ""), ("InProgress", ""), ("Succeeded", "")]

    started = runner.submit(REQUEST)
    final = poll(runner, started.run_id)

    assert started.state == QUEUED
    assert (final.state, final.run_id) == (SUCCEEDED, started.run_id)
    assert final.url.startswith(f"https://adf.azure.com/en/monitoring/pipelineruns/{started.run_id}?factory=")
    [create] = arm.received(f"{FACTORY}/pipelines")
    assert (create.method, create.path) == ("POST", f"{FACTORY}/pipelines/large_batch/createRun")
    assert create.query["api-version"] == [API_VERSION]
    assert create.headers["authorization"] == f"Bearer {TOKEN}"
    assert create.body == {"job_id": "c-42", "user": "alice", "parent_job_id": "g-41", "seed": "7"}
    gets = arm.received(f"{FACTORY}/pipelineruns")
    assert [(g.method, g.path) for g in gets] == [("GET", f"{FACTORY}/pipelineruns/{started.run_id}")] * 3
    assert credential.scopes[0] == (f"{arm.url}/.default",)


def test_the_small_batch_runner_starts_the_small_pipeline_which_drains_the_queue_and_takes_no_job(
    arm, certificate, credential
):
    runner = DataFactoryRunner(config_for(arm.url, certificate[0]), batch=SMALL_BATCH, credential=credential)

    runner.submit(REQUEST)

    (create,) = arm.received(f"{FACTORY}/pipelines")
    assert create.path == f"{FACTORY}/pipelines/small_batch/createRun"
    assert not create.body  # adf/pipelines/small_batch.json declares no parameters to send


def test_a_failed_run_is_a_failed_job_carrying_data_factorys_message(arm, runner):
    error = "Operation on target clean_large_batch failed: NameError: name 'df' is not defined"
    arm.statuses = [("InProgress", ""), ("Failed", error)]

    final = poll(runner, runner.submit(REQUEST).run_id)

    assert (final.state, final.message) == (FAILED, error)


def test_cancel_is_recursive_and_the_run_passes_canceling_to_cancelled(arm, runner):
    arm.statuses = [("InProgress", "")]
    run_id = runner.submit(REQUEST).run_id
    assert runner.status(run_id).state == RUNNING

    runner.cancel(run_id)

    [cancel] = arm.received(f"{FACTORY}/pipelineruns/{run_id}/cancel")
    assert cancel.method == "POST"
    assert cancel.query["isRecursive"] == ["true"]
    assert runner.status(run_id).state == CANCELLED


def test_canceling_is_not_terminal_yet(arm, runner):
    arm.statuses = [("Canceling", "")]

    status = runner.status(runner.submit(REQUEST).run_id)

    assert (status.state, status.terminal, status.message) == (RUNNING, False, "cancelling")


def test_waiting_past_the_timeout_names_the_run_and_the_seconds(arm, runner):
    arm.statuses = [("InProgress", "")]
    run_id = runner.submit(REQUEST).run_id

    with pytest.raises(TimeoutError, match=rf"run {run_id} was still RUNNING after 45 s"):
        poll(runner, run_id, timeout=45)

    assert len(arm.received(f"{FACTORY}/pipelineruns/{run_id}")) == 4  # at 0, 15, 30 and 45 s


def test_a_server_slower_than_the_http_timeout_fails_with_a_clear_message(arm, certificate, credential):
    arm.delay_seconds = 5
    config = config_for(arm.url, certificate[0], http_timeout_seconds=0.3, retry_timeout_seconds=1.0)
    runner = DataFactoryRunner(config, credential=credential)

    started = time.monotonic()
    with pytest.raises(
        RunnerError, match=r"gave no answer within 0.3 s when asked to start pipeline large_batch"
    ):
        runner.submit(REQUEST)

    assert time.monotonic() - started < 15


@pytest.mark.parametrize(
    ("token", "forced", "expected"),
    [
        ("wrong-token", None, r"rejected the credentials \(401\).*AZURE_CLIENT_SECRET"),
        (
            TOKEN,
            403,
            r"refused to start pipeline large_batch for job c-42 \(403\); give the service principal",
        ),
    ],
)
def test_refused_credentials_give_a_clear_error_without_secrets(arm, certificate, token, forced, expected):
    arm.force_status = forced
    config = config_for(arm.url, certificate[0])
    runner = DataFactoryRunner(config, credential=StaticToken(token))

    with pytest.raises(RunnerError, match=expected) as caught:
        runner.submit(REQUEST)

    for secret in (token, SECRET):
        assert secret not in str(caught.value)
        assert secret not in repr(config)


def test_an_unknown_pipeline_or_run_reports_data_factorys_reason(arm, certificate, credential):
    runner = DataFactoryRunner(
        config_for(arm.url, certificate[0], large_pipeline="nightly"), credential=credential
    )

    with pytest.raises(
        RunnerError, match=r"could not start pipeline nightly for job c-42 \(404: Entity nightly not found\)"
    ):
        runner.submit(REQUEST)
    with pytest.raises(RunnerError, match=r"could not read run r-1 \(404: Pipeline run r-1 not found\)"):
        runner.status("r-1")


def test_the_certificate_is_checked_rather_than_ignored(arm, certificate, credential, tmp_path):
    other_ca, _ = make_certificate(tmp_path)
    runner = DataFactoryRunner(config_for(arm.url, other_ca), credential=credential)

    with pytest.raises(RunnerError, match=r"is unreachable .*CERTIFICATE_VERIFY_FAILED.*ADF_CA_BUNDLE"):
        runner.submit(REQUEST)

    assert arm.received(f"{FACTORY}/") == []


def test_a_server_that_is_down_fails_within_seconds_naming_the_endpoint(certificate, credential):
    url = f"https://127.0.0.1:{closed_port()}"
    runner = DataFactoryRunner(config_for(url, certificate[0]), credential=credential)

    started = time.monotonic()
    with pytest.raises(
        RunnerError, match=r"is unreachable .*Connection refused.*check AZURE_MANAGEMENT_URL"
    ) as caught:
        runner.submit(REQUEST)

    assert time.monotonic() - started < 15
    assert url in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_config_from_settings_names_what_is_missing_or_malformed():
    settings = {
        "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
        "AZURE_RESOURCE_GROUP": "rg",
        "ADF_FACTORY_NAME": "adf",
    }
    config = DataFactoryConfig.from_mapping({**settings, "AZURE_CLIENT_SECRET": SECRET})
    assert (config.large_pipeline, config.management_url) == ("large_batch", "https://management.azure.com")
    assert SECRET not in repr(config)

    with pytest.raises(InvalidInput, match="ADF_FACTORY_NAME: is not set"):
        DataFactoryConfig.from_mapping({k: v for k, v in settings.items() if k != "ADF_FACTORY_NAME"})
    with pytest.raises(InvalidInput, match="AZURE_MANAGEMENT_URL: must be an https:// URL"):
        DataFactoryConfig.from_mapping({**settings, "AZURE_MANAGEMENT_URL": "http://management.azure.com"})
    with pytest.raises(InvalidInput, match="AZURE_TENANT_ID: and AZURE_CLIENT_ID must be set"):
        DataFactoryRunner(config)
    with pytest.raises(InvalidInput, match="batch: must be 'small' or 'large'"):
        DataFactoryRunner(config, batch="medium", credential=StaticToken(TOKEN))


def test_the_connection_test_reads_the_pipeline_and_names_what_to_fix(arm, certificate, credential):
    check = DataFactoryRunner(config_for(arm.url, certificate[0]), credential=credential).test_connection()
    assert check.ok and check.message == "Data Factory adf-wb answers; pipeline large_batch is there"
    assert [r.method for r in arm.received(f"{FACTORY}/pipelines/large_batch")] == ["GET"]
    assert not [r for r in arm.requests if r.method == "POST"]  # a connection test starts no run

    renamed = config_for(arm.url, certificate[0], large_pipeline="nightly")
    missing = DataFactoryRunner(renamed, credential=credential).test_connection()
    assert (missing.ok, missing.field) == (False, "ADF_LARGE_PIPELINE")
    assert "has no pipeline nightly" in missing.message
    small = DataFactoryRunner(renamed, SMALL_BATCH, credential=credential).test_connection()
    assert small.ok and "pipeline small_batch is there" in small.message

    refused = DataFactoryRunner(
        config_for(arm.url, certificate[0]), credential=StaticToken("wrong")
    ).test_connection()
    assert not refused.ok and "rejected the credentials (401)" in refused.message
    assert SECRET not in refused.message
