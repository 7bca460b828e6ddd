"""Pipelines: clean a generated job with one click, now or at its route's next scheduled run, seeing why
the route was chosen, the time each engine is expected to take (the route's own by default, or another one
picked) and where the output goes. A second click while the job's cleaning is queued or running shows that
run instead of starting another (a job queued for the scheduler is started at once by "Clean now"); the
runs follow a queued or running job without a click, and what a click launched is told until that run
ends."""

import streamlit as st

from orchestrator import worker
from orchestrator.cleaning.engines import AUTO, ENGINES, LABELS
from orchestrator.cleaning.pipeline import check_room, cleaning_bytes, read_manifest
from orchestrator.clouds import CLOUDS
from orchestrator.config import get_settings
from orchestrator.domain.sizes import size_text
from orchestrator.errors import InvalidInput, WorkbenchError
from orchestrator.jobs import placement
from orchestrator.jobs.store import (
    ACTIVE_STATES,
    KIND_CLEAN,
    KIND_GENERATE,
    RUNNING,
    SUCCEEDED,
    Job,
    JobStore,
)
from orchestrator.service import (
    Launched,
    clean_now,
    job_outputs,
    launch_clean,
    resolve_engine,
    waits_for_schedule,
)
from orchestrator.storage import open_lake
from orchestrator.ui_support import (
    REFRESH_SECONDS,
    destinations,
    duration_text,
    engine_costs,
    outputs_frame,
    route_of,
    route_reason,
    schedule_of,
    scheduler_status,
    timings_frame,
)
from pages._session import session_fragment
from pages._tables import show_jobs

LAUNCH = "pipelines_launch"  # session_state: the last launch on this tab, told while its run is live

if "user" not in st.session_state:  # opened by URL before the frame ran (see app.py): log in first
    st.switch_page("app.py")
st.title("Pipelines")
user, is_admin = st.session_state["user"], st.session_state["is_admin"]
settings = get_settings()

store = JobStore.default()
try:
    generated = [j for j in store.list_jobs(user, is_admin, kind=KIND_GENERATE) if j.state == SUCCEEDED]
    asked = st.query_params.get("job")
    if asked:
        try:
            job = store.get(asked, user=user, is_admin=is_admin)
        except WorkbenchError as error:
            st.error(f"{error}. Choose one of your generated jobs below.")
            job = None
        if job is not None and job.kind != KIND_GENERATE:
            st.error(f"Job {asked} is a {job.kind} job; choose the generated job it cleans.")
        elif job is not None and job.job_id not in [j.job_id for j in generated]:
            generated.insert(0, job)
    if not generated:
        st.info("No generated data yet. Generate a data set first.")
        st.page_link("pages/generate.py", label="Generate data", icon=":material/add:")
        st.stop()
    by_id = {j.job_id: j for j in generated}
    chosen = st.selectbox(
        "Generated job",
        list(by_id),
        index=list(by_id).index(asked) if asked in by_id else 0,
        format_func=lambda i: f"{i} ({by_id[i].user}, {by_id[i].rows_out or 0:,} rows)",
    )
    source = by_id[chosen]
    st.query_params["job"] = source.job_id
    if source.state != SUCCEEDED:
        st.error(f"Job {source.job_id} is {source.state}; only a finished generation can be cleaned.")
        st.stop()
    holding = placement.clouds_of(source, settings)
    cloud = holding[0]
    if len(holding) > 1:  # a synced copy: clean it where the analyst chooses
        cloud = st.radio(
            "Clean on",
            holding,
            format_func=lambda c: CLOUDS[c].label,
            horizontal=True,
            key=f"cloud_of_{source.job_id}",
            help="The clouds holding this data: its own, and those a sync copied it to",
        )
    lake = open_lake(settings.on_cloud(cloud))
    rows = source.rows_out or 0
    route = route_of(rows, settings)
    automatic = resolve_engine(AUTO, route)
    st.markdown(f"Route: **{route_reason(rows, settings)}**.")
    costs = engine_costs()
    choices = [AUTO, *ENGINES]

    def expected(choice: str) -> str:
        """The time a choice is expected to take on this data, with the engine "auto" stands for."""
        engine = automatic if choice == AUTO else choice
        seconds = f"about {duration_text(costs[engine].seconds(rows))}"
        return f"{LABELS[engine]}, {seconds}" if choice == AUTO else seconds

    engine = st.radio(
        "Engine",
        choices,
        format_func=LABELS.get,
        captions=[expected(choice) for choice in choices],
        horizontal=True,
        key=f"engine_of_{source.job_id}",  # kept per job, whatever the times shown beside it
        help="auto takes the route's engine; pandas cleans in one process, Spark in a Spark run",
    )
    st.caption(
        f"Expected times for the job's {rows:,} raw rows. "
        + " ".join(f"{LABELS[e]}: {costs[e].basis}." for e in ENGINES)
    )

    next_run = worker.next_run(route, settings)
    st.markdown(
        f"The scheduler cleans {route} batches {schedule_of(route, settings)}; its next run is at "
        f"**{next_run:%Y-%m-%d %H:%M} UTC**. Clean now, or queue the job for that run."
    )
    scheduling, status = scheduler_status(settings)
    if not scheduling:
        st.warning(f"Scheduler: {status}.")
    manifest = read_manifest(lake, source.user, source.job_id)
    try:
        check_room(settings, lake, manifest)
    except InvalidInput as error:  # told before a click, as the Generate page tells a data set too large
        refusal = str(error).split(": ", 1)[1]
        st.error(f"{refusal[0].upper()}{refusal[1:]}.")
        full = True
    else:
        full = False
        if (free := lake.free_bytes()) is not None:
            need = size_text(cleaning_bytes(settings, manifest))
            st.caption(f"Cleaning writes about {need} on the lake's disk, which has {size_text(free)} free.")
    now_column, later_column = st.columns(2, width=480)
    clean = now_column.button("Clean now", key="clean_now", type="primary", width="stretch", disabled=full)
    # keyed: the label moves with the clock, and a click must survive the rerun that moves it
    queue_label = f"Queue for {next_run:%H:%M} UTC"
    queue = later_column.button(queue_label, key="queue", width="stretch", disabled=full)
    if clean or queue:
        try:
            if clean:
                launched = clean_now(source.user, source.job_id, engine=engine, cloud=cloud)
            else:
                launched = launch_clean(
                    source.user, source.job_id, engine=engine, scheduled=True, cloud=cloud
                )
        except WorkbenchError as error:
            st.error(f"Nothing launched. {error}")
        else:
            st.session_state[LAUNCH] = {"source": source.job_id, "launched": launched, "at": next_run}

    runs = store.list_jobs(user, is_admin, kind=KIND_CLEAN, parent_id=source.job_id)
finally:
    store.close()


def _launch_notice(source_id: str, runs: list[Job]) -> None:
    """What the last click on this tab launched for this data, for as long as that run is queued or
    running; once it ends, or other data is chosen, the runs table says the rest."""
    notice = st.session_state.get(LAUNCH)
    if notice is None or notice["source"] != source_id:
        return
    launched: Launched = notice["launched"]
    job = next((run for run in runs if run.job_id == launched.job.job_id), None)
    if job is None or job.state not in ACTIVE_STATES:
        del st.session_state[LAUNCH]
        return
    named, at = f"Cleaning job `{job.job_id}`", f"{notice['at']:%H:%M} UTC"
    if launched.started and launched.created:
        st.success(f"{named} launched on {launched.engine}; it runs in the background.")
    elif launched.started:
        st.success(f"{named} was waiting for the scheduled run; it runs now, on {launched.engine}.")
    elif launched.created:
        st.success(f"{named} is queued; the scheduler cleans it on {launched.engine} at {at}.")
    else:
        state = f"{job.state}{' for the scheduled run' if waits_for_schedule(job) else ''}"
        st.info(f"{named} of this data is already {state}; no second run was started.")


def _runs(source_id: str) -> None:
    """The cleaning runs of the data, newest first, and where the newest one writes."""
    store = JobStore.default()
    try:
        runs = store.list_jobs(user, is_admin, kind=KIND_CLEAN, parent_id=source_id)
    finally:
        store.close()
    _launch_notice(source_id, runs)
    st.subheader("Cleaning runs of this data")
    show_jobs(runs)
    latest = runs[0]
    if latest.state == RUNNING and latest.progress is not None:  # the share of its engine's stages done
        st.progress(latest.progress, text=latest.progress_text)
    st.markdown(f"Destinations of `{latest.job_id}` ({latest.state}):")
    st.dataframe(destinations(settings, latest.user, latest.parent_id, latest.job_id), hide_index=True)
    outputs = job_outputs(latest, settings)
    if outputs:
        st.dataframe(outputs_frame(outputs), hide_index=True)
    if latest.timings:  # stage by stage as they end, a Spark run's own stages among them
        st.markdown(f"Time per stage of `{latest.job_id}`:")
        st.dataframe(timings_frame(latest), hide_index=True)
    st.page_link("pages/jobs.py", label="Follow it on the Jobs page", icon=":material/list:")


if runs:  # while the newest run is queued or running, the table follows it without a click
    session_fragment(run_every=REFRESH_SECONDS if runs[0].state in ACTIVE_STATES else None)(_runs)(
        source.job_id
    )
else:
    st.caption(
        "A run writes silver, quarantine and gold folders of its own in the lake, then loads the warehouse "
        "and the operational database."
    )
