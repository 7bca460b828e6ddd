"""A succeeded cleaning profiles its silver, and the raw it came from, in a process of its own: the Data
quality page opens with before and after, says while the profile runs, and the owner is told once it is
stored. The setting turns it off; a failed or lost profile is told and leaves the cleaning as it was."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import quality, service
from orchestrator.auth import open_user_store
from orchestrator.auth.settings import COOKIE_KEY_ENV
from orchestrator.config import get_settings
from orchestrator.errors import WorkbenchError
from orchestrator.generation.spec import GenerationSpec
from orchestrator.jobs.store import Event, Job, JobStore
from orchestrator.storage import open_lake, paths
from tests.gen_helpers import stored_job
from tests.test_app_pages import PASSWORD, signed_in, texts

SETTING = "ORCHESTRATOR_PROFILE_AFTER_CLEANING"
WAIT_SECONDS = 180  # for a background profile of a small job, on a busy machine


def _cleaned(rows: int = 60) -> Job:
    """A small generated job of alice's, cleaned on pandas in this process."""
    parent = service.generate_job(GenerationSpec(rows=rows, seed=3), "alice").job_id
    return service.execute_job(service.launch_clean("alice", parent, engine="pandas").job.job_id)


def _profiled(job_id: str) -> service.BackgroundProfile:
    """How the cleaning's background profile went, once it is no longer running (waited for, bounded)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while (profile := service.background_profile(stored_job(job_id))).state == "running":
        assert time.monotonic() < deadline, f"the background profile of {job_id} did not end: {profile}"
        time.sleep(0.2)
    return profile


def _events(user: str) -> list[Event]:
    store = JobStore.default()
    try:
        return store.list_unseen(user)
    finally:
        store.close()


def _users(root: Path, patch: pytest.MonkeyPatch) -> None:
    """alice, an administrator, in the data root ``root`` the pages then read."""
    patch.setenv("ORCHESTRATOR_DATA_DIR", str(root))
    patch.setenv("ORCHESTRATOR_SECRETS_FILE", str(root / "no-secrets.toml"))
    patch.delenv(COOKIE_KEY_ENV, raising=False)
    open_user_store().create_first_admin("alice", PASSWORD, PASSWORD)


@pytest.fixture(scope="module")
def profiled_in_background(tmp_path_factory) -> Iterator[tuple[Job, service.BackgroundProfile]]:
    """A cleaning with the setting on, as it returned, and how its background profile ended."""
    with pytest.MonkeyPatch.context() as patch:
        _users(tmp_path_factory.mktemp("profiled"), patch)
        with pytest.MonkeyPatch.context() as setting:  # for this cleaning alone
            setting.setenv(SETTING, "true")
            job = _cleaned()
        yield job, _profiled(job.job_id)


@pytest.fixture
def pages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A data root of its own with alice in it; the setting stays off."""
    _users(tmp_path / "data", monkeypatch)


def test_a_cleaning_profiles_silver_and_its_raw_in_the_background_and_tells_its_owner(profiled_in_background):
    job, profile = profiled_in_background
    assert job.state == "succeeded" and service.PROFILE not in job.params  # returned before any profile
    assert (profile.state, profile.error) == ("succeeded", None), profile
    silver = quality.latest_run("alice", job.job_id, "silver")
    raw = quality.latest_run("alice", job.parent_id, "raw")
    assert silver is not None and silver.score is not None  # scored against the truth, as the page does
    assert raw is not None and raw.score is not None
    stored = stored_job(job.job_id)
    assert (stored.state, stored.finished_at, stored.rows_out) == (job.state, job.finished_at, job.rows_out)
    # the cleaning is told first, as it ended; the profile once both runs are stored
    told = [(event.kind, event.message) for event in _events("alice") if event.job_id == job.job_id]
    assert told == [
        (
            "Cleaning complete",
            f"{job.job_id}: {job.rows_out:,} rows out, {job.rows_quarantined:,} quarantined",
        ),
        (
            "Quality profile ready",
            f"{job.job_id}: silver and the raw of {job.parent_id} profiled; before and after are on the Data "
            "quality page",
        ),
    ]


def test_the_data_quality_page_opens_with_before_and_after_and_the_toast_tells_of_the_profile(
    profiled_in_background,
):
    job, _profile = profiled_in_background
    at = signed_in("alice")  # the frame tells what ended since the last look, whichever page is open
    assert [t.value for t in at.toast if "Quality profile" in t.value] == [
        f"Quality profile ready: {job.job_id}: silver and the raw of {job.parent_id} profiled; before and "
        "after are on the Data quality page"
    ]
    at.switch_page("pages/quality.py")
    at.query_params.update(job=job.job_id)
    at.run()
    assert not at.exception, at.exception
    buttons = [b.label for b in at.button if b.label.startswith("Profile ")]
    assert buttons == ["Profile again"]  # no click needed, and one to profile silver again
    labels = [metric.label for metric in at.metric]
    assert f"Before: raw of {job.parent_id}, errors failing" in labels
    assert f"After: silver of {job.job_id}, errors failing" in labels


def test_with_the_setting_off_a_cleaning_profiles_nothing(pages):
    job = _cleaned()
    assert service.background_profile(stored_job(job.job_id)) is None  # nothing was started, nor will be
    assert quality.latest_run("alice", job.job_id, "silver") is None
    assert quality.latest_run("alice", job.parent_id, "raw") is None
    assert not [event for event in _events("alice") if event.kind.startswith("Quality profile")]
    at = signed_in("alice", "pages/quality.py", job=job.job_id)
    assert f"The silver layer of {job.job_id} has not been profiled yet." in texts(at.info)
    assert [b.label for b in at.button if b.label.startswith("Profile ")] == ["Profile silver"]


def test_a_failed_background_profile_is_told_and_leaves_the_cleaning_as_it_was(pages):
    job = _cleaned()
    open_lake(get_settings()).delete_prefix(paths.silver_dir("alice", job.parent_id, job.job_id))
    with pytest.raises(WorkbenchError, match=job.job_id):
        service.profile_cleaning(job.job_id)  # as `worker --profile` runs it
    stored = stored_job(job.job_id)
    assert (stored.state, stored.error, stored.finished_at) == ("succeeded", None, job.finished_at)
    profile = service.background_profile(stored)
    assert (profile.state, profile.layer) == ("failed", "silver") and job.job_id in profile.error
    assert [(e.kind, e.message) for e in _events("alice") if e.kind.startswith("Quality profile")] == [
        ("Quality profile failed", f"{job.job_id}: {profile.error}")
    ]
    at = signed_in("alice", "pages/quality.py", job=job.job_id)
    assert texts(at.warning) == [
        f"Profiling silver in the background after the cleaning failed: {profile.error}"
    ]
    assert f"The silver layer of {job.job_id} has not been profiled yet." in texts(at.info)


def test_the_pages_say_which_layer_a_background_profile_works_on_until_its_process_is_lost(pages):
    job = _cleaned()
    since = time.time() - 30
    store = JobStore.default()
    try:  # as the profiling process keeps it while it profiles silver
        record = {"state": "running", "layer": "silver", "since": since, "heard": time.time()}
        store.record_params(job.job_id, **{service.PROFILE: record})
    finally:
        store.close()
    under_way = service.background_profile(stored_job(job.job_id)).under_way("silver")
    assert under_way.startswith("Profiling silver in the background since the cleaning finished (")
    at = signed_in("alice", "pages/quality.py", job=job.job_id)
    assert texts(at.info) == [under_way]
    assert not [b for b in at.button if b.label.startswith("Profile")]
    jobs = signed_in("alice", "pages/jobs.py", job=job.job_id)
    assert under_way in texts(jobs.caption)

    quality.profile_job("alice", job.job_id, "silver")  # silver is stored; the raw is profiled now
    store = JobStore.default()
    try:
        store.record_params(job.job_id, **{service.PROFILE: {**record, "layer": "raw", "heard": time.time()}})
    finally:
        store.close()
    at = signed_in("alice", "pages/quality.py", job=job.job_id)
    raw = f"the raw layer of {job.parent_id}"
    said = [
        t for t in texts(at.info) if t.startswith(f"Profiling {raw} in the background since the cleaning")
    ]
    assert said, texts(at.info)
    assert not [b for b in at.button if b.label == "Profile raw"]
    generation = signed_in(
        "alice", "pages/quality.py", job=job.parent_id
    )  # its raw, seen from the generation
    assert [t for t in texts(generation.info) if t.startswith("Profiling raw in the background since")]
    assert f"The raw layer of {job.parent_id} has not been profiled yet." not in texts(generation.info)
    assert not [b for b in generation.button if b.label == "Profile raw"]

    silent = time.time() - service.PROFILE_SILENT_SECONDS - 1  # its process was killed: no word since
    store = JobStore.default()
    try:
        store.record_params(job.job_id, **{service.PROFILE: {**record, "layer": "raw", "heard": silent}})
    finally:
        store.close()
    assert service.background_profile(stored_job(job.job_id)).state == service.PROFILE_LOST
    at = signed_in("alice", "pages/quality.py", job=job.job_id)
    assert texts(at.warning) == [
        f"Profiling {raw} in the background after the cleaning stopped (its process was lost)."
    ]
    assert [b.label for b in at.button if b.label == "Profile raw"] == ["Profile raw"]
