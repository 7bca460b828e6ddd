"""The workbench pages through AppTest: log in, set widgets, click, and read what the user would see.

One data root serves the module (value pools are built once); each test makes the jobs it changes.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from azure.storage.blob import BlobServiceClient
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from orchestrator import quality, service, ui_support, worker
from orchestrator.auth import open_user_store
from orchestrator.auth.settings import COOKIE_KEY_ENV
from orchestrator.cleaning.pipeline import cleaning_bytes, read_manifest
from orchestrator.config import get_settings
from orchestrator.domain.sizes import size_text
from orchestrator.generation.spec import GenerationSpec
from orchestrator.jobs.store import ACTIVE_STATES, JobCancelled, JobStore, new_job_id
from orchestrator.storage import LocalLake, open_lake, paths
from tests.gen_helpers import live_schedulers, start_scheduler, stored_job, stored_jobs

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery"
PAGES = [
    "pages/generate.py",
    "pages/contracts.py",
    "pages/pipelines.py",
    "pages/jobs.py",
    "pages/quality.py",
    "pages/settings.py",
    "pages/account.py",
]


@pytest.fixture(scope="module", autouse=True)
def data_dir(tmp_path_factory) -> Iterator[Path]:
    """alice (administrator) and bob, and a generated job of each."""
    root = tmp_path_factory.mktemp("pages")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ORCHESTRATOR_DATA_DIR", str(root))
        patch.setenv("ORCHESTRATOR_SECRETS_FILE", str(root / "no-secrets.toml"))
        patch.delenv(COOKIE_KEY_ENV, raising=False)
        users = open_user_store()
        users.create_first_admin("alice", PASSWORD, PASSWORD)
        users.add_user("bob", PASSWORD, PASSWORD)
        yield root


@pytest.fixture(scope="module")
def bobs_job() -> str:
    return service.generate_job(GenerationSpec(rows=100, seed=0), "bob").job_id


@pytest.fixture
def started(monkeypatch) -> list[str]:
    """Background cleaning is recorded instead of started, so a test decides when a job runs."""
    calls: list[str] = []
    monkeypatch.setattr(service, "start_in_background", calls.append)
    return calls


def generated(user: str = "alice", rows: int = 120) -> str:
    return service.generate_job(GenerationSpec(rows=rows, seed=0), user).job_id


def signed_in(user: str, page: str | None = None, **query: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    fields = {widget.label: widget for widget in at.text_input}
    fields["User name"].input(user)
    fields["Password"].input(PASSWORD)
    at.button[0].click().run()
    assert [t.value for t in at.sidebar.text] == [
        f"Signed in as {user}\nRole: {'admin' if user == 'alice' else 'user'}"
    ]
    if page:
        at.switch_page(page)
        at.query_params.update(query)
        at.run()
    assert not at.exception, at.exception
    return at


def job_count(user: str) -> int:
    return len(stored_jobs(user))


def generation_ended(at: AppTest) -> AppTest:
    """Wait for the generation the page started in a process of its own to end; then the page as it shows
    the end (a fragment reruns the page once it sees it)."""
    job_id = at.session_state["generation_of_alice"]
    deadline = time.monotonic() + 120
    while stored_job(job_id).state in ACTIVE_STATES:
        assert time.monotonic() < deadline, stored_job(job_id)
        time.sleep(0.2)
    return at.run()


def generate_button(at: AppTest):
    return next(button for button in at.main.button if button.label == "Generate")


def progress_bars(at: AppTest) -> list[tuple[int, str]]:
    """Each progress bar on the page as (percent, text)."""
    return [(bar.proto.value, bar.proto.text) for bar in at.get("progress")]


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def frame_with(at: AppTest, column: str):
    """The first table on the page that has ``column``."""
    return next(f.value for f in at.dataframe if column in f.value.columns)


@pytest.mark.parametrize("page", PAGES)
def test_no_page_renders_without_login(page):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    at.switch_page(page)
    at.run()
    assert not at.exception
    assert [s.value for s in at.subheader] == ["Log in"]
    assert not at.dataframe and not at.sidebar.children


def test_home_links_every_page_and_lists_the_latest_jobs_the_user_may_see(bobs_job):
    made = [generated(rows=20) for _ in range(6)]
    alice = signed_in("alice")  # the home page is where a login lands
    assert texts(alice.title) == ["Data workbench"]
    links = ["Generate", "Contracts", "Pipelines", "Jobs", "Data quality", "Settings", "Account"]
    assert [link.label for link in alice.page_link] == [*links, "Users"]
    assert texts(alice.subheader) == ["Latest jobs, everyone's"]
    assert alice.dataframe[0].value["job"].tolist() == made[:0:-1]  # the five newest, newest first

    bob = signed_in("bob")
    assert [link.label for link in bob.page_link] == links
    assert bob.dataframe[0].value[["job", "user"]].values.tolist() == [[bobs_job, "bob"]]


def test_generate_previews_routes_and_generates_with_progress():
    at = signed_in("alice", "pages/generate.py")
    assert texts(at.title) == ["Generate data"]
    preview = at.dataframe[0]
    assert list(preview.value.columns)[:2] == ["customer_id", "first_name"]
    assert (
        "background-color: #ffd7d5" in preview.proto.arrow_data.styler.styles
    )  # injected errors are coloured
    errors = at.dataframe[1].value
    assert set(errors["kind"]) >= {"missing", "whitespace"}
    heading = f"**Answer key of this preview: the {len(errors):,} errors injected into customers**"
    assert heading in texts(at.markdown)  # the second table says what it is
    # each error names its row by line and by key, and the preview row on that line holds that key
    keys = preview.value["customer_id"].astype(str)
    assert [keys.iloc[line] for line in errors["line"]] == list(errors["key"].astype(str))
    assert any("the **small** route" in m for m in texts(at.markdown))
    assert "Cleaning will run on **pandas**." in texts(at.markdown)
    duplicated = []
    for table in at.selectbox(key="preview_table").options:  # every table's preview renders
        at.selectbox(key="preview_table").set_value(table).run()
        assert not at.exception, table
        assert list(at.dataframe[0].value.columns)  # the rows, coloured where an error was injected
        if len(at.dataframe) > 1 and (at.dataframe[1].value["kind"] == "exact_duplicate").any():
            duplicated.append(table)  # a copied row is marked as a whole, on every cell
    assert "orders" in duplicated
    at.selectbox(key="preview_table").set_value("customers").run()

    at.slider(key="kind_missing").set_value(0.2).run()
    at.slider(key="error_rate").set_value(0.5).run()
    assert at.slider(key="kind_missing").value == 0.2  # moved by hand: kept
    assert at.slider(key="kind_whitespace").value == 0.05  # follows 0.5 x its weight 0.1

    at.number_input[0].set_value(5000).run()  # orders: about 60k rows, over the small-batch limit
    assert any("the **large** route" in m for m in texts(at.markdown))
    assert "Cleaning will run on **Spark**." in texts(at.markdown)
    [route] = [m for m in texts(at.markdown) if "estimated from the preview" in m]
    assert re.search(r"taking about \*\*\d+ MB\*\* in the lake", route)  # 5,000 orders: about 10 MB

    before = job_count("alice")
    at.number_input[0].set_value(0).run()
    assert texts(at.error) == [
        "Nothing generated. rows: must be a whole number from 1 to 100,000,000 (got 0)"
    ]
    assert not at.dataframe and not at.main.button
    assert job_count("alice") == before

    at.number_input[0].set_value(150).run()
    at.multiselect[0].set_value(["customers", "orders"]).run()
    assert at.selectbox(key="preview_table").options == ["customers", "orders"]
    at.main.button[0].click().run()  # the generation runs in a worker process of its own
    assert progress_bars(at) == [(0, "Starting. It runs in the background: you may leave this page.")]
    assert job_count("alice") == before + 1
    generation_ended(at)
    job_id = at.session_state["generation_of_alice"]
    manifest = read_manifest(open_lake(get_settings()), "alice", job_id)
    rows = sum(table["rows"] for table in manifest["tables"].values())
    assert texts(at.success) == [
        f"Generated job `{job_id}`: {rows:,} rows, {manifest['errors_injected']:,} errors injected in "
        f"{manifest['seconds']:.1f} s."
    ]
    assert stored_job(job_id).rows_out == rows
    assert progress_bars(at) == []  # the bar goes once the message says it is done
    assert at.dataframe[-1].value["table"].tolist() == ["customers", "orders"]
    at.slider(key="error_rate").set_value(0.2).run()  # the outcome stays while the next one is set up
    assert texts(at.success)[0].startswith(f"Generated job `{job_id}`")


def test_generate_refuses_a_data_set_larger_than_the_lakes_free_space(monkeypatch):
    monkeypatch.setattr(LocalLake, "free_bytes", lambda lake: 50_000_000)  # the disk, made small: 50 MB free
    at = signed_in("alice", "pages/generate.py")
    at.number_input[0].set_value(20_000).run()  # about 40 MB: it fits
    assert not at.error and not generate_button(at).disabled
    at.number_input[0].set_value(100_000).run()  # about 200 MB
    assert texts(at.error) == [
        "Nothing can be generated: the lake's disk has 50 MB free, less than this needs. "
        "Lower the orders, or free space on the disk."
    ]
    assert generate_button(at).disabled


def test_generate_rates_per_table_follow_the_overall_rate_unless_moved():
    at = signed_in("alice", "pages/generate.py")
    at.multiselect[0].set_value(["customers", "orders"]).run()
    at.slider(key="table_shop:customers").set_value(0.0).run()
    at.slider(key="error_rate").set_value(0.4).run()
    assert at.slider(key="table_shop:customers").value == 0.0  # moved by hand: kept
    assert at.slider(key="table_shop:orders").value == 0.4  # follows the overall rate
    assert at.selectbox(key="preview_table").value == "customers"
    assert len(at.dataframe) == 1  # the preview rows, and no injected error to list
    at.selectbox(key="preview_table").set_value("orders").run()
    assert len(at.dataframe[1].value) > 0  # orders keep their errors

    at.main.button[0].click().run()
    job_id = re.search(r"Generated job `(g-[^`]+)`", generation_ended(at).success[0].value)[1]
    manifest = read_manifest(open_lake(get_settings()), "alice", job_id)
    assert manifest["spec"]["table_rates"] == {"customers": 0.0}
    assert set(manifest["error_rates"]) == {"orders"}  # nothing was injected into customers


def test_generate_follows_the_running_generation_and_stop_ends_it(started):
    at = signed_in("alice", "pages/generate.py")
    at.number_input[0].set_value(3000).run()
    at.main.button[0].click().run()
    job_id = at.session_state["generation_of_alice"]
    assert started == [job_id]  # handed to a worker process; this test runs it below, in its own process
    assert generate_button(at).disabled  # one at a time
    seen = []

    def the_page_meanwhile(done: float, message: str) -> None:
        seen.append(progress_bars(at.run()))
        if len(seen) == 1:  # the Jobs page follows it too
            assert progress_bars(signed_in("alice", "pages/jobs.py", job=job_id)) == [
                (seen[0][0][0], "customers: 750 rows")
            ]
        if len(seen) == 2:
            at.button(key="stop_generation").click().run()

    with pytest.raises(JobCancelled):  # stopped at the chunk after the click
        service.run_generation(job_id, progress=the_page_meanwhile)
    background = "It runs in the background: you may leave this page."
    assert [bars[0][1] for bars in seen] == [
        f"Started, customers: 750 rows. {background}",
        f"Started, sellers: 30 rows. {background}",
    ]
    assert 0 < seen[0][0][0] < seen[1][0][0] < 100
    assert progress_bars(at) == [] and "stop_generation" not in [button.key for button in at.button]
    assert texts(at.warning) == [f"Generation `{job_id}` was cancelled; nothing of it was kept."]
    assert not generate_button(at).disabled
    assert stored_job(job_id).state == "cancelled"
    assert not (get_settings().data_dir / "raw" / "alice" / job_id).exists()


def test_generate_warns_when_the_generation_it_follows_falls_silent():
    two_minutes_ago = JobStore.default(clock=lambda: time.time() - 120)
    try:  # its worker process never started, or died without a word
        job_id = two_minutes_ago.create_job(new_job_id("generate"), "alice", "generate")[0].job_id
    finally:
        two_minutes_ago.close()
    at = signed_in("alice", "pages/generate.py")
    at.session_state["generation_of_alice"] = job_id
    at.run()
    assert progress_bars(at)[0][1].startswith("Starting.")
    [warning] = texts(at.warning)
    assert warning.startswith("No word from its worker process since ")
    assert "stop it and generate again; the scheduler ends it after 10 minutes" in warning
    at.button(key="stop_generation").click().run()
    assert stored_job(job_id).state == "cancelled"


def test_generate_refuses_a_generation_over_the_users_limit_and_records_nothing(started):
    elsewhere = [service.queue_generation(GenerationSpec(rows=100), "bob").job_id for _ in range(2)]
    try:  # two generations of bob's, from other tabs or the command line, are queued or running
        at = signed_in("bob", "pages/generate.py")
        before = job_count("bob")
        generate_button(at).click().run()
        [error] = texts(at.error)
        assert error.startswith("Nothing generated. bob has 2 generations queued or running (")
        assert all(job_id in error for job_id in elsewhere)
        assert "cancel one on the Jobs page" in error
        assert (job_count("bob"), started) == (before, [])
        assert "generation_of_bob" not in at.session_state  # the page follows nothing
    finally:
        store = JobStore.default()
        try:
            for job_id in elsewhere:
                store.cancel(job_id)
        finally:
            store.close()


def test_jobs_names_the_spark_run_cleaning_a_job_and_links_to_its_page(started):
    launched = service.launch_clean("alice", generated(), engine="spark").job.job_id
    store = JobStore.default()
    try:  # what the worker records while a Databricks run cleans it
        store.start(launched, engine="spark")
        url = "https://adb-1.azuredatabricks.net/#job/0/run/4711"
        store.record_remote_run(launched, service="databricks", run_id="4711", state="running", url=url)
    finally:
        store.close()
    at = signed_in("alice", "pages/jobs.py", job=launched)
    assert "Spark run `4711` on **databricks**, last seen running." in texts(at.markdown)
    [button] = at.get("link_button")
    assert (button.proto.label, button.proto.url) == ("Open the run on databricks", url)
    bob = signed_in("bob", "pages/jobs.py", job=launched)  # not his job: nothing of it shown
    assert "Spark run `4711` on **databricks**, last seen running." not in texts(bob.markdown)
    assert bob.get("link_button") == []


def test_pipelines_follows_the_stages_of_a_running_cleaning(started):
    parent = generated()
    running = service.launch_clean("alice", parent).job.job_id
    store = JobStore.default()
    try:  # what the worker records once three of its six stages are done
        store.start(running, engine="pandas")
        store.record_progress(running, 0.5, "now: build gold")
    finally:
        store.close()
    at = signed_in("alice", "pages/pipelines.py", job=parent)
    assert progress_bars(at) == [(50, "now: build gold")]
    assert f"Destinations of `{running}` (running):" in texts(at.markdown)


def test_pipelines_clean_once_even_when_clicked_twice(started):
    job_id = generated()
    at = signed_in("alice", "pages/pipelines.py", job=job_id)
    assert at.selectbox[0].value == job_id
    assert any(m.endswith(" ≤ 10,000: the small route, pandas**.") for m in texts(at.markdown))
    engine = at.radio(key=f"engine_of_{job_id}")
    assert (engine.value, engine.proto.captions[0].startswith("pandas, about ")) == ("auto", True)
    at.main.button[0].click().run()
    assert at.success[0].value.endswith("launched on pandas; it runs in the background.")
    at.main.button[0].click().run()
    assert "is already queued; no second run was started." in at.info[0].value
    assert len(started) == 1
    runs = at.dataframe[0].value
    assert runs[["source", "state", "route"]].values.tolist() == [[job_id, "queued", "small"]]
    assert at.dataframe[1].value["where"][0] == f"silver/cleaned/alice/{job_id}/{started[0]}/"

    service.execute_job(started[0])
    at.run()
    assert next(t.value for t in at.toast if started[0] in t.value).startswith(
        f"Cleaning complete: {started[0]}"
    )
    assert at.dataframe[0].value["state"].tolist() == ["succeeded"]
    counts = at.dataframe[2].value
    assert counts.columns.tolist() == ["table", "rows in", "rows out", "quarantined", "duplicates removed"]
    assert (
        counts["rows in"] == counts["rows out"] + counts["quarantined"] + counts["duplicates removed"]
    ).all()


def test_pipelines_queue_a_job_for_the_scheduled_run_or_clean_it_now(started):
    job_id = generated(rows=60)
    at = signed_in("alice", "pages/pipelines.py", job=job_id)
    [schedule] = [m for m in texts(at.markdown) if m.startswith("The scheduler cleans small batches")]
    at_time = re.search(r"next run is at \*\*(\d{4}-\d\d-\d\d (\d\d:\d\d)) UTC\*\*", schedule)
    assert schedule.startswith("The scheduler cleans small batches every 10 minutes;") and at_time
    queue_button = at.button(key="queue")
    assert queue_button.label == f"Queue for {at_time[2]} UTC"
    queue_button.click().run()
    [queued] = at.dataframe[0].value["job"].tolist()
    assert texts(at.success) == [
        f"Cleaning job `{queued}` is queued; the scheduler cleans it on pandas at {at_time[2]} UTC."
    ]
    assert started == []
    at.button(key="queue").click().run()
    assert texts(at.info)[0] == (
        f"Cleaning job `{queued}` of this data is already queued for the scheduled run; "
        "no second run was started."
    )
    jobs = signed_in("alice", "pages/jobs.py", job=queued)
    assert (
        texts(jobs.info)[0]
        == f"Queued for the scheduler's next small run, at {at_time[2]} UTC. Clean now starts it at once."
    )
    jobs.button(key="clean_now").click().run()  # from the Jobs page: the same job, started now
    assert texts(jobs.success) == [f"Cleaning job `{queued}` runs now instead of at the scheduled run."]
    assert started == [queued]

    at.button(key="clean_now").click().run()  # the waiting job starts at once, and no second job is made
    assert texts(at.success) == [
        f"Cleaning job `{queued}` was waiting for the scheduled run; it runs now, on pandas."
    ]
    assert started == [queued, queued] and at.dataframe[0].value["job"].tolist() == [queued]
    finished = {job.job_id: job.state for job in worker.drain("small")}  # the click's run, or the scheduler
    assert finished[queued] == "succeeded"
    at.run()
    assert at.dataframe[0].value["state"].tolist() == ["succeeded"]


def test_pipelines_tell_what_a_cleaning_writes_and_refuse_one_the_disk_cannot_hold(started, monkeypatch):
    job_id = generated()
    at = signed_in("alice", "pages/pipelines.py", job=job_id)
    need = cleaning_bytes(get_settings(), read_manifest(open_lake(get_settings()), "alice", job_id))
    [told] = [c for c in texts(at.caption) if c.startswith("Cleaning writes about")]
    assert told.startswith(f"Cleaning writes about {size_text(need)} on the lake's disk, which has ")
    assert not at.button(key="clean_now").disabled

    monkeypatch.setattr(LocalLake, "free_bytes", lambda lake: need)  # other jobs filled the disk
    at.run()
    [error] = texts(at.error)
    told = f"The lake's disk would fill up: cleaning {job_id} writes about {size_text(need)} "
    assert error.startswith(told) and error.endswith("then clean it again.")
    assert at.button(key="clean_now").disabled and at.button(key="queue").disabled
    assert not [c for c in texts(at.caption) if c.startswith("Cleaning writes about")]
    assert (started, [j.kind for j in stored_jobs("alice") if j.parent_id == job_id]) == ([], [])


def test_a_job_of_another_contract_is_offered_a_cleaning_and_cleaned_by_its_own_rules(started):
    at = signed_in("alice", "pages/generate.py", contract="bank")
    assert [m for m in texts(at.markdown) if m.startswith("Cleaning will run on")]

    job_id = service.generate_job(GenerationSpec(rows=40, seed=0, contract="bank"), "alice").job_id
    at = signed_in("alice", "pages/pipelines.py", job=job_id)
    at.button(key="clean_now").click().run()
    [cleaning] = [j for j in stored_jobs("alice") if j.parent_id == job_id]
    assert started == [cleaning.job_id]
    finished = {job.job_id: job for job in worker.drain("small")}
    assert finished[cleaning.job_id].state == "succeeded", finished[cleaning.job_id].error
    silver = service.job_outputs(finished[cleaning.job_id])["silver"]
    assert set(silver) == {"customers", "accounts", "transactions", "transfers", "transfer_legs"}


def test_a_large_batch_is_cleaned_by_spark(monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_SMALL_BATCH_MAX_ROWS", "100")
    at = signed_in("alice", "pages/pipelines.py", job=generated(rows=60))
    assert any(m.endswith(" raw rows > 100: the large route, Spark**.") for m in texts(at.markdown))
    assert at.radio[0].value == "auto" and at.radio[0].proto.captions[0].startswith("Spark, about ")
    assert [w for w in texts(at.warning) if not w.startswith("Scheduler:")] == []  # spark is not refused


def test_pages_refuse_another_users_job_and_unknown_ids(bobs_job):
    alices_job = generated()
    for page in ("pages/pipelines.py", "pages/jobs.py", "pages/quality.py"):
        for job in (alices_job, "g-20990101t000000-000000"):
            at = signed_in("bob", page, job=job)
            assert at.error[0].value.startswith(f"job {job} does not exist."), page
            shown = [e.value for e in at.get("selectbox")] if at.selectbox else []
            assert job not in shown


def drawn(table, job: str, column: str) -> str:
    """A job's cell as the browser draws it: a missing value as the table's placeholder, which Streamlit
    draws as "None" when the page sets none."""
    value = table.value.set_index("job").loc[job, column]
    if pd.isna(value):
        return table.proto.placeholder if table.proto.HasField("placeholder") else "None"
    return str(value)


def test_the_jobs_table_leaves_empty_what_a_generation_does_not_have(bobs_job):
    table = signed_in("bob", "pages/jobs.py").dataframe[0]
    job = stored_job(bobs_job)
    assert [drawn(table, bobs_job, column) for column in ("rows in", "rows out", "quarantined")] == [
        "",
        str(job.rows_out),
        "0",
    ]


def test_jobs_table_details_cancel_retry_and_the_toast(bobs_job, started):
    parent = generated()
    queued = service.launch_clean("alice", parent).job.job_id
    at = signed_in("alice", "pages/jobs.py", job=queued)
    table = at.dataframe[0].value
    assert {"job", "state", "route", "engine", "created", "seconds", "rows in", "rows out"} <= set(
        table.columns
    )
    assert bobs_job in table["job"].tolist()  # an administrator sees everyone's jobs
    assert table.set_index("job").loc[queued, "state"] == "queued"
    created = table.set_index("job").loc[queued, "created"]  # the browser's zone (UTC here), in the help
    assert (created.tzinfo, created) == (None, stored_job(queued).created_at.replace(tzinfo=None))
    assert at.dataframe[0].proto.columns and "your time zone (UTC)" in at.dataframe[0].proto.columns
    assert table.set_index("job").loc[queued, "cloud"] == "this machine"  # where it lives
    lives = "Lives on **this machine**."
    assert (
        f"**clean** job of `alice`, **queued**, route small, cleaning `{parent}`, 0 attempt(s). {lives}"
        in texts(at.markdown)
    )

    at.button(key="cancel").click().run()
    assert texts(at.success) == [f"Job `{queued}` is cancelled."]
    at.run()
    assert at.dataframe[0].value.set_index("job").loc[queued, "state"] == "cancelled"
    at.button(key="retry").click().run()
    assert at.success[0].value.startswith(f"Cleaning of `{parent}` runs again as `c-")
    assert len(started) == 1

    service.execute_job(started[0])
    at.run()  # the next refresh lists the new run, and the frame announces it once
    announced = [t for t in at.toast if started[0] in t.value]
    assert len(announced) == 1 and announced[0].value.startswith(f"Cleaning complete: {started[0]}: ")
    assert announced[0].icon == ":material/task_alt:"
    at.selectbox(key="job_detail").set_value(started[0]).run()
    assert not [t for t in at.toast if started[0] in t.value]
    assert at.dataframe[0].value.set_index("job").loc[started[0], "state"] == "succeeded"
    assert "The silver layer of this job has not been profiled yet." in texts(at.caption)
    timings = at.dataframe[1].value
    assert (timings["seconds"] == timings["seconds"].round(2)).all()  # not 28.0119
    stages = timings["stage"].tolist()
    assert stages == [
        "read raw",
        "clean",
        "write silver and quarantine",
        "build gold",
        "load the warehouse",
        "load the operational database",
    ]

    bob = signed_in("bob", "pages/jobs.py")  # bob sees his own jobs, all of them, and no one else's
    shown = bob.dataframe[0].value["job"].tolist()
    assert bobs_job in shown and queued not in shown and started[0] not in shown
    assert shown == [job.job_id for job in stored_jobs("bob")]


@pytest.fixture
def on_azure(azurite, monkeypatch) -> str:
    """This machine (the default) beside Azure, whose lake is an ADLS file system of the test's own on
    Azurite; its name."""
    name = f"lake{uuid.uuid4().hex[:10]}"
    BlobServiceClient.from_connection_string(azurite.connection_string).create_container(name)
    monkeypatch.setenv("ORCHESTRATOR_CLOUDS", "local,azure")
    monkeypatch.setenv("ORCHESTRATOR_AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setenv("ORCHESTRATOR_AZURE_FILE_SYSTEM", name)
    return name


def test_generate_offers_the_clouds_and_the_job_lives_on_the_one_chosen(on_azure):
    at = signed_in("alice", "pages/generate.py")
    cloud = at.radio(key="generate_cloud")
    assert (cloud.label, cloud.options, cloud.value) == (
        "Cloud",
        ["this machine", "Microsoft Azure"],
        "local",
    )
    at.number_input[0].set_value(20).run()
    at.multiselect[0].set_value(["customers", "orders"]).run()
    at.radio(key="generate_cloud").set_value("azure").run()
    generate_button(at).click().run()
    generation_ended(at)
    job_id = at.session_state["generation_of_alice"]
    assert re.match(rf"Generated job `{job_id}` on Microsoft Azure: \d+ rows", texts(at.success)[0])
    settings = get_settings()
    azure, here = open_lake(settings.on_cloud("azure")), open_lake(settings)
    assert azure.exists(paths.raw_manifest("alice", job_id))  # its files are on Azure, none here
    assert not here.exists(paths.raw_manifest("alice", job_id))


def test_jobs_sync_a_job_to_another_cloud_and_tell_it(on_azure):
    job_id = service.generate_job(GenerationSpec(rows=20, seed=0), "alice", cloud="azure").job_id
    at = signed_in("alice", "pages/jobs.py", job=job_id)
    assert at.dataframe[0].value.set_index("job").loc[job_id, "cloud"] == "Microsoft Azure"
    assert at.selectbox(key="sync_to").options == ["this machine"]
    at.button(key="sync").click().run()
    [told] = texts(at.success)
    assert re.fullmatch(
        rf"Synced `{job_id}` from Microsoft Azure to this machine: (\d+) file\(s\) copied \([\d.]+ MB\), 0 "
        "already there and verified\\.",
        told,
    ), told
    assert at.dataframe[0].value.set_index("job").loc[job_id, "cloud"] == (
        "Microsoft Azure + copy on this machine"
    )
    assert [
        m for m in texts(at.markdown) if m.endswith("Lives on **Microsoft Azure + copy on this machine**.")
    ]
    assert not [b for b in at.button if b.key == "sync"]  # every cloud holds it now
    assert open_lake(get_settings()).exists(paths.raw_manifest("alice", job_id))

    # a cleaning made on the copy stays where it was made: no sync is offered, and the page says why
    cleaning = service.launch_clean("alice", job_id, cloud="local").job.job_id
    assert service.execute_job(cleaning).state == "succeeded"
    at = signed_in("alice", "pages/jobs.py", job=cleaning)
    assert at.dataframe[0].value.set_index("job").loc[cleaning, "cloud"] == "this machine"
    assert not [b for b in at.button if b.key == "sync"]
    assert [c for c in texts(at.caption) if c.startswith("Cleaned on the copy on this machine, so it is not")]


def test_a_failed_job_is_announced_as_failed_not_ticked_off(started):
    failed = service.launch_clean("alice", generated()).job.job_id
    at = signed_in("alice", "pages/jobs.py")
    store = JobStore.default()
    try:
        store.fail(failed, "the worker's disk is full")
    finally:
        store.close()
    at.run()
    [toast] = [t for t in at.toast if failed in t.value]
    assert toast.value == f"Cleaning failed: {failed}: the worker's disk is full"
    assert toast.icon == ":material/error:"


def test_jobs_delete_a_finished_job_for_good_and_the_generate_page_forgets_it(started):
    parent = generated()
    cleaning = service.execute_job(service.launch_clean("alice", parent).job.job_id).job_id
    followed = signed_in("alice", "pages/generate.py")
    followed.session_state["generation_of_alice"] = parent  # the generation this tab last ran
    followed.run()
    assert texts(followed.success)[0].startswith(f"Generated job `{parent}`")
    busy = generated()
    queued = service.launch_clean("alice", busy, scheduled=True).job.job_id

    at = signed_in("alice", "pages/jobs.py", job=busy)
    at.button(key="delete_job").click().run()
    assert texts(at.error) == [
        f"Nothing deleted. job_id: job {busy} cannot be deleted while its cleaning {queued} is queued; "
        f"cancel {queued} or wait for it to finish, then delete {busy}"
    ]
    assert {busy, queued} <= set(at.dataframe[0].value["job"])

    at = signed_in("alice", "pages/jobs.py", job=parent)
    [told] = [m for m in texts(at.markdown) if m.startswith(f"Deletes `{parent}` for good")]
    assert "its raw files and clean truth, its 1 cleaning(s) with their silver, quarantine and gold" in told
    at.button(key="delete_job").click().run()
    assert not at.exception, at.exception
    assert texts(at.success) == [f"Deleted `{parent}`, `{cleaning}`."]
    listed = set(at.dataframe[0].value["job"])
    assert {busy, queued} <= listed and not {parent, cleaning} & listed
    assert not {parent, cleaning} & set(at.selectbox(key="job_detail").options)
    assert "job" not in at.query_params or at.query_params["job"] not in (parent, cleaning)
    assert not open_lake(get_settings()).exists(paths.raw_manifest("alice", parent))
    at.run()
    assert texts(at.success) == []  # told once

    kept = generated()
    other_tab = signed_in("alice", "pages/jobs.py", job=busy)
    store = JobStore.default()
    try:
        store.cancel(queued)
    finally:
        store.close()
    service.delete_job(busy, user="alice")  # deleted while this tab shows it
    other_tab.run()
    assert not other_tab.exception, other_tab.exception
    assert texts(other_tab.error) == [
        f"job {busy} does not exist. The list below holds the jobs you can open."
    ]
    assert kept in set(other_tab.dataframe[0].value["job"])

    followed.run()
    assert not followed.exception, followed.exception
    assert not [s for s in texts(followed.success) if parent in s]
    assert "generation_of_alice" not in followed.session_state


def test_jobs_offer_the_files_of_a_finished_job_and_point_at_the_lake_beyond_the_limit(monkeypatch):
    parent = generated()
    cleaning = service.execute_job(service.launch_clean("alice", parent).job.job_id).job_id
    at = signed_in("alice", "pages/jobs.py", job=parent)
    assert [d.label for d in at.get("download_button")] == ["Raw data", "Answer key and truth"]
    at.selectbox(key="job_detail").set_value(cleaning).run()
    assert [d.label for d in at.get("download_button")] == ["Silver, quarantine and gold"]

    monkeypatch.setattr(ui_support, "DOWNLOAD_MAX_ROWS", 100)
    at.run()
    assert at.get("download_button") == []
    [note] = [c for c in texts(at.caption) if c.startswith("Downloads are offered up to 100 rows")]
    assert f"`silver/cleaned/alice/{parent}/{cleaning}/`" in note
    assert f"`gold/analytics/alice/{parent}/{cleaning}/`" in note


def test_quality_profiles_charts_samples_scores_comparison_and_reports():
    parent = generated(rows=150)
    cleaning = service.execute_job(service.launch_clean("alice", parent).job.job_id)
    at = signed_in("alice", "pages/quality.py", job=cleaning.job_id, layer="silver")
    assert texts(at.info) == [f"The silver layer of {cleaning.job_id} has not been profiled yet."]
    at.main.button[0].click().run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    ran = [int(metrics[f"{kind}s failing"].split(" of ")[1]) for kind in ("Error", "Warning")]
    assert sum(ran) == len(at.dataframe[0].value)  # every rule ran, counted under its severity
    assert metrics["Cell accuracy"].endswith("%")
    assert len(at.get("plotly_chart")) == 2
    charted = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]["y"]
    assert charted and not [name for name in charted if "._" in name]  # no bookkeeping columns (_issues)
    assert texts(at.info) == [f"Profile the raw layer of {parent} to compare it with this silver layer."]
    scores = frame_with(at, "injected")
    assert {"kind", "injected", "fixed", "nulled", "remaining", "quarantined"} <= set(scores.columns)

    next(b for b in at.main.button if b.label == "Profile raw").click().run()
    compared = next(s for s in at.selectbox if s.label == "Compare with")
    assert compared.options[compared.index].startswith(f"raw of {parent} (its source), profiled ")
    assert at.query_params["against"] == compared.value
    rules, columns = frame_with(at, "failing before"), frame_with(at, "completeness before")
    assert {"rule", "failing before", "failing after", "change"} <= set(rules.columns)
    assert (rules["change"] < 0).any()
    assert {"completeness before", "completeness after", "distinct before", "distinct after"} <= set(
        columns.columns
    )
    assert len(columns) and not columns["column"].str.startswith("_").any()
    assert [d.label for d in at.get("download_button")] == ["HTML", "JSON", "CSV", "XLSX"]

    at.query_params.update(job=parent, layer="raw")
    at.run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Recall of the rules"] == "100.0%"
    for marker in ("severity", "judgeable", "completeness"):  # the rules, the scores, the columns
        headings = frame_with(at, marker).columns
        assert not [h for h in headings if "_" in h], headings  # headed for people, not with field names
    assert [s.label for s in at.selectbox] == ["Job", "Layer", "Rule", "Row", "Compare with"]
    assert "against" not in at.query_params and not at.error  # a layer is not compared with itself
    samples = at.dataframe[2].value
    assert {"line", "key"} <= set(samples.columns) and 0 < len(samples) <= 5

    for job, wanted in ((cleaning.job_id, "; cell accuracy "), (parent, "; recall ")):
        shown = texts(signed_in("alice", "pages/jobs.py", job=job).markdown)
        summary = [m for m in shown if m.startswith("Quality of")]
        assert len(summary) == 1 and wanted in summary[0] and "_" not in summary[0], summary
        assert re.search(
            r": [\d,]+ of [\d,]+ error rules and [\d,]+ of [\d,]+ warning rules fail;", summary[0]
        )


def test_quality_compares_with_and_lists_the_stored_runs_of_its_owner_only(bobs_job):
    dirty, cleaner = (
        generated(),
        service.generate_job(GenerationSpec(rows=120, error_rate=0.1), "alice").job_id,
    )
    runs = {job: quality.profile_job("alice", job, "raw") for job in (dirty, cleaner)}
    bobs = quality.profile_job("bob", bobs_job, "raw")
    at = signed_in("alice", "pages/quality.py", job=cleaner, layer="raw")
    compared = next(s for s in at.selectbox if s.label == "Compare with")
    assert compared.value is None and "against" not in at.query_params  # raw has no source to default to
    assert any(o.startswith(f"raw of {dirty}, profiled ") for o in compared.options)
    assert not [o for o in compared.options if bobs_job in o or cleaner in o]

    compared.select(runs[dirty].run_id).run()
    assert not at.exception
    labels = [m.label for m in at.metric if m.label.startswith(("Before", "After"))]
    assert labels == [
        f"{when}: raw of {job}, {severity}s failing"
        for when, job in (("Before", dirty), ("After", cleaner))
        for severity in ("error", "warning")
    ]
    assert at.query_params["against"] == runs[dirty].run_id
    rules = frame_with(at, "failing before")
    assert rules["change"].sum() < 0  # a tenth of the errors fail fewer rows than three tenths
    assert (rules["share after"] < rules["share before"]).sum() > (
        rules["share after"] > rules["share before"]
    ).sum()

    stored = frame_with(at, "errors failing").set_index("run")
    assert {runs[dirty].run_id, runs[cleaner].run_id} <= set(stored.index) and bobs.run_id not in stored.index
    for run in runs.values():
        for severity in ("error", "warning"):
            mine = [r for r in run.rules if r.severity == severity]
            assert stored.loc[run.run_id, f"{severity}s failing"] == sum(r.status == "failed" for r in mine)
            assert stored.loc[run.run_id, f"rows failing {severity}s"] == sum(r.failed for r in mine)

    for stranger in (bobs.run_id, "q-20990101t000000-000000"):
        shared = signed_in("alice", "pages/quality.py", job=cleaner, layer="raw", against=stranger)
        message = f"There is no stored run {stranger} of alice. Choose one of the stored runs below."
        assert texts(shared.error) == [message]
        assert next(s for s in shared.selectbox if s.label == "Compare with").value is None
        assert not [m for m in shared.metric if m.label.startswith("Before")]

    bob = signed_in("bob", "pages/quality.py", job=bobs_job, layer="raw")
    theirs = next(s for s in bob.selectbox if s.label == "Compare with")
    assert theirs.options == [] and theirs.placeholder == "no other run is stored yet"


@pytest.fixture(scope="module")
def profiled() -> dict:
    """A job of alice cleaned with pandas, its silver and raw profiled; only warnings fail on its silver."""
    parent = generated(rows=120)
    cleaning = service.execute_job(service.launch_clean("alice", parent).job.job_id).job_id
    return {
        "parent": parent,
        "cleaning": cleaning,
        "silver": quality.profile_job("alice", cleaning, "silver"),
        "raw": quality.profile_job("alice", parent, "raw"),
    }


def column_config(frame) -> dict:
    """How a table on the page is told to show each column."""
    return json.loads(frame.proto.columns)


def rule_picker(at: AppTest):
    return next(s for s in at.selectbox if s.label == "Rule")


def raw_line(parent: str, table: str, line: int) -> dict:
    """One line of a job's raw file, parsed here, apart from the code under test."""
    text = LocalLake(get_settings().data_dir).resolve(paths.raw_table("alice", parent, table)).read_text()
    return json.loads(text.splitlines()[line])


def answer_key(parent: str, table: str, line: int) -> dict[str, str]:
    """{column: kind} of what the generator injected in one raw line."""
    path = LocalLake(get_settings().data_dir).resolve(paths.answer_key("alice", parent))
    key = pq.read_table(path).to_pandas()
    found = key[(key["table"] == table) & (key["line"] == line)]
    return dict(zip(found["column"], found["kind"], strict=True))


def test_quality_headline_counts_errors_apart_from_warnings(profiled):
    silver = profiled["silver"]
    failing = [r for r in silver.rules if r.status == "failed"]
    assert failing and {r.severity for r in failing} == {"warning"}  # what cleaning nulled on purpose
    at = signed_in("alice", "pages/quality.py", job=profiled["cleaning"], layer="silver")
    metrics = {m.label: m.value for m in at.metric}
    errors, warnings = (sum(r.severity == s for r in silver.rules) for s in ("error", "warning"))
    assert metrics["Errors failing"] == f"0 of {errors}"
    assert metrics["Warnings failing"] == f"{len(failing)} of {warnings}"
    rules_chart = json.loads(at.get("plotly_chart")[1].proto.spec)["data"]
    assert [trace["name"] for trace in rules_chart] == ["warning"]

    columns_chart = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    charted = {name for trace in columns_chart for name in trace["y"]}
    assert "events.session_id" in charted  # missing where a value is asked for: incomplete
    assert "orders.coupon_id" not in charted  # most orders have no coupon: empty by design
    [apart] = [c for c in texts(at.caption) if c.startswith("Left out, empty by design")]
    assert "orders.coupon_id (" in apart

    shown = texts(signed_in("alice", "pages/jobs.py", job=profiled["cleaning"]).markdown)
    [summary] = [m for m in shown if m.startswith("Quality of")]
    assert summary.startswith(
        f"Quality of silver: 0 of {errors} error rules and {len(failing)} of {warnings} warning rules fail;"
    )


def test_quality_lists_the_failing_rules_with_the_most_failing_rows_first(profiled):
    raw = profiled["raw"]
    at = signed_in("alice", "pages/quality.py", job=profiled["parent"], layer="raw")
    options = rule_picker(at).options
    failed = [raw.rule(rule_id.split(" (")[0]).failed for rule_id in options]
    assert len(options) == sum(r.status == "failed" for r in raw.rules)
    assert failed == sorted(failed, reverse=True) and failed[0] > failed[-1]
    assert options[0] == f"{raw.failing()[0].rule_id} ({failed[0]:,} rows, {raw.failing()[0].severity})"


def test_quality_shows_a_failing_raw_row_whole_with_its_answer_key_entry(profiled):
    parent, raw = profiled["parent"], profiled["raw"]
    rule = raw.rule("orders.currency.in_set")
    at = signed_in("alice", "pages/quality.py", job=parent, layer="raw")
    rule_picker(at).set_value(rule.rule_id).run()
    assert not at.exception
    whole = frame_with(at, "line")
    assert whole["line"].tolist() == [s["line"] for s in rule.samples]
    assert set(raw_line(parent, "orders", 0)) <= set(whole.columns)  # every column of the raw line

    line = next(s["line"] for s in rule.samples if "currency" in answer_key(parent, "orders", s["line"]))
    next(s for s in at.selectbox if s.label == "Row").set_value(line).run()
    cells = frame_with(at, "answer key: kind").set_index("column")
    record = raw_line(parent, "orders", line)
    assert cells.loc["currency", "value"] == record["currency"]
    assert cells["answer key: kind"].dropna().to_dict() == answer_key(parent, "orders", line)


def test_quality_sets_the_raw_line_beside_the_cleaned_row_on_silver(profiled):
    parent, silver = profiled["parent"], profiled["silver"]
    rule = silver.rule("orders.order_ts.not_null")
    at = signed_in("alice", "pages/quality.py", job=profiled["cleaning"], layer="silver")
    rule_picker(at).set_value(rule.rule_id).run()
    assert not at.exception
    whole = frame_with(at, "raw line")
    assert whole["line"].tolist() == [s["line"] for s in rule.samples]
    assert set(raw_line(parent, "orders", 0)) <= set(whole.columns)

    cells = frame_with(at, "cleaned").set_index("column")  # the first failing row
    line = int(whole["raw line"][0])
    record, injected = raw_line(parent, "orders", line), answer_key(parent, "orders", line)
    assert pd.isna(cells.loc["order_ts", "cleaned"])  # set aside as null by cleaning
    assert cells.loc["order_ts", "raw"] == record["order_ts"] is not None  # what raw held
    assert cells.loc["customer_id", "raw"] == str(record["customer_id"])
    assert "order_ts" in injected
    assert cells["answer key: kind"].dropna().to_dict() == injected


def test_quality_tables_show_counts_and_shares_as_people_read_them(profiled):
    at = signed_in("alice", "pages/quality.py", job=profiled["parent"], layer="raw")
    scores = column_config(next(f for f in at.dataframe if "recall" in f.value.columns))
    assert scores["recall"]["type_config"]["format"] == "percent"  # 100%, not 1
    assert scores["injected"]["type_config"]["format"] == "localized"  # 1,234
    rules = column_config(next(f for f in at.dataframe if "share failing" in f.value.columns))
    assert rules["share failing"]["type_config"]["format"] == "percent"
    assert rules["rows failing"]["type_config"]["format"] == "localized"
    columns = column_config(next(f for f in at.dataframe if "completeness" in f.value.columns))
    assert columns["completeness"]["type_config"]["format"] == "percent"
    history = next(f for f in at.dataframe if "profiled" in f.value.columns)
    assert str(history.value["profiled"].dt.tz) == "UTC"
    assert "UTC" in column_config(history)["profiled"]["help"]


def test_pages_say_whether_a_scheduler_is_running_and_forget_it_once_stopped():
    at = signed_in("alice", "pages/pipelines.py", job=generated(rows=40))
    missing = "Scheduler: no scheduler is running, so a job queued for a scheduled run waits until one starts"
    assert any(w.startswith(missing) for w in texts(at.warning))
    scheduler = start_scheduler()
    try:
        at.run()
        assert not [w for w in texts(at.warning) if w.startswith("Scheduler:")]
        settings = signed_in("alice", "pages/settings.py")
        [running] = [i for i in texts(settings.info) if i.startswith("Scheduler: running on ")]
        [record] = (
            live_schedulers()
        )  # the small queue at midnight, or the large one first from 00:00 to 02:00
        assert f"(process {scheduler.pid})" in running
        assert (
            f"drains the {worker.queues_named(record.routes)} next, at {record.next_at:%Y-%m-%d %H:%M} UTC"
            in running
        )
    finally:
        scheduler.terminate()  # what make run sends it on the way out
        _, err = scheduler.communicate(timeout=30)
    assert scheduler.returncode == 0, err
    assert live_schedulers() == []
    at.run()
    assert any(w.startswith(missing) for w in texts(at.warning))


def test_settings_show_profile_threshold_schedules_secrets_and_connections(monkeypatch):
    monkeypatch.setenv(COOKIE_KEY_ENV, "k" * 64)
    monkeypatch.setenv("ORCHESTRATOR_MAX_ACTIVE_GENERATIONS", "3")
    at = signed_in("alice", "pages/settings.py")
    values = dict(at.dataframe[0].value.values.tolist())
    assert values["profile"] == "local"
    assert values["small-batch limit (rows)"] == "10,000"
    assert values["small batches cleaned"] == "every 10 minutes"
    assert values["large batches cleaned"] == "daily at 02:00 UTC"
    assert values["large batches run on"] == "local Spark"
    assert values["generations at once (per user)"] == "3"
    clouds = at.dataframe[1].value  # the clouds a job may live on: here this machine alone, the default
    assert clouds.values.tolist() == [
        ["this machine", "local", "default", "the worker (pandas, in process)", "local Spark"]
    ]
    secrets = dict(at.dataframe[2].value.values.tolist())
    assert secrets[COOKIE_KEY_ENV] == "set"
    assert secrets["ORCHESTRATOR_MYSQL_PASSWORD"] == "not set"
    assert "k" * 64 not in str(at)
    [disk] = [m for m in texts(at.markdown) if m.startswith("The lake's disk has")]
    shown = re.fullmatch(
        r"The lake's disk has \*\*([\d.,]+) GB\*\* free \(a job takes about 2 kB per order\)\.", disk
    )
    free = shutil.disk_usage(get_settings().data_dir).free / 1e9  # read again a moment later: within a GB
    assert shown and abs(float(shown[1].replace(",", "")) - free) < 1, (disk, free)
    at.main.button[-1].click().run()
    assert texts(at.success)[0].startswith("job store: sqlite job store (SQLite) answers: ")
    assert texts(at.success)[1].startswith("lake: local lake in ")
    assert [m.split(": ")[0] for m in texts(at.success)[2:]] == [
        "warehouse",
        "operational database",
        "large batches",
    ]


def test_settings_list_the_clouds_and_test_the_lake_of_each(on_azure):
    at = signed_in("alice", "pages/settings.py")
    clouds = at.dataframe[1].value
    assert clouds[["cloud", "name", "new jobs"]].values.tolist() == [
        ["this machine", "local", "default"],
        ["Microsoft Azure", "azure", ""],
    ]
    at.main.button[-1].click().run()
    lakes = [m for m in texts(at.success) if m.startswith("lake")]
    assert [m.split(": ")[0] for m in lakes] == ["lake on this machine", "lake on Microsoft Azure"]
    assert f"file system '{on_azure}'" in lakes[1]


def test_settings_keep_secrets_and_connection_tests_for_administrators():
    bob = signed_in("bob", "pages/settings.py")
    values = dict(bob.dataframe[0].value.values.tolist())
    assert values["small batches cleaned"] == "every 10 minutes"  # what shapes his jobs, he sees
    assert len(bob.dataframe) == 2  # the clouds, and no secrets table
    assert not [m for m in texts(bob.markdown) if m.startswith("The lake's disk has")]
    assert "Test connections" not in [b.label for b in bob.button]  # its answers count everyone's jobs
    shown_to = "Which secrets are set, and the connection tests, are shown to administrators."
    assert shown_to in texts(bob.caption)


def test_settings_name_the_cluster_large_batches_run_on(monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_SPARK_RUNNER", "databricks")
    at = signed_in("alice", "pages/settings.py")
    assert dict(at.dataframe[0].value.values.tolist())["large batches run on"] == "Databricks"
    monkeypatch.delenv("ORCHESTRATOR_CLUSTER_LAKE_ROOT", raising=False)
    at.main.button[-1].click().run()
    failed = [m for m in texts(at.error) if m.startswith("large batches: ")]
    assert len(failed) == 1 and failed[0].endswith("Check ORCHESTRATOR_CLUSTER_LAKE_ROOT."), failed


def test_settings_page_names_an_invalid_setting(monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_LARGE_DAILY_AT_UTC", "25:00")
    at = AppTest.from_file(str(ROOT / "pages" / "settings.py"), default_timeout=30)
    at.session_state["user"] = "alice"
    at.session_state["is_admin"] = True
    at.run()
    assert texts(at.error) == [
        "The configuration is invalid. ORCHESTRATOR_LARGE_DAILY_AT_UTC: must be a UTC time as HH:MM, "
        "such as 02:00 (got '25:00')"
    ]
    assert not at.dataframe


def test_a_download_offered_to_a_session_that_has_ended_is_not_built(bobs_job, monkeypatch):
    """Streamlit builds a deferred download on click without a script run, so the file's builder checks the
    session itself: a tab whose session ended meanwhile gets no file."""
    offered: dict[str, object] = {}
    register = MediaFileManager.add_deferred

    def remember(self, data_callable, *args, **kwargs):
        offered[kwargs.get("file_name") or args[2]] = data_callable
        return register(self, data_callable, *args, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", remember)
    at = signed_in("bob", "pages/jobs.py", job=bobs_job)
    raw = offered[f"{bobs_job}-raw.zip"]
    assert zipfile.ZipFile(io.BytesIO(raw())).namelist()  # while signed in, the zip is built
    open_user_store().revoke_session(at.session_state["_session_id"])
    with pytest.raises(PermissionError, match=r"Download refused\. You were logged out"):
        raw()
