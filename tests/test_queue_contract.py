"""The queue contract (Azure Storage Queue semantics), run against the local queue and the Azure adapter on
Azurite, plus each implementation's own configuration, connection test and crash behaviour."""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.storage.queue import QueueServiceClient

from orchestrator.clouds.azure import queues as azure_queue
from orchestrator.clouds.azure.queues import AzureQueueConfig
from orchestrator.config import AzureStorageSettings, Settings
from orchestrator.errors import InvalidInput
from orchestrator.queues import AzureQueue, LocalQueue, MessageNotFound, PopReceiptMismatch, Queue, open_queue
from orchestrator.queues.base import MAX_BODY_BYTES
from tests.azurite import KEY, Azurite, free_port

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


@pytest.fixture
def azure_config(azurite: Azurite) -> Iterator[AzureQueueConfig]:
    """Azurite's queue service without retries; every queue a test made is deleted afterwards."""
    yield AzureQueueConfig(queue_url=azurite.queue_url, account_key=KEY, retries=0)
    service = QueueServiceClient.from_connection_string(azurite.connection_string)
    for queue in service.list_queues():
        service.delete_queue(queue.name)


@pytest.fixture(params=["local", "azure"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    """Every implementation of the contract."""
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
    queue.send("short-lived", ttl=TIMEOUT)
    queue.send("kept", ttl=None)
    harness.advance(PAST_TIMEOUT)
    assert [m.body for m in queue.peek(32)] == ["kept"]
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
    queue.send({"job_id": "c-good"})

    handed_out = queue.receive(32)
    assert [m.json() for m in handed_out] == [{"job_id": "c-good"}]
    assert queue.poison is not None
    assert queue.poison.name == "clean-small-poison"
    [poisoned] = queue.poison.peek(32)
    assert (poisoned.json(), poisoned.dequeue_count, poisoned.expires_at) == ({"job_id": "c-bad"}, 0, None)
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
    queue.send("x" * MAX_BODY_BYTES)
    # The limit counts UTF-8 bytes: 32,769 characters of which 32,768 take two bytes are too many.
    for body in ("x" * (MAX_BODY_BYTES + 1), "é" * (MAX_BODY_BYTES // 2) + "x"):
        with pytest.raises(InvalidInput) as error:
            queue.send(body)
        assert error.value.field == "body"
        assert "64 KiB" in str(error.value)
    assert queue.approximate_count() == 1
    [msg] = queue.receive()
    assert msg.body == "x" * MAX_BODY_BYTES


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
