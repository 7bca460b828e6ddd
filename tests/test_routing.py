"""The routing rule and the cleaning launch: which queue a batch lands on, recorded on its job."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import InvalidInput
from orchestrator.jobs import JobStore
from orchestrator.jobs.routing import QUEUE_NAMES, THRESHOLD_FIELD, launch_cleaning, route
from orchestrator.jobs.store import FAILED
from orchestrator.queues import LocalQueue


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    return JobStore.sqlite(tmp_path / "jobs.sqlite")


@pytest.fixture
def queues(tmp_path: Path) -> dict[str, LocalQueue]:
    return {r: LocalQueue(name, tmp_path / "queues.sqlite") for r, name in QUEUE_NAMES.items()}


def test_up_to_the_threshold_is_small_and_beyond_is_large() -> None:
    assert [route(n) for n in (0, 1, 10_000, 10_001, 5_000_000)] == ["small"] * 3 + ["large"] * 2
    assert [route(n, threshold=500) for n in (500, 501)] == ["small", "large"]


def test_a_bad_threshold_or_row_count_names_what_to_change() -> None:
    with pytest.raises(InvalidInput) as error:
        route(10, threshold=0)
    assert error.value.field == THRESHOLD_FIELD == "ORCHESTRATOR_SMALL_BATCH_MAX_ROWS"
    with pytest.raises(InvalidInput) as error:
        route(-1)
    assert error.value.field == "total_rows"


@pytest.mark.parametrize(
    ("rows", "chosen", "other"), [(10_000, "small", "large"), (10_001, "large", "small")]
)
def test_a_launch_queues_the_job_on_its_route_and_records_the_route(
    store: JobStore, queues: dict[str, LocalQueue], rows: int, chosen: str, other: str
) -> None:
    launch = launch_cleaning(store, queues, user="alice", parent_id="g-parent", total_rows=rows)
    assert launch.created
    job = store.get(launch.job.job_id)
    assert (job.route, job.rows_in, job.kind, job.parent_id) == (chosen, rows, "clean", "g-parent")
    [message] = queues[chosen].receive()
    assert message.json() == {"job_id": job.job_id}
    assert queues[other].approximate_count() == 0


def test_a_configured_threshold_moves_the_boundary(store: JobStore, queues: dict[str, LocalQueue]) -> None:
    launch = launch_cleaning(store, queues, user="alice", parent_id="g-parent", total_rows=800, threshold=500)
    assert launch.job.route == "large"
    assert queues["large"].approximate_count() == 1


def test_a_double_click_launches_one_run(store: JobStore, queues: dict[str, LocalQueue]) -> None:
    first = launch_cleaning(store, queues, user="alice", parent_id="g-parent", total_rows=50)
    second = launch_cleaning(store, queues, user="alice", parent_id="g-parent", total_rows=50)
    assert not second.created
    assert second.job.job_id == first.job.job_id
    assert queues["small"].approximate_count() == 1
    assert len(store.list_jobs("alice")) == 1


def test_a_queue_that_refuses_the_message_leaves_a_failed_job_not_a_waiting_one(
    store: JobStore, queues: dict[str, LocalQueue]
) -> None:
    queues["small"].close()
    with pytest.raises(Exception, match="closed"):
        launch_cleaning(store, queues, user="alice", parent_id="g-parent", total_rows=50)
    [job] = store.list_jobs("alice")
    assert job.state == FAILED
    assert "could not be queued on small" in job.error
    retried = launch_cleaning(store, queues, user="alice", parent_id="g-parent", total_rows=20_000)
    assert retried.created
    assert retried.job.job_id != job.job_id
