"""The choices the pages leave to the user, through AppTest: the error rates that follow the overall rate
unless moved by hand, the engine of a cleaning with the time each is expected to take, and what Cancel,
Retry and Clean now did, told until the user moves on.

The module has a data root of its own (the fixtures of tests/test_app_pages.py), so the past cleanings the
estimates learn from are the ones made here.
"""

from __future__ import annotations

from orchestrator import contracts, service
from orchestrator.domain.shop import CONTRACT, TABLE_NAMES
from orchestrator.generation.catalogue import KINDS, receivable
from orchestrator.jobs.store import JobStore, new_job_id
from orchestrator.storage import LocalLake
from orchestrator.ui_support import DEFAULT_ENGINE_COSTS, duration_text, fit_cost
from tests import test_app_pages
from tests.gen_helpers import stored_job
from tests.test_app_pages import generated, signed_in, texts

# alice and bob in a data root of this module's own, and background cleaning recorded instead of started
data_dir, started = test_app_pages.data_dir, test_app_pages.started


def _kind_sliders(at) -> list[str]:
    return [
        slider.label for slider in next(e for e in at.expander if e.label == "Rates per error kind").slider
    ]


def follow_their_defaults(at, rate: float) -> None:
    """Every kind and table rate stands at its default for the overall ``rate``."""
    assert at.slider(key="error_rate").value == rate
    assert _kind_sliders(at) == list(receivable(CONTRACT))  # not the out_of_order of bank's constraints
    kinds = {kind: at.slider(key=f"kind_{kind}").value for kind in receivable(CONTRACT)}
    assert kinds == {kind: round(rate * KINDS[kind].weight, 3) for kind in receivable(CONTRACT)}
    assert {table: at.slider(key=f"table_shop:{table}").value for table in TABLE_NAMES} == dict.fromkeys(
        TABLE_NAMES, rate
    )


def test_generate_offers_a_rate_for_each_kind_the_chosen_contract_can_receive():
    at = signed_in("alice", "pages/generate.py", contract="bank")
    assert _kind_sliders(at) == list(receivable(contracts.built_in("bank").contract))
    assert "out_of_order" in _kind_sliders(at) and "order_before_signup" not in _kind_sliders(at)


def test_generate_rates_follow_the_overall_rate_whatever_the_order_of_events():
    at = signed_in("alice", "pages/generate.py")
    follow_their_defaults(at, 0.3)
    for rate in (0.29, 0.28, 0.27, 0.26, 0.22):  # quick steps, one run each
        at.slider(key="error_rate").set_value(rate).run()
    follow_their_defaults(at, 0.22)
    for rate in (0.23, 0.24, 0.25, 0.26, 0.27):  # quicker than the runs: the last one counts
        at.slider(key="error_rate").set_value(rate)
    at.run()
    follow_their_defaults(at, 0.27)

    # a browser that had not drawn the last values yet sends its old ones with the next step of the overall
    # slider: the user did not move those sliders, so they follow still
    at.slider(key="error_rate").set_value(0.21)
    at.slider(key="kind_missing").set_value(0.026)
    at.slider(key="table_shop:orders").set_value(0.26)
    at.run()
    follow_their_defaults(at, 0.21)

    at.slider(key="error_rate").set_value(0.0).run()
    follow_their_defaults(at, 0.0)
    for table in at.selectbox(key="preview_table").options:
        at.selectbox(key="preview_table").set_value(table).run()
        assert len(at.dataframe) == 1, table  # the rows, and no injected error to list


def test_generate_keeps_a_rate_moved_by_hand_while_the_others_follow():
    at = signed_in("alice", "pages/generate.py")
    at.slider(key="kind_typo").set_value(0.25).run()
    at.slider(key="table_shop:customers").set_value(0.0).run()
    for rate in (0.5, 0.1, 0.5):
        at.slider(key="error_rate").set_value(rate).run()
        assert (at.slider(key="kind_typo").value, at.slider(key="table_shop:customers").value) == (0.25, 0.0)
        assert at.slider(key="kind_missing").value == round(rate * KINDS["missing"].weight, 3)
        assert at.slider(key="table_shop:orders").value == rate


def test_a_cost_is_the_line_through_past_runs_never_below_zero():
    fixed, per_row = DEFAULT_ENGINE_COSTS["spark"]
    guess = fit_cost("spark", [])
    assert (guess.fixed_seconds, guess.seconds_per_row, guess.runs) == (fixed, per_row, 0)
    assert guess.basis == "no past runs; a guess"

    line = fit_cost("pandas", [(10_000, 1.0), (30_000, 2.0), (20_000, 1.5)])
    assert (round(line.fixed_seconds, 6), round(line.seconds_per_row, 9), line.runs) == (0.5, 5e-5, 3)
    assert round(line.seconds(100_000), 6) == 5.5 and line.basis == "from 3 past runs"

    one_size = fit_cost("pandas", [(100_000, 2.0), (100_000, 3.0)])  # the slope stays the default's
    assert one_size.seconds_per_row == DEFAULT_ENGINE_COSTS["pandas"][1]
    assert round(one_size.seconds(100_000), 6) == 2.5

    slower_when_smaller = fit_cost("spark", [(1_000, 70.0), (100_000, 60.0)])  # noise: flat, not negative
    assert (slower_when_smaller.seconds_per_row, slower_when_smaller.fixed_seconds) == (0.0, 65.0)

    fast = fit_cost("pandas", [(1_000_000, 1.0)])  # faster than the default's cost per row: no negative start
    assert (fast.fixed_seconds, fast.seconds_per_row) == (0.0, 1e-6)
    assert fit_cost("pandas", [(1_000, 0.5)]).basis == "from 1 past run"


def past_cleaning(parent: str, engine: str, rows: int, seconds: float) -> str:
    """A succeeded cleaning of ``rows`` raw rows on ``engine`` whose stages took ``seconds`` in all."""
    store = JobStore.default()
    try:
        job_id = store.create_job(new_job_id("clean"), "alice", "clean", parent_id=parent, rows_in=rows)[
            0
        ].job_id
        store.start(job_id, engine=engine)
        store.record_stage(job_id, "spark", seconds * 0.75)
        store.record_stage(job_id, "read_outputs", seconds * 0.25)
        store.succeed(job_id, rows_out=rows, rows_quarantined=0)
    finally:
        store.close()
    return job_id


def test_pipelines_say_why_the_route_and_let_the_engine_be_chosen_with_its_expected_time(
    started, monkeypatch
):
    monkeypatch.setenv("ORCHESTRATOR_SMALL_BATCH_MAX_ROWS", "1000")
    job_id = generated(rows=200)
    rows = stored_job(job_id).rows_out
    assert rows > 1000
    at = signed_in("alice", "pages/pipelines.py", job=job_id)
    assert f"Route: **{rows:,} raw rows > 1,000: the large route, Spark**." in texts(at.markdown)
    engine = at.radio(key=f"engine_of_{job_id}")
    assert (engine.options, engine.value) == (["auto", "pandas", "Spark"], "auto")  # the route's by default
    pandas, spark = (
        duration_text(fixed + per_row * rows) for fixed, per_row in DEFAULT_ENGINE_COSTS.values()
    )
    assert list(engine.proto.captions) == [f"Spark, about {spark}", f"about {pandas}", f"about {spark}"]
    told = f"Expected times for the job's {rows:,} raw rows. pandas: no past runs; a guess. Spark: no past "
    assert told + "runs; a guess." in texts(at.caption)

    engine.set_value("pandas").run()
    at.button(key="clean_now").click().run()
    [launched] = started
    assert texts(at.success) == [f"Cleaning job `{launched}` launched on pandas; it runs in the background."]
    assert (stored_job(launched).route, stored_job(launched).params["engine"]) == ("large", "pandas")
    assert service.execute_job(launched).engine == "pandas"  # a large batch, cleaned in-process as chosen
    at.run()
    assert texts(at.success) == []  # the run it told of has ended; the runs table shows how
    assert at.dataframe[0].value[["job", "state", "engine"]].values.tolist() == [
        [launched, "succeeded", "pandas"]
    ]

    other = generated(rows=10)  # Spark learns from two past runs: 25 s plus 5 ms a row
    past_cleaning(other, "spark", 1_000, 30.0)
    past_cleaning(other, "spark", 3_000, 40.0)
    at.run()
    engine = at.radio(key=f"engine_of_{job_id}")
    assert engine.value == "pandas"  # the choice stays while the times beside it change
    assert engine.proto.captions[0] == f"Spark, about {duration_text(25 + 0.005 * rows)}"
    [told] = [c for c in texts(at.caption) if c.startswith("Expected times")]
    assert " pandas: from " in told and told.endswith(" Spark: from 2 past runs.")


def test_pipelines_tell_of_a_run_already_on_its_way_only_while_it_is(started):
    job_id = generated(rows=40)
    at = signed_in("alice", "pages/pipelines.py", job=job_id)
    at.button(key="queue").click().run()
    [queued] = at.dataframe[0].value["job"].tolist()
    at.button(key="queue").click().run()
    already = f"Cleaning job `{queued}` of this data is already queued for the scheduled run"
    assert texts(at.info) == [f"{already}; no second run was started."]
    at.run()  # told while the run waits
    assert texts(at.info) == [f"{already}; no second run was started."]
    service.execute_job(queued)
    at.run()
    assert texts(at.info) == [] and texts(at.success) == []
    assert at.dataframe[0].value["state"].tolist() == ["succeeded"]


def test_pipelines_say_which_engine_a_waiting_run_keeps(started):
    job_id = generated(rows=40)
    at = signed_in("alice", "pages/pipelines.py", job=job_id)
    at.radio(key=f"engine_of_{job_id}").set_value("spark").run()
    at.button(key="queue").click().run()
    [queued] = at.dataframe[0].value["job"].tolist()
    assert texts(at.success)[0].startswith(
        f"Cleaning job `{queued}` is queued; the scheduler cleans it on spark"
    )
    at.radio(key=f"engine_of_{job_id}").set_value("pandas").run()
    at.button(key="clean_now").click().run()  # the waiting job starts now, as it was launched
    assert texts(at.success) == [
        f"Cleaning job `{queued}` was waiting for the scheduled run; it runs now, on spark."
    ]
    assert (started, stored_job(queued).params["engine"]) == ([queued], "spark")


def test_jobs_tell_what_cancel_and_retry_did_until_the_user_moves_on(started):
    parent = generated()
    queued = service.launch_clean("alice", parent).job.job_id
    at = signed_in("alice", "pages/jobs.py", job=queued)
    at.button(key="cancel").click().run()
    cancelled = f"Job `{queued}` is cancelled."
    assert texts(at.success) == [cancelled]
    at.run()  # a refresh: still told
    assert texts(at.success) == [cancelled]
    assert (
        f"**clean** job of `alice`, **cancelled**, route small, cleaning `{parent}`, 0 attempt(s). "
        "Lives on **this machine**." in texts(at.markdown)
    )

    at.button(key="retry").click().run()
    [again] = started
    assert at.selectbox(key="job_detail").value == again and at.query_params["job"] == again  # opened
    retried = f"Cleaning of `{parent}` runs again as `{again}`, a retry of `{queued}`."
    assert texts(at.success) == [retried]  # the cancel is no longer told: another action was taken
    at.run()
    assert texts(at.success) == [retried]

    at.selectbox(key="job_detail").set_value(queued).run()  # another job: the message goes
    assert texts(at.success) == []
    at.selectbox(key="job_detail").set_value(again).run()
    assert texts(at.success) == []

    elsewhere = service.launch_clean("alice", parent).job.job_id  # a second tab, say, cleans it again
    assert elsewhere == again
    at.selectbox(key="job_detail").set_value(queued).run()
    at.button(key="retry").click().run()
    already = f"Cleaning job `{again}` of this data is already queued; no second run was started."
    assert texts(at.info)[0] == already and at.selectbox(key="job_detail").value == again
    assert started == [again]
    service.execute_job(again)
    at.run()  # the run it told of has ended
    assert already not in texts(at.info)
    assert stored_job(again).state == "succeeded"


def test_jobs_tell_why_a_retry_launched_nothing_until_the_user_moves_on(started, monkeypatch):
    parent = generated()
    failed = service.launch_clean("alice", parent).job.job_id
    store = JobStore.default()
    try:
        store.fail(failed, "the warehouse did not answer")
    finally:
        store.close()
    at = signed_in("alice", "pages/jobs.py", job=failed)
    monkeypatch.setattr(LocalLake, "free_bytes", lambda lake: 1000)  # other jobs filled the disk
    at.button(key="retry").click().run()
    [refused, own] = texts(at.error)  # above the details, with the job's own error
    assert refused.startswith(f"Nothing launched. job_id: the lake's disk would fill up: cleaning {parent} ")
    assert own == "the warehouse did not answer"
    at.run()
    assert texts(at.error) == [refused, own]
    assert at.selectbox(key="job_detail").value == failed and started == []
