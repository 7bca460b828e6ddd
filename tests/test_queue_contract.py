"""The queue contract (Azure Storage Queue semantics), run against the local queue, the Azure adapter on
Azurite and the Simple Message Queue (MNS) adapter on tests/fake_mns.py, plus each implementation's own
configuration, connection test and crash behaviour. Where MNS cannot do what the protocol allows, its harness
says so and the contract checks that the adapter refuses it instead."""

from __future__ import annotations

import base64
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from azure.storage.queue import QueueServiceClient

from orchestrator.clouds.aliyun import mns as mns_queue
from orchestrator.clouds.aliyun.mns import MnsConfig, MnsQueue
from orchestrator.clouds.azure import queues as azure_queue
from orchestrator.clouds.azure.queues import AzureQueueConfig
from orchestrator.config import AzureStorageSettings, Settings
from orchestrator.errors import InvalidInput, ServiceError
from orchestrator.queues import AzureQueue, LocalQueue, MessageNotFound, PopReceiptMismatch, Queue, open_queue
from orchestrator.queues.base import DEFAULT_TTL_SECONDS, MAX_BODY_BYTES
from tests.azurite import KEY, Azurite, free_port
from tests.fake_http import closed_port
from tests.fake_mns import ATTRIBUTES, FakeMns
from tests.fake_mns import StoredQueue as FakeMnsQueue

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 1  # the visibility timeout of tests that wait for it to pass; Azure counts whole seconds
PAST_TIMEOUT = TIMEOUT + 1


class FakeClock:
    """A clock the test moves by hand, so visibility timeouts pass without sleeping."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Harness:
    """One implementation under test: how to open a queue and how to let time pass for it."""

    open: Callable[..., Queue]  # open(name, max_attempts=5)
    advance: Callable[[float], None]  # a fake clock jumps; Azure's clock runs, so the test sleeps
    # What MNS cannot do (docs/aliyun.md): a receipt expires with its visibility timeout, a lease handed
    # back (0) is visible after MNS's least timeout, every message lives the queue's retention period, and
    # a base64-encoded body holds 48 KiB.
    receipt_outlives_timeout: bool = True
    release_seconds: int = 0
    ttl_per_message: bool = True
    max_body: int = MAX_BODY_BYTES

    def wait_for_release(self) -> None:
        """After update_visibility(..., 0): until the message is visible again."""
        if self.release_seconds:
            self.advance(self.release_seconds)


MNS_DEFAULTS = {name: default for name, (default, _, _) in ATTRIBUTES.items()}  # as the console makes them
MNS_KEY_ID = "LTAI5tQueueContract"
MNS_SECRET = "mns-secret-4711"


@pytest.fixture
def azure_config(azurite: Azurite) -> Iterator[AzureQueueConfig]:
    """Azurite's queue service without retries; every queue a test made is deleted afterwards."""
    yield AzureQueueConfig(queue_url=azurite.queue_url, account_key=KEY, retries=0)
    service = QueueServiceClient.from_connection_string(azurite.connection_string)
    for queue in service.list_queues():
        service.delete_queue(queue.name)


@pytest.fixture
def mns_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake_mns(mns_clock: FakeClock) -> Iterator[FakeMns]:
    """A local MNS endpoint on the test's clock, knowing the test key pair."""
    with FakeMns(MNS_KEY_ID, MNS_SECRET, mns_clock) as server:
        yield server


def _mns_config(server: FakeMns, **options: object) -> MnsConfig:
    return MnsConfig(**{"endpoint": server.endpoint, "access_key_id": MNS_KEY_ID,
                        "access_key_secret": MNS_SECRET, "retries": 0, **options})  # fmt: skip


@pytest.fixture(params=["local", "azure", "mns"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    """Every implementation of the contract."""
    if request.param == "mns":
        server, clock = request.getfixturevalue("fake_mns"), request.getfixturevalue("mns_clock")

        def open_mns(name: str = "jobs", max_attempts: int | None = 5) -> Queue:
            return MnsQueue(name, _mns_config(server), max_attempts=max_attempts)

        return Harness(
            open=open_mns,
            advance=clock.advance,
            receipt_outlives_timeout=False,
            release_seconds=1,
            ttl_per_message=False,
            max_body=mns_queue.MAX_BODY_BYTES,
        )
    if request.param == "azure":
        config = request.getfixturevalue("azure_config")

        def open_azure(name: str = "jobs", max_attempts: int | None = 5) -> Queue:
            return AzureQueue(name, config, max_attempts=max_attempts)

        return Harness(open=open_azure, advance=time.sleep)
    clock = FakeClock()

    def open_local(name: str = "jobs", max_attempts: int | None = 5) -> Queue:
        return LocalQueue(name, tmp_path / "queues.sqlite", max_attempts=max_attempts, clock=clock)

    return Harness(open=open_local, advance=clock.advance)


# -- the contract ------------------------------------------------------------------------------------


def test_a_received_message_is_hidden_until_its_visibility_timeout_passes(harness: Harness) -> None:
    queue = harness.open()
    msg_id = queue.send({"job_id": "c-1"})
    [first] = queue.receive(visibility_timeout=TIMEOUT)
    assert (first.id, first.json(), first.dequeue_count) == (msg_id, {"job_id": "c-1"}, 1)
    assert first.pop_receipt
    assert queue.receive() == []
    assert queue.approximate_count() == 1  # hidden, not gone

    harness.advance(PAST_TIMEOUT)
    [again] = queue.receive(visibility_timeout=30)
    assert again.id == msg_id
    assert again.dequeue_count == 2
    assert again.pop_receipt != first.pop_receipt


def test_delete_needs_the_latest_pop_receipt(harness: Harness) -> None:
    queue = harness.open()
    queue.send("plain text")
    [first] = queue.receive(visibility_timeout=TIMEOUT)
    harness.advance(PAST_TIMEOUT)
    [second] = queue.receive(visibility_timeout=30)
    assert second.body == "plain text"

    with pytest.raises(PopReceiptMismatch):
        queue.delete(first.id, first.pop_receipt)
    assert queue.approximate_count() == 1

    queue.delete(second.id, second.pop_receipt)
    assert queue.approximate_count() == 0
    with pytest.raises(MessageNotFound):
        queue.delete(second.id, second.pop_receipt)


def test_a_receipt_stays_valid_after_the_timeout_until_someone_receives_the_message(harness: Harness) -> None:
    queue = harness.open()
    queue.send("slow work")
    [msg] = queue.receive(visibility_timeout=TIMEOUT)
    harness.advance(PAST_TIMEOUT)
    if not harness.receipt_outlives_timeout:  # MNS: a receipt handle expires at its NextVisibleTime
        with pytest.raises(MessageNotFound):
            queue.delete(msg.id, msg.pop_receipt)
        [again] = queue.receive()
        assert (again.id, again.dequeue_count) == (msg.id, 2)
        return
    queue.delete(msg.id, msg.pop_receipt)
    assert queue.receive() == []


def test_update_visibility_extends_the_lease_and_issues_a_new_receipt(harness: Harness) -> None:
    queue = harness.open()
    queue.send({"job_id": "c-long"})
    [msg] = queue.receive(visibility_timeout=TIMEOUT)
    extended = queue.update_visibility(msg.id, msg.pop_receipt, 120)
    assert extended.pop_receipt != msg.pop_receipt
    assert (extended.id, extended.json(), extended.dequeue_count) == (msg.id, {"job_id": "c-long"}, 1)
    harness.advance(PAST_TIMEOUT)
    assert queue.receive() == []  # the first timeout has passed; the extension holds it
    with pytest.raises(PopReceiptMismatch):
        queue.update_visibility(msg.id, msg.pop_receipt, 10)

    released = queue.update_visibility(msg.id, extended.pop_receipt, 0)
    harness.wait_for_release()
    [back] = queue.receive()
    assert back.id == released.id == msg.id
    assert back.dequeue_count == 2


def test_peek_shows_visible_messages_without_receiving_them(harness: Harness) -> None:
    queue = harness.open()
    queue.send("a")
    [peeked] = queue.peek()
    assert peeked.pop_receipt is None
    assert peeked.dequeue_count == 0
    [received] = queue.receive()
    assert received.dequeue_count == 1
    assert queue.peek() == []


def test_a_visibility_delay_holds_a_new_message_back(harness: Harness) -> None:
    queue = harness.open()
    queue.send("later", visibility_delay=TIMEOUT)
    assert queue.approximate_count() == 1
    assert queue.receive() == []
    assert queue.peek() == []
    harness.advance(PAST_TIMEOUT)
    assert [m.body for m in queue.receive()] == ["later"]


def test_an_expired_message_is_gone_and_one_without_ttl_stays(harness: Harness) -> None:
    queue = harness.open()
    if not harness.ttl_per_message:  # MNS: every message lives the queue's retention period, 7 days
        for ttl in (TIMEOUT, None):
            with pytest.raises(InvalidInput) as error:
                queue.send("refused", ttl=ttl)
            assert error.value.field == "ttl"
            assert "MessageRetentionPeriod" in str(error.value)
        queue.send("week-long")
        [peeked] = queue.peek()
        assert peeked.expires_at == peeked.inserted_at + timedelta(seconds=DEFAULT_TTL_SECONDS)
        harness.advance(DEFAULT_TTL_SECONDS)
        assert queue.peek(16) == [] and queue.approximate_count() == 0
        return
    queue.send("short-lived", ttl=TIMEOUT)
    queue.send("kept", ttl=None)
    harness.advance(PAST_TIMEOUT)
    assert [m.body for m in queue.peek(16)] == ["kept"]
    [kept] = queue.receive(32)
    assert kept.body == "kept"
    assert kept.expires_at is None


def test_bodies_read_back_exactly_as_sent(harness: Harness) -> None:
    queue = harness.open()
    texts = ["line one\r\nline two\n", "<tag attr=\"x\"> & 'quotes'", "Grüße, 東京 🚚", "   padded   "]
    record = {"job_id": "c-1", "note": "naïve <b>&</b>", "rows": [1, 2.5, None]}
    sent = {queue.send(text): text for text in texts}
    record_id = queue.send(record)
    received = {m.id: m for m in queue.receive(32)}
    assert {msg_id: received[msg_id].body for msg_id in sent} == sent
    assert received[record_id].json() == record


def test_a_message_that_failed_max_attempts_times_moves_to_the_poison_queue(harness: Harness) -> None:
    queue = harness.open("clean-small", max_attempts=2)
    queue.send({"job_id": "c-bad"})
    for attempt in (1, 2):
        [msg] = queue.receive(visibility_timeout=30)
        assert msg.dequeue_count == attempt
        queue.update_visibility(msg.id, msg.pop_receipt, 0)  # the attempt failed: hand the message back
        harness.wait_for_release()
    queue.send({"job_id": "c-good"})

    handed_out = queue.receive(32)
    assert [m.json() for m in handed_out] == [{"job_id": "c-good"}]
    assert queue.poison is not None
    assert queue.poison.name == "clean-small-poison"
    [poisoned] = queue.poison.peek(16)
    assert (poisoned.json(), poisoned.dequeue_count) == ({"job_id": "c-bad"}, 0)
    if harness.ttl_per_message:
        assert poisoned.expires_at is None
    else:  # MNS keeps a poison message as long as any other: the queue's retention period
        assert poisoned.expires_at == poisoned.inserted_at + timedelta(seconds=DEFAULT_TTL_SECONDS)
    assert queue.poison.poison is None
    queue.delete(handed_out[0].id, handed_out[0].pop_receipt)
    assert queue.approximate_count() == 0
    assert queue.poison.approximate_count() == 1


def test_receive_hands_out_at_most_32_messages_each_once(harness: Harness) -> None:
    queue = harness.open()
    sent = {queue.send({"n": n}) for n in range(40)}
    first = queue.receive(32, visibility_timeout=60)
    second = queue.receive(32, visibility_timeout=60)
    assert len(first) == 32
    assert len(second) == 8
    assert {m.id for m in first} | {m.id for m in second} == sent
    with pytest.raises(InvalidInput) as error:
        queue.receive(33)
    assert error.value.field == "max_messages"


def test_a_body_over_64_kib_is_refused_and_nothing_is_sent(harness: Harness) -> None:
    queue = harness.open()
    limit = harness.max_body  # 64 KiB; 48 KiB on MNS, whose 64 KiB hold the body base64-encoded
    queue.send("x" * limit)
    # The limit counts UTF-8 bytes: limit/2 + 1 characters of which limit/2 take two bytes are too many.
    for body in ("x" * (limit + 1), "é" * (limit // 2) + "x"):
        with pytest.raises(InvalidInput) as error:
            queue.send(body)
        assert error.value.field == "body"
        assert f"{limit // 1024} KiB" in str(error.value)
    assert queue.approximate_count() == 1
    [msg] = queue.receive()
    assert msg.body == "x" * limit


def test_out_of_range_arguments_name_the_field(harness: Harness) -> None:
    queue = harness.open()
    for call, field in (
        (lambda: queue.receive(visibility_timeout=0), "visibility_timeout"),
        (lambda: queue.send("x", visibility_delay=8 * 24 * 3600), "visibility_delay"),
        (lambda: queue.send("x", visibility_delay=60, ttl=30), "ttl"),
    ):
        with pytest.raises(InvalidInput) as error:
            call()
        assert error.value.field == field
    assert queue.approximate_count() == 0
    for name, max_attempts, field in (("Bad_Name", 5, "queue"), ("jobs", 0, "max_attempts")):
        with pytest.raises(InvalidInput) as error:
            harness.open(name, max_attempts=max_attempts)
        assert error.value.field == field


def test_queues_are_independent(harness: Harness) -> None:
    small, large = harness.open("clean-small"), harness.open("clean-large")
    small.send("s")
    assert large.receive() == []
    large.clear()
    assert small.approximate_count() == 1
    small.clear()
    assert small.approximate_count() == 0


# -- the local queue across processes -----------------------------------------------------------------


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def test_the_local_queue_survives_reopening(tmp_path: Path) -> None:
    clock = FakeClock()
    first = LocalQueue("jobs", tmp_path / "q.sqlite", clock=clock)
    first.send("kept")
    [held] = first.receive(visibility_timeout=60)
    first.close()

    reopened = LocalQueue("jobs", tmp_path / "q.sqlite", clock=clock)
    assert reopened.receive() == []  # still hidden after the reopen
    clock.advance(61)
    [again] = reopened.receive()
    assert (again.id, again.dequeue_count) == (held.id, 2)


def test_the_default_queue_lives_in_the_data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", str(tmp_path))
    LocalQueue.default("clean-small").send("from the UI")
    assert (tmp_path / "state" / "queues.sqlite").is_file()
    assert [m.body for m in LocalQueue.default("clean-small").receive()] == ["from the UI"]


def test_two_consumer_processes_never_get_the_same_message(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    queue = LocalQueue("jobs", path)
    sent = {queue.send({"n": n}) for n in range(300)}
    consumer = (
        "from orchestrator.queues import LocalQueue\n"
        f"q = LocalQueue('jobs', {str(path)!r})\n"
        "while batch := q.receive(4, visibility_timeout=600):\n"
        "    for m in batch:\n"
        "        print(m.id, flush=True)\n"
        "        q.delete(m.id, m.pop_receipt)\n"
    )
    procs = [
        subprocess.Popen(_python(consumer), env=_env(), stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=120)[0].split() for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    received = outputs[0] + outputs[1]
    assert len(received) == len(set(received)) == len(sent)
    assert set(received) == sent
    assert queue.approximate_count() == 0


def test_a_message_held_by_a_killed_worker_comes_back_after_its_timeout(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    queue = LocalQueue("jobs", path)
    msg_id = queue.send({"job_id": "c-1"})
    worker = (
        "import time\n"
        "from orchestrator.queues import LocalQueue\n"
        f"[m] = LocalQueue('jobs', {str(path)!r}).receive(visibility_timeout=5)\n"
        "print(m.id, flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen(_python(worker), env=_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == msg_id
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert queue.receive() == []  # still within the dead worker's visibility timeout

    later = LocalQueue("jobs", path, clock=lambda: time.time() + 6)
    [again] = later.receive()
    assert (again.id, again.dequeue_count, again.json()) == (msg_id, 2, {"job_id": "c-1"})
    later.delete(again.id, again.pop_receipt)
    assert later.approximate_count() == 0


def test_the_local_count_leaves_out_expired_messages(tmp_path: Path) -> None:
    """Azure's count may include expired messages until it removes them; the local count never does."""
    clock = FakeClock()
    queue = LocalQueue("jobs", tmp_path / "q.sqlite", clock=clock)
    queue.send("short-lived", ttl=60)
    queue.send("kept", ttl=None)
    clock.advance(61)
    assert queue.approximate_count() == 1


def test_open_queue_gives_the_local_queue_of_the_local_profile(settings: Settings) -> None:
    queue = open_queue("clean-small", settings)
    assert isinstance(queue, LocalQueue)
    queue.send("from the UI")
    assert [m.body for m in LocalQueue.default("clean-small").receive()] == ["from the UI"]
    assert "azure.storage.queue" not in _modules_after(
        "from orchestrator.queues import open_queue, LocalQueue"
    )


def _modules_after(code: str) -> str:
    """The modules a fresh interpreter has loaded after running ``code``."""
    script = f"import sys\n{code}\nprint(' '.join(sys.modules))"
    return subprocess.run(_python(script), env=_env(), capture_output=True, text=True, check=True).stdout


# -- the Azure adapter: configuration, connection test and a crashed worker ---------------------------


def _azure_env(azurite: Azurite, tmp_path: Path) -> dict[str, str]:
    """A process environment with the azure profile on Azurite and nothing else configured."""
    env = {k: v for k, v in _env().items() if not k.startswith("ORCHESTRATOR_")}
    return {
        **env,
        "ORCHESTRATOR_PROFILE": "azure",
        "ORCHESTRATOR_AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
        "ORCHESTRATOR_DATA_DIR": str(tmp_path / "data"),
        "ORCHESTRATOR_SECRETS_FILE": str(tmp_path / "no-secrets.toml"),
    }


def test_a_message_held_by_a_killed_azure_worker_is_processed_once_after_its_timeout(
    azurite: Azurite, azure_config: AzureQueueConfig, tmp_path: Path
) -> None:
    queue = AzureQueue("jobs", azure_config)
    msg_id = queue.send({"job_id": "c-1"})
    worker = (
        "import time\n"
        "from orchestrator.queues import open_queue\n"
        f"[m] = open_queue('jobs').receive(visibility_timeout={TIMEOUT})\n"
        "print(m.id, flush=True)\n"
        "time.sleep(600)\n"
    )
    env = _azure_env(azurite, tmp_path)
    proc = subprocess.Popen(_python(worker), env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == msg_id
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert queue.receive() == []  # still within the dead worker's visibility timeout

    time.sleep(PAST_TIMEOUT)
    processed = []
    for message in queue.receive(32):
        processed.append((message.id, message.dequeue_count, message.json()))
        queue.delete(message.id, message.pop_receipt)
    assert processed == [(msg_id, 2, {"job_id": "c-1"})]
    assert queue.approximate_count() == 0  # Azure counts hidden messages too: it is gone, not hidden


def test_open_queue_gives_the_azure_queue_of_the_azure_profile(
    azurite: Azurite, azure_config: AzureQueueConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in _azure_env(azurite, tmp_path).items():
        monkeypatch.setenv(name, value)
    queue = open_queue("clean-small")
    assert isinstance(queue, AzureQueue)
    queue.send("from the UI")
    assert [m.body for m in AzureQueue("clean-small", azure_config).receive()] == ["from the UI"]


@pytest.mark.parametrize(
    ("lake_url", "queue_url"),
    [
        ("https://acct.dfs.core.windows.net", "https://acct.queue.core.windows.net"),
        ("https://acct.blob.core.windows.net/", "https://acct.queue.core.windows.net/"),
    ],
)
def test_the_queue_endpoint_follows_from_the_lake_account(lake_url: str, queue_url: str) -> None:
    config = AzureQueueConfig.from_settings(
        AzureStorageSettings("lake", account_url=lake_url, account_key=KEY)
    )
    assert config == AzureQueueConfig(queue_url=queue_url, account_key=KEY)
    queue = AzureQueue("jobs", config)  # no request is sent until the queue is used
    assert repr(queue) == "AzureQueue(https://acct.queue.core.windows.net, name='jobs')"


def test_a_lake_url_that_is_not_azure_needs_a_queue_url() -> None:
    lake = AzureStorageSettings(
        "lake", account_url="http://127.0.0.1:10000/devstoreaccount1", account_key=KEY
    )
    with pytest.raises(InvalidInput) as caught:
        AzureQueueConfig.from_settings(lake)
    assert caught.value.field == "queue_url"
    assert "ORCHESTRATOR_AZURE_QUEUE_URL" in str(caught.value)
    explicit = AzureStorageSettings(
        "lake",
        account_url=lake.account_url,
        account_key=KEY,
        queue_url="http://127.0.0.1:10001/devstoreaccount1",
    )
    assert AzureQueueConfig.from_settings(explicit).queue_url == "http://127.0.0.1:10001/devstoreaccount1"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"queue_url": "ftp://a.example", "account_key": KEY}, "queue_url"),
        ({"queue_url": "https://a.queue.core.windows.net/?sv=x", "account_key": KEY}, "queue_url"),
        ({"queue_url": "https://a.queue.core.windows.net"}, "account_key"),
        ({"queue_url": "https://a.queue.core.windows.net", "connection_string": f"AccountKey={KEY}"},
         "connection_string"),
        ({"queue_url": "https://a.queue.core.windows.net", "account_key": KEY, "retries": -1}, "retries"),
        ({"queue_url": "https://a.queue.core.windows.net", "account_key": KEY, "read_timeout_s": 0},
         "read_timeout_s"),
    ],
)  # fmt: skip
def test_a_bad_configuration_names_the_setting_to_change(options: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        AzureQueueConfig(**options)
    assert caught.value.field == field
    assert KEY not in str(caught.value)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"queue_url": "http://10.1.2.3/", "account_key": KEY}, "queue_url"),
        ({"connection_string": f"AccountKey={KEY}"}, "connection_string"),
    ],
)
def test_settings_that_name_no_account_are_refused(options: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        AzureQueue("jobs", AzureQueueConfig(**options))
    assert caught.value.field == field
    assert KEY not in str(caught.value)


def test_secrets_stay_out_of_repr() -> None:
    by_key = AzureQueueConfig(queue_url="https://acct.queue.core.windows.net", account_key=KEY)
    by_string = AzureQueueConfig(connection_string=f"AccountName=acct;AccountKey={KEY}")
    for text in (repr(by_key), repr(by_string), repr(AzureQueue("jobs", by_key))):
        assert KEY not in text


def test_connection_test_creates_the_queue_and_reports_success(azure_config: AzureQueueConfig) -> None:
    check = AzureQueue("clean-small", azure_config).test_connection()
    assert check.ok
    assert "'clean-small'" in check.message
    assert "about 0 messages" in check.message


def test_connection_test_also_works_from_a_connection_string(
    azurite: Azurite, azure_config: AzureQueueConfig
) -> None:
    queue = AzureQueue("jobs", AzureQueueConfig(connection_string=azurite.connection_string))
    assert queue.test_connection().ok
    queue.send("x")
    assert AzureQueue("jobs", azure_config).approximate_count() == 1


@pytest.mark.parametrize("by", ["account_key", "connection_string"])
def test_connection_test_names_a_wrong_key(azurite: Azurite, azure_config: AzureQueueConfig, by: str) -> None:
    wrong = "V3Jvbmc=" * 11
    if by == "account_key":
        config = AzureQueueConfig(queue_url=azurite.queue_url, account_key=wrong)
    else:
        config = AzureQueueConfig(connection_string=azurite.connection_string.replace(KEY, wrong))
    check = AzureQueue("jobs", config).test_connection()
    assert (check.ok, check.field) == (False, by)
    assert "refused the credentials" in check.message
    assert wrong not in check.message


def test_connection_test_names_an_unreachable_endpoint_within_seconds() -> None:
    url = f"http://127.0.0.1:{free_port()}/devstoreaccount1"
    started = time.monotonic()
    check = AzureQueue("jobs", AzureQueueConfig(queue_url=url, account_key=KEY)).test_connection()
    assert time.monotonic() - started < 15
    assert (check.ok, check.field) == (False, "queue_url")
    assert f"cannot reach the queue service at {url}" in check.message
    assert KEY not in check.message


def test_connection_test_names_an_endpoint_that_is_not_a_storage_service() -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)  # answers 501
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/devstoreaccount1"
        check = AzureQueue("jobs", AzureQueueConfig(queue_url=url, account_key=KEY)).test_connection()
    finally:
        server.shutdown()
    assert (check.ok, check.field) == (False, "queue_url")
    assert "not as a storage service does" in check.message


def test_a_body_with_characters_xml_cannot_carry_is_refused(azure_config: AzureQueueConfig) -> None:
    queue = AzureQueue("jobs", azure_config)
    with pytest.raises(InvalidInput) as caught:
        queue.send("bell \x07")
    assert caught.value.field == "body"
    queue.send({"text": "bell \x07"})  # as JSON the character travels escaped
    assert queue.receive()[0].json() == {"text": "bell \x07"}


def test_a_lease_is_extended_through_the_object_that_received_it(
    azure_config: AzureQueueConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Azure's answer to an update lacks the body and counts, so only the receiving object can give them."""
    monkeypatch.setattr(azure_queue, "REMEMBERED_LEASES", 2)
    queue = AzureQueue("jobs", azure_config)
    for n in range(3):
        queue.send({"n": n})
    oldest, *newer = queue.receive(3, visibility_timeout=60)
    with pytest.raises(InvalidInput) as caught:
        AzureQueue("jobs", azure_config).update_visibility(newer[0].id, newer[0].pop_receipt, 0)
    assert caught.value.field == "message_id"
    with pytest.raises(InvalidInput):
        queue.update_visibility(oldest.id, oldest.pop_receipt, 0)  # forgotten: only two are remembered
    assert queue.receive() == []  # the refused updates left every lease as it was
    released = queue.update_visibility(newer[1].id, newer[1].pop_receipt, 0)
    assert (released.body, released.dequeue_count) == (newer[1].body, 1)
    queue.delete(oldest.id, oldest.pop_receipt)  # deleting needs no memory of the message
    assert queue.approximate_count() == 2


# -- the Simple Message Queue (MNS) adapter: its wire, limits, connection test and outages --------------


def test_mns_bodies_travel_base64_and_a_receive_sets_its_own_visibility(fake_mns: FakeMns) -> None:
    queue = MnsQueue("jobs", _mns_config(fake_mns))
    queue.send("line\r\n<b>&</b>")
    [stored] = fake_mns.queues["jobs"].messages.values()
    assert base64.b64decode(stored.body) == b"line\r\n<b>&</b>"
    assert len(fake_mns.seen("CreateQueue")) == 1
    assert fake_mns.queues["jobs"].attributes["MessageRetentionPeriod"] == DEFAULT_TTL_SECONDS
    assert fake_mns.queues["jobs"].attributes["VisibilityTimeout"] == 30
    [msg] = queue.receive(visibility_timeout=600)  # not the queue's 30 s: set per message
    [change] = fake_mns.seen("ChangeMessageVisibility")
    assert change.query["VisibilityTimeout"] == "600"
    assert msg.next_visible_at == msg.inserted_at + timedelta(seconds=600)
    queue.delete(msg.id, msg.pop_receipt)  # the handle from the change, with its '+' and '/' intact
    assert queue.receive(16) == [] and len(fake_mns.seen("ChangeMessageVisibility")) == 1
    assert [r.query["numOfMessages"] for r in fake_mns.seen("BatchReceiveMessage")] == ["1", "16"]
    assert all(r.query["waitseconds"] == "0" for r in fake_mns.seen("BatchReceiveMessage"))


def test_mns_refuses_what_the_service_cannot_do_and_sends_nothing(fake_mns: FakeMns) -> None:
    queue = MnsQueue("jobs", _mns_config(fake_mns))
    queue.send("x")
    sent = len(fake_mns.requests)
    for call, field in (
        (lambda: queue.receive(visibility_timeout=43_201), "visibility_timeout"),
        (lambda: queue.peek(17), "max_messages"),
        (lambda: queue.send("x", ttl=3600), "ttl"),
    ):
        with pytest.raises(InvalidInput) as error:
            call()
        assert error.value.field == field
    assert len(fake_mns.requests) == sent
    [msg] = queue.receive(visibility_timeout=60)
    with pytest.raises(InvalidInput):
        queue.update_visibility(msg.id, msg.pop_receipt, 43_201)
    released = queue.update_visibility(msg.id, msg.pop_receipt, 0)  # MNS's least: 1 s
    assert fake_mns.seen("ChangeMessageVisibility")[-1].query["VisibilityTimeout"] == "1"
    assert released.next_visible_at > msg.inserted_at


def test_mns_uses_an_existing_queue_with_its_own_attributes(fake_mns: FakeMns, mns_clock: FakeClock) -> None:
    """A queue made in the console keeps its settings; its retention is the only ttl a send may ask."""
    MnsQueue("jobs", _mns_config(fake_mns))  # nothing is sent until the queue is used
    fake_mns.queues["jobs"] = FakeMnsQueue("jobs", {**MNS_DEFAULTS, "VisibilityTimeout": 60}, 0)
    queue = MnsQueue("jobs", _mns_config(fake_mns))
    with pytest.raises(InvalidInput) as error:
        queue.send("x")
    assert error.value.field == "ttl" and "345600 s" in str(error.value)
    queue.send("x", ttl=345_600)
    [msg] = queue.receive(visibility_timeout=60)  # the queue's own timeout: no change needed
    assert fake_mns.seen("ChangeMessageVisibility") == []
    assert msg.expires_at == msg.inserted_at + timedelta(seconds=345_600)


def test_mns_clear_empties_visible_messages_and_says_when_some_are_held(fake_mns: FakeMns) -> None:
    queue = MnsQueue("jobs", _mns_config(fake_mns))
    for n in range(20):
        queue.send({"n": n})
    queue.clear()
    assert queue.approximate_count() == 0
    queue.send("held")
    queue.receive(visibility_timeout=600)
    with pytest.raises(ServiceError, match="still holds 1 messages that are received or delayed"):
        queue.clear()


def test_mns_connection_test_creates_the_queue_and_reports_success(fake_mns: FakeMns) -> None:
    check = MnsQueue("clean-small", _mns_config(fake_mns)).test_connection()
    assert check.ok
    assert "'clean-small'" in check.message and "about 0 messages" in check.message
    assert "clean-small" in fake_mns.queues


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"access_key_secret": "wrong-secret"}, "access_key_secret"),
        ({"access_key_id": "LTAI5tSomebodyElse"}, "access_key_id"),
    ],
)
def test_mns_refuses_a_wrong_key_as_the_service_does(
    fake_mns: FakeMns, options: dict[str, str], field: str
) -> None:
    queue = MnsQueue("jobs", _mns_config(fake_mns, **options))
    check = queue.test_connection()
    assert (check.ok, check.field) == (False, field)
    assert "wrong-secret" not in check.message and MNS_SECRET not in check.message
    with pytest.raises(ServiceError) as error:
        queue.send("x")
    assert error.value.field == field
    assert fake_mns.queues == {}  # every request was refused


def test_mns_connection_test_names_a_missing_queue_the_key_may_not_create(fake_mns: FakeMns) -> None:
    fake_mns.denied.add("CreateQueue")
    check = MnsQueue("jobs", _mns_config(fake_mns)).test_connection()
    assert (check.ok, check.field) == (False, "queue")
    assert "queue 'jobs' does not exist" in check.message and "mns:CreateQueue" in check.message
    fake_mns.queues["jobs"] = FakeMnsQueue("jobs", dict(MNS_DEFAULTS, MessageRetentionPeriod=604_800), 0)
    assert MnsQueue("jobs", _mns_config(fake_mns)).test_connection().ok  # made in the console: used as is


def test_mns_connection_test_names_an_endpoint_nobody_answers_or_that_is_not_mns() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    config = MnsConfig(endpoint=url, access_key_id=MNS_KEY_ID, access_key_secret=MNS_SECRET, retries=0)
    check = MnsQueue("jobs", config).test_connection()
    assert (check.ok, check.field) == (False, "endpoint")
    assert f"cannot reach Simple Message Queue at {url}" in check.message
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)  # answers 501
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        config = MnsConfig(endpoint=url, access_key_id=MNS_KEY_ID, access_key_secret=MNS_SECRET, retries=0)
        check = MnsQueue("jobs", config).test_connection()
    finally:
        server.shutdown()
    assert (check.ok, check.field) == (False, "endpoint")
    assert "not as Simple Message Queue does" in check.message


def test_mns_service_stopped_mid_call_is_a_clear_error_and_the_queue_works_once_it_is_back(
    fake_mns: FakeMns,
) -> None:
    queue = MnsQueue("jobs", _mns_config(fake_mns))
    queue.send("before")
    fake_mns.hold = threading.Event()  # the next answer waits: the service is stopped while it does

    def stop_when_asked() -> None:
        while not fake_mns.seen("BatchReceiveMessage"):
            time.sleep(0.01)
        fake_mns.stop()

    stopper = threading.Thread(target=stop_when_asked)
    stopper.start()
    with pytest.raises(ServiceError) as error:
        queue.receive()
    stopper.join()
    assert error.value.field == "endpoint"
    assert f"cannot reach Simple Message Queue at {fake_mns.endpoint} to receive from jobs" in str(
        error.value
    )
    fake_mns.hold.set()
    fake_mns.hold = None
    fake_mns.start()  # the same port: the service is back
    fake_mns.clock.advance(31)  # the lost receive's lease (the queue's 30 s) passes
    [again] = queue.receive()
    assert (again.body, again.dequeue_count) == ("before", 2)  # at least once: handed out again


def test_mns_service_that_hangs_is_an_error_after_the_timeout(fake_mns: FakeMns) -> None:
    queue = MnsQueue("jobs", _mns_config(fake_mns, timeout_s=0.5))
    queue.test_connection()
    fake_mns.hold = threading.Event()
    with pytest.raises(ServiceError) as error:
        queue.approximate_count()
    assert error.value.field == "endpoint"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"endpoint": "ftp://1234.mns.cn-hangzhou.aliyuncs.com"}, "endpoint"),
        ({"endpoint": "https://1234.mns.cn-hangzhou.aliyuncs.com/queues"}, "endpoint"),
        ({"access_key_id": ""}, "access_key_id"),
        ({"access_key_secret": ""}, "access_key_secret"),
        ({"retries": -1}, "retries"),
        ({"timeout_s": 0}, "timeout_s"),
    ],
)
def test_a_bad_mns_configuration_names_the_setting_to_change(options: dict[str, object], field: str) -> None:
    given = {"endpoint": "https://1234.mns.cn-hangzhou.aliyuncs.com", "access_key_id": MNS_KEY_ID,
             "access_key_secret": MNS_SECRET, **options}  # fmt: skip
    with pytest.raises(InvalidInput) as caught:
        MnsConfig(**given)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert MNS_SECRET not in str(caught.value)


def test_mns_secrets_stay_out_of_repr() -> None:
    config = MnsConfig("https://1234.mns.cn-hangzhou.aliyuncs.com", MNS_KEY_ID, MNS_SECRET)
    for text in (repr(config), repr(MnsQueue("jobs", config))):
        assert MNS_SECRET not in text
    assert (
        repr(MnsQueue("jobs", config)) == "MnsQueue(https://1234.mns.cn-hangzhou.aliyuncs.com, name='jobs')"
    )


def test_a_message_held_by_a_killed_mns_worker_is_processed_once_after_its_timeout(
    fake_mns: FakeMns, mns_clock: FakeClock, tmp_path: Path
) -> None:
    queue = MnsQueue("jobs", _mns_config(fake_mns))
    msg_id = queue.send({"job_id": "c-1"})
    env = {k: v for k, v in _env().items() if not k.startswith("ORCHESTRATOR_")}
    env |= {
        "ORCHESTRATOR_PROFILE": "aliyun",
        "ORCHESTRATOR_ALIYUN_OSS_BUCKET": "lake",
        "ORCHESTRATOR_ALIYUN_OSS_ENDPOINT": "https://oss-cn-hangzhou.aliyuncs.com",
        "ORCHESTRATOR_ALIYUN_ACCESS_KEY_ID": MNS_KEY_ID,
        "ORCHESTRATOR_ALIYUN_ACCESS_KEY_SECRET": MNS_SECRET,
        "ORCHESTRATOR_ALIYUN_MNS_ENDPOINT": fake_mns.endpoint,
        "ORCHESTRATOR_DATA_DIR": str(tmp_path / "data"),
        "ORCHESTRATOR_SECRETS_FILE": str(tmp_path / "no-secrets.toml"),
    }
    worker = (
        "import time\n"
        "from orchestrator.queues import open_queue\n"
        f"[m] = open_queue('jobs').receive(visibility_timeout={TIMEOUT})\n"
        "print(m.id, flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen(_python(worker), env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == msg_id
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert queue.receive() == []  # still within the dead worker's visibility timeout

    mns_clock.advance(PAST_TIMEOUT)
    processed = []
    for message in queue.receive(32):
        processed.append((message.id, message.dequeue_count, message.json()))
        queue.delete(message.id, message.pop_receipt)
    assert processed == [(msg_id, 2, {"job_id": "c-1"})]
    assert queue.approximate_count() == 0


def test_mns_over_https_gives_up_on_a_service_that_never_answers() -> None:
    """The SDK sets no timeout on HTTPS connections; the adapter's ends a handshake that never comes."""
    listener = socket.create_server(("127.0.0.1", 0))  # accepts, then says nothing
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(listener.accept()[0]), daemon=True).start()
    url = f"https://127.0.0.1:{listener.getsockname()[1]}"
    try:
        config = MnsConfig(url, MNS_KEY_ID, MNS_SECRET, timeout_s=0.5, retries=0)
        check = MnsQueue("jobs", config).test_connection()
    finally:
        for connection in held:
            connection.close()
        listener.close()
    assert (check.ok, check.field) == (False, "endpoint")
    assert f"cannot reach Simple Message Queue at {url}" in check.message
