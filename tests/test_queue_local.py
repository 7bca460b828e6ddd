"""The queue contract (Azure Storage Queue semantics), run against every Queue implementation, plus the
local queue's durability across processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.errors import InvalidInput
from orchestrator.queues import LocalQueue, MessageNotFound, PopReceiptMismatch, Queue
from orchestrator.queues.base import MAX_BODY_BYTES

REPO = Path(__file__).resolve().parents[1]


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
    advance: Callable[[float], None]  # a fake clock jumps; a cloud queue would sleep


@pytest.fixture(params=["local"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    """Every implementation of the contract; the Azure adapter joins this list against Azurite."""
    clock = FakeClock()

    def open_local(name: str = "jobs", max_attempts: int | None = 5) -> Queue:
        return LocalQueue(name, tmp_path / "queues.sqlite", max_attempts=max_attempts, clock=clock)

    return Harness(open=open_local, advance=clock.advance)


# -- the contract ------------------------------------------------------------------------------------


def test_a_received_message_is_hidden_until_its_visibility_timeout_passes(harness: Harness) -> None:
    queue = harness.open()
    msg_id = queue.send({"job_id": "c-1"})
    [first] = queue.receive(visibility_timeout=30)
    assert (first.id, first.json(), first.dequeue_count) == (msg_id, {"job_id": "c-1"}, 1)
    assert first.pop_receipt
    assert queue.receive() == []
    assert queue.approximate_count() == 1  # hidden, not gone

    harness.advance(31)
    [again] = queue.receive(visibility_timeout=30)
    assert again.id == msg_id
    assert again.dequeue_count == 2
    assert again.pop_receipt != first.pop_receipt


def test_delete_needs_the_latest_pop_receipt(harness: Harness) -> None:
    queue = harness.open()
    queue.send("plain text")
    [first] = queue.receive(visibility_timeout=5)
    harness.advance(6)
    [second] = queue.receive(visibility_timeout=5)
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
    [msg] = queue.receive(visibility_timeout=5)
    harness.advance(60)
    queue.delete(msg.id, msg.pop_receipt)
    assert queue.receive() == []


def test_update_visibility_extends_the_lease_and_issues_a_new_receipt(harness: Harness) -> None:
    queue = harness.open()
    queue.send("long job")
    [msg] = queue.receive(visibility_timeout=10)
    extended = queue.update_visibility(msg.id, msg.pop_receipt, 120)
    assert extended.pop_receipt != msg.pop_receipt
    harness.advance(60)
    assert queue.receive() == []
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
    queue.send("later", visibility_delay=120)
    assert queue.approximate_count() == 1
    assert queue.receive() == []
    harness.advance(121)
    assert [m.body for m in queue.receive()] == ["later"]


def test_an_expired_message_is_gone_and_one_without_ttl_stays(harness: Harness) -> None:
    queue = harness.open()
    queue.send("short-lived", ttl=60)
    queue.send("kept", ttl=None)
    harness.advance(30 * 24 * 3600)
    assert queue.approximate_count() == 1
    assert [m.body for m in queue.peek(32)] == ["kept"]
    [kept] = queue.receive(32)
    assert kept.body == "kept"
    assert kept.expires_at is None


def test_a_message_that_failed_max_attempts_times_moves_to_the_poison_queue(harness: Harness) -> None:
    queue = harness.open("clean-small", max_attempts=2)
    queue.send({"job_id": "c-bad"})
    for attempt in (1, 2):
        [msg] = queue.receive(visibility_timeout=5)
        assert msg.dequeue_count == attempt
        harness.advance(6)
    queue.send({"job_id": "c-good"})

    handed_out = queue.receive(32)
    assert [m.json() for m in handed_out] == [{"job_id": "c-good"}]
    assert queue.poison is not None
    assert queue.poison.name == "clean-small-poison"
    assert [m.json() for m in queue.poison.peek(32)] == [{"job_id": "c-bad"}]
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
    queue.send("é" * (MAX_BODY_BYTES // 2))  # 64 KiB exactly, in two-byte characters
    with pytest.raises(InvalidInput) as error:
        queue.send("x" * (MAX_BODY_BYTES + 1))
    assert error.value.field == "body"
    assert "64 KiB" in str(error.value)
    assert queue.approximate_count() == 1


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
    with pytest.raises(InvalidInput) as error:
        harness.open("Bad_Name")
    assert error.value.field == "queue"


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
