"""Jobs: every job of the user (everyone's for an administrator), refreshing itself while jobs run; the
details of one job with its error, quality summary and files to download; retry of a failed cleaning
(which opens the new job), cancel of a live job and delete of a finished one. What an action did is told
above the details until another job is chosen or another action taken."""

from functools import partial

import streamlit as st

from orchestrator import quality, worker
from orchestrator.clouds import CLOUDS
from orchestrator.config import get_settings
from orchestrator.errors import NotFound, WorkbenchError
from orchestrator.jobs import placement
from orchestrator.jobs.store import (
    ACTIVE_STATES,
    CANCELLED,
    FAILED,
    KIND_CLEAN,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Job,
    JobStore,
)
from orchestrator.service import Launched, background_profile, clean_now, delete_job, waits_for_schedule
from orchestrator.sync import Synced, sync_job
from orchestrator.sync import targets as sync_targets
from orchestrator.ui_support import (
    DOWNLOAD_MAX_ROWS,
    REFRESH_SECONDS,
    bundle_file,
    failing_text,
    job_bundles,
    timings_frame,
)
from pages._session import checked_download, session_fragment
from pages._tables import show_jobs

SCORE_LABELS = {"recall": "recall", "precision": "precision", "cell_accuracy": "cell accuracy"}
NOTICE = "jobs_notice"  # session_state: what the last action on this tab did, and to which job
OPEN = "jobs_open"  # session_state: the job whose details the next run opens

if "user" not in st.session_state:  # opened by URL before the frame ran (see app.py): log in first
    st.switch_page("app.py")
st.title("Jobs")
user, is_admin = st.session_state["user"], st.session_state["is_admin"]


def _quality_summary(job: Job) -> None:
    layer = "silver" if job.kind == KIND_CLEAN else "raw"
    run = quality.latest_run(job.user, job.job_id, layer)
    profile = background_profile(job)
    if run is None and profile and profile.works_on(layer):
        st.caption(profile.under_way(layer))
    elif run is None:
        st.caption(f"The {layer} layer of this job has not been profiled yet.")
    else:
        summary = f"Quality of {layer}: {failing_text(run)}"
        if run.score:
            summary += "; " + ", ".join(
                f"{SCORE_LABELS[name]} {value:.1%}"
                for name, value in run.score.totals.items()
                if name in SCORE_LABELS
            )
        st.markdown(summary + ".")
    st.page_link(
        "pages/quality.py",
        label="Open in Data quality",
        icon=":material/analytics:",
        query_params={"job": job.job_id, "layer": layer},
    )


def _downloads(job: Job) -> None:
    bundles = job_bundles(job)
    if not bundles:
        return
    rows = job.rows_out or 0
    if rows > DOWNLOAD_MAX_ROWS:
        folders = ", ".join(f"`{folder}/`" for bundle in bundles for folder, _ in bundle.folders)
        st.caption(
            f"Downloads are offered up to {DOWNLOAD_MAX_ROWS:,} rows, since each is built in memory; the "
            f"{rows:,} rows of this job are in the lake under {folders}."
        )
        return
    settings = get_settings()
    as_csv = st.radio(
        "Files as",
        ("stored (JSON Lines, Parquet)", "CSV"),
        horizontal=True,
        key="download_format",
        help="CSV opens in a spreadsheet; a text cell that would run as a formula starts with ' there",
    ).startswith("CSV")
    suffix = "-csv.zip" if as_csv else ".zip"
    for column, bundle in zip(st.columns(len(bundles), width=320 * len(bundles)), bundles, strict=True):
        column.download_button(
            bundle.label,
            data=checked_download(partial(bundle_file, bundle, settings, as_csv)),
            file_name=bundle.file_name + suffix,
            mime="application/zip",
            key=f"download_{bundle.file_name}",
            on_click="ignore",
            icon=":material/download:",
            width="stretch",
        )


def _tell(job_id: str, level: str, text: str, *, while_live: bool = False) -> None:
    """Keep what an action did, to be shown above the details of ``job_id`` (opened on the next run) until
    another job is chosen or another action taken; ``while_live``, only while that job is queued or
    running, since the message says it runs."""
    st.session_state[NOTICE] = {"job": job_id, "level": level, "text": text, "while_live": while_live}
    st.session_state[OPEN] = job_id


def _notice(job: Job) -> None:
    """What the last action on this tab did, while its job is the one shown (see _tell)."""
    notice = st.session_state.get(NOTICE)
    if notice is None:
        return
    if notice["job"] != job.job_id or (notice["while_live"] and job.state not in ACTIVE_STATES):
        del st.session_state[NOTICE]  # the user moved on, or the run it tells of has ended
        return
    {"success": st.success, "info": st.info, "error": st.error}[notice["level"]](notice["text"])


def _clean_now(job: Job) -> Launched | None:
    """Clean the data ``job`` cleans, now, with its engine; None (and why, told) if refused."""
    try:
        return clean_now(job.user, job.parent_id, engine=job.params.get("engine", "auto"))
    except WorkbenchError as error:
        _tell(job.job_id, "error", f"Nothing launched. {error}")
        return None


def _tell_launch(launched: Launched, started: str) -> None:
    """Tell ``started`` if the click started the cleaning, else that it was already on its way."""
    job = launched.job
    if launched.started:
        _tell(job.job_id, "success", started, while_live=True)
        return
    state = f"{job.state}{' for the scheduled run' if waits_for_schedule(job) else ''}"
    text = f"Cleaning job `{job.job_id}` of this data is already {state}; no second run was started."
    _tell(job.job_id, "info", text, while_live=True)


def _actions(store: JobStore, job: Job) -> None:
    """Clean now, cancel and retry, each told above the details until the user moves on; then delete."""
    if waits_for_schedule(job) and st.button("Clean now", key="clean_now", type="primary"):
        if launched := _clean_now(job):
            _tell_launch(
                launched, f"Cleaning job `{launched.job.job_id}` runs now instead of at the scheduled run."
            )
        st.rerun()
    if job.state in ACTIVE_STATES and st.button("Cancel", key="cancel"):
        try:
            store.cancel(job.job_id, user=user, is_admin=is_admin)
        except WorkbenchError as error:
            _tell(job.job_id, "error", f"Not cancelled. {error}")
        else:
            _tell(job.job_id, "success", f"Job `{job.job_id}` is cancelled.")
        st.rerun()
    if job.kind == KIND_CLEAN and job.state in (FAILED, CANCELLED) and st.button("Retry", key="retry"):
        if launched := _clean_now(job):
            again = f"Cleaning of `{job.parent_id}` runs again as `{launched.job.job_id}`"
            _tell_launch(launched, f"{again}, a retry of `{job.job_id}`.")
        st.rerun()
    if job.state == SUCCEEDED:
        _sync(job)
    if job.state not in ACTIVE_STATES:
        _delete(store, job)


def _sync(job: Job) -> None:
    """Copy the job (a generation with its cleanings) to another configured cloud, verified, with progress."""
    settings = get_settings()
    to_clouds = sync_targets(job, settings)
    if not to_clouds:
        if any(cloud not in placement.clouds_of(job, settings) for cloud in settings.clouds):
            st.caption(  # a cleaning made on a synced copy: a sync copies from where its data was generated
                f"Cleaned on the copy on {CLOUDS[placement.home(job, settings)].label}, so it is not synced: "
                "a sync copies a generation and the cleanings made on its own cloud."
            )
        return
    with st.popover("Sync to another cloud", icon=":material/cloud_sync:"):
        st.markdown(
            "Copies its raw data, truth and manifest, and the silver and gold of its cleanings; every file "
            "is checked by SHA-256 and nothing at the target is overwritten. Stopped, it goes on where it "
            "stopped."
        )
        to = st.selectbox("Copy to", to_clouds, format_func=lambda c: CLOUDS[c].label, key="sync_to")
        if not st.button("Sync", key="sync", type="primary"):
            return
        bar = st.progress(0.0, text="Starting…")
        try:
            synced = sync_job(
                job.job_id,
                to,
                user=user,
                is_admin=is_admin,
                progress=lambda done, total, what: bar.progress(
                    done / total, text=f"{done} of {total}: {what}"
                ),
            )
        except WorkbenchError as error:
            _tell(job.job_id, "error", f"Not synced; nothing at the target was overwritten. {error}")
        else:
            _tell(job.job_id, "success", _synced_text(synced))
    st.rerun()


def _synced_text(synced: Synced) -> str:
    """What a sync did, with the clouds as the pages name them."""
    jobs = ", ".join(f"`{j.job_id}`" for j in synced.jobs)
    return (
        f"Synced {jobs} from {CLOUDS[synced.source].label} to {CLOUDS[synced.target].label}: "
        f"{synced.copied} file(s) copied ({synced.bytes_copied / 1e6:.1f} MB), {synced.kept} already there "
        "and verified."
    )


def _delete(store: JobStore, job: Job) -> None:
    """Delete a finished job from every system, once confirmed; the page then lists the jobs left."""
    outputs = "silver, quarantine and gold files and rows in the warehouse and the operational database"
    if job.kind == KIND_CLEAN:
        what = f"its {outputs}"
    else:
        cleanings = len(store.list_jobs(job.user, parent_id=job.job_id))
        what = "its raw files and clean truth"
        if cleanings:
            what += f", its {cleanings} cleaning(s) with their {outputs}"
    with st.popover("Delete job", icon=":material/delete:"):
        st.markdown(f"Deletes `{job.job_id}` for good: {what}, the quality runs and the job records.")
        if not st.button("Delete for good", key="delete_job", type="primary"):
            return
        try:
            deletion = delete_job(job.job_id, user=user, is_admin=is_admin)
        except WorkbenchError as error:
            st.error(f"Nothing deleted. {error}")
            return
    st.session_state["jobs_deleted"] = deletion
    st.session_state.pop(NOTICE, None)
    del st.query_params["job"]
    st.rerun()


def _deleted_notice() -> None:
    """What the last delete on this tab took away, once."""
    deletion = st.session_state.pop("jobs_deleted", None)
    if deletion is None:
        return
    st.success(f"Deleted {', '.join(f'`{job.job_id}`' for job in deletion.jobs)}.")
    if deletion.pending:
        st.warning(
            f"Some of their data is still to be removed: {deletion.pending}. The scheduler removes it at its "
            "next run."
        )


def _details(store: JobStore, job: Job) -> None:
    st.subheader(f"Job {job.job_id}")
    st.markdown(
        f"**{job.kind}** job of `{job.user}`, **{job.state}**"
        + (f", route {job.route}" if job.route else "")
        + (f", engine {job.engine}" if job.engine else "")
        + (f", cleaning `{job.parent_id}`" if job.parent_id else "")
        + f", {job.attempts} attempt(s). Lives on **{placement.lives_on(job, get_settings())}**."
    )
    if job.state == RUNNING and job.progress is not None:  # a generation tells how far it has come
        st.progress(job.progress, text=job.progress_text)
    if job.remote_run:  # a Spark run cleans it: on which service, and where that service shows the run
        run = job.remote_run
        st.markdown(f"Spark run `{run['run_id']}` on **{run['service']}**, last seen {run['state']}.")
        if run["url"]:
            st.link_button(f"Open the run on {run['service']}", run["url"], icon=":material/open_in_new:")
    if job.error:
        (st.error if job.state == FAILED else st.warning)(job.error)
    if job.state == QUEUED and job.route:
        next_run = worker.next_run(job.route, get_settings())
        at = f"the scheduler's next {job.route} run, at {next_run:%H:%M} UTC"
        if waits_for_schedule(job):
            st.info(f"Queued for {at}. Clean now starts it at once.")
        else:
            st.info(f"Waiting for a worker; {at}, takes it if no other worker has.")
    if job.timings:
        st.dataframe(timings_frame(job), hide_index=True)
    _quality_summary(job)
    _downloads(job)
    _actions(store, job)


@session_fragment(run_every=REFRESH_SECONDS)
def _jobs(asked: str | None) -> None:
    store = JobStore.default()
    try:
        listed = store.list_jobs(user, is_admin)
        if not listed:
            st.info("No jobs yet. Generate a data set to start one.")
            return
        show_jobs(listed)
        ids = [j.job_id for j in listed]
        if asked and asked not in ids:
            ids.insert(0, asked)
        index = ids.index(asked) if asked else 0
        if (opened := st.session_state.pop(OPEN, None)) in ids:  # the job an action started, or acted on
            st.session_state["job_detail"], index = opened, 0  # the state chooses; no default beside it
        chosen = st.selectbox("Details of", ids, index=index, key="job_detail")
        try:
            job = store.get(chosen, user=user, is_admin=is_admin)
        except NotFound:  # deleted since this page was opened (in another tab, say)
            st.info(f"Job `{chosen}` was deleted.")
            return
        st.query_params["job"] = chosen
        _notice(job)
        _details(store, job)
    finally:
        store.close()


_deleted_notice()
asked = st.query_params.get("job")
if asked:
    store = JobStore.default()
    try:
        store.get(asked, user=user, is_admin=is_admin)
    except WorkbenchError as error:
        st.error(f"{error}. The list below holds the jobs you can open.")
        del st.query_params["job"]
        asked = None
    finally:
        store.close()
_jobs(asked)
