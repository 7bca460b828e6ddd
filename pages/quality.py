"""Data quality: profile a layer of a job; headline scores, per-column and per-rule charts, failing rows,
the score against the answer key, before and after (raw against silver, or any other stored run of the
owner), the history of stored runs, and download the report (built when clicked)."""

from functools import partial

import plotly.express as px
import streamlit as st

from orchestrator import quality
from orchestrator.errors import WorkbenchError
from orchestrator.jobs.store import KIND_CLEAN, SUCCEEDED, JobStore
from orchestrator.ui_support import (
    REPORT_MIME,
    column_comparison_frame,
    columns_frame,
    comparison_choices,
    comparison_frame,
    history_frame,
    report_file,
    rules_frame,
    samples_frame,
    scores_frame,
)
from pages._session import checked_download

CHART_ROWS = 25

if "user" not in st.session_state:  # opened by URL before the frame ran (see app.py): log in first
    st.switch_page("app.py")
st.title("Data quality")
user, is_admin = st.session_state["user"], st.session_state["is_admin"]

store = JobStore.default()
try:
    jobs = [j for j in store.list_jobs(user, is_admin) if j.state == SUCCEEDED]
    asked = st.query_params.get("job")
    if asked:
        try:
            found = store.get(asked, user=user, is_admin=is_admin)
        except WorkbenchError as error:
            st.error(f"{error}. Choose one of your finished jobs below.")
            asked = None
        else:
            if found.state != SUCCEEDED:
                st.error(f"Job {asked} is {found.state}; only a finished job has data to profile.")
                asked = None
            elif found.job_id not in [j.job_id for j in jobs]:
                jobs.insert(0, found)
finally:
    store.close()
if not jobs:
    st.info("No finished jobs yet. Generate a data set, then clean it.")
    st.stop()

by_id = {j.job_id: j for j in jobs}
left, right = st.columns([3, 1])
chosen = left.selectbox(
    "Job",
    list(by_id),
    index=list(by_id).index(asked) if asked in by_id else 0,
    format_func=lambda i: f"{i} ({by_id[i].kind}, {by_id[i].user})",
)
job = by_id[chosen]
layers = ["silver", "gold"] if job.kind == KIND_CLEAN else ["raw"]
wanted_layer = st.query_params.get("layer")
layer = right.selectbox("Layer", layers, index=layers.index(wanted_layer) if wanted_layer in layers else 0)
st.query_params.update(job=job.job_id, layer=layer)


def _profile(job_id: str, layer: str) -> None:
    bar = st.progress(0.0, text=f"Profiling {layer}...")
    try:
        quality.profile_job(
            job.user, job_id, layer, progress=lambda done, message: bar.progress(min(done, 1.0), message)
        )
    except WorkbenchError as error:
        bar.empty()
        st.error(f"Profiling failed. {error}")
        st.stop()
    bar.empty()


run = quality.latest_run(job.user, job.job_id, layer)
if run is None:
    st.info(f"The {layer} layer of {job.job_id} has not been profiled yet.")
    if st.button(f"Profile {layer}", type="primary"):
        _profile(job.job_id, layer)
        st.rerun()
    st.stop()

failing = [r for r in run.rules if r.status == "failed"]
metrics = st.columns(5)
metrics[0].metric("Rows", f"{sum(t.rows for t in run.tables):,}")
metrics[1].metric("Tables", len(run.tables))
metrics[2].metric("Rules failing", f"{len(failing)} of {len(run.rules)}")
if run.score and run.score.layer == "raw":
    metrics[3].metric("Recall of the rules", f"{run.score.totals['recall']:.1%}")
    metrics[4].metric("Precision of the rules", f"{run.score.totals['precision']:.1%}")
elif run.score:
    metrics[3].metric("Cell accuracy", f"{run.score.totals['cell_accuracy']:.1%}")
    totals = run.score.totals
    metrics[4].metric(
        "Wrong values left",
        f"{totals['remaining']:,}",
        help=f"of {totals['injected']:,} injected errors: {totals['fixed']:,} fixed, "
        f"{totals['nulled']:,} set aside as null (caught, not repairable), "
        "the rest quarantined with their rows",
    )
st.caption(f"Profiled {run.created_at} in {run.seconds:.1f} s (run {run.run_id}).")
if st.button("Profile again"):
    _profile(job.job_id, layer)
    st.rerun()

rules = rules_frame(run)
columns = columns_frame(run)
chart_left, chart_right = st.columns(2)
with chart_left:
    st.subheader("Completeness per column")
    data = columns[~columns["column"].str.startswith("_")]  # not silver's bookkeeping (_issues, _raw_line)
    worst = data.assign(name=data["table"] + "." + data["column"]).nsmallest(CHART_ROWS, "completeness")
    figure = px.bar(worst, x="completeness", y="name", orientation="h", range_x=[0, 1])
    figure.update_layout(yaxis={"autorange": "reversed", "title": None}, height=600, margin={"t": 10})
    st.plotly_chart(figure, key="columns_chart")
with chart_right:
    st.subheader("Failing rows per rule")
    top = rules[rules["failed"] > 0].nlargest(CHART_ROWS, "share")
    figure = px.bar(top, x="share", y="rule", orientation="h", color="severity", hover_data=["failed"])
    figure.update_layout(yaxis={"autorange": "reversed", "title": None}, height=600, margin={"t": 10})
    st.plotly_chart(figure, key="rules_chart")

with st.expander("All rules and columns"):
    st.dataframe(rules, hide_index=True)
    st.dataframe(columns, hide_index=True)

st.subheader("Failing rows")
if failing:
    rule_id = st.selectbox(
        "Rule", [r.rule_id for r in failing], format_func=lambda r: f"{r} ({run.rule(r).failed:,} rows)"
    )
    st.caption(run.rule(rule_id).description)
    st.dataframe(samples_frame(run, rule_id), hide_index=True)
else:
    st.success("No rule fails on this layer.")

if run.score:
    st.subheader("Against the answer key")
    st.dataframe(scores_frame(run), hide_index=True)

st.subheader("Before and after")
history = quality.run_history(job.user)
choices = comparison_choices(history, job, layer)
source = (  # the newest run of the raw this silver came from; history is newest first
    next((h["run_id"] for h in history if (h["job_id"], h["layer"]) == (job.parent_id, "raw")), None)
    if layer == "silver"
    else None
)
if layer == "silver" and source is None:
    st.info(f"Profile the raw layer of {job.parent_id} to compare it with this silver layer.")
    if st.button("Profile raw"):
        _profile(job.parent_id, "raw")
        st.rerun()
wanted = st.query_params.get("against")
if wanted and wanted not in choices:
    if wanted not in {
        h["run_id"] for h in history
    }:  # the owner's run of a layer that does not compare: dropped
        st.error(f"There is no stored run {wanted} of {job.user}. Choose one of the stored runs below.")
    wanted = None
default = wanted or source
against = st.selectbox(
    "Compare with",
    list(choices),
    index=list(choices).index(default) if default else None,
    format_func=choices.get,
    placeholder="a stored run of another job or layer" if choices else "no other run is stored yet",
)
comparison = None
if against:
    st.query_params["against"] = against
    before = quality.load_run(against)
    comparison = quality.compare(before, run)
    sides = st.columns(2)
    for side, shown, when in zip(sides, (before, run), ("Before", "After"), strict=True):
        side.metric(
            f"{when}: {shown.layer} of {shown.job_id}, rules failing",
            sum(r.status == "failed" for r in shown.rules),
            help=f"Failing rows summed over all rules: {sum(r.failed for r in shown.rules):,}; "
            f"rows: {sum(t.rows for t in shown.tables):,}",
        )
    st.dataframe(comparison_frame(comparison), hide_index=True)
    st.caption("Columns whose completeness or distinct count changed")
    st.dataframe(column_comparison_frame(comparison), hide_index=True)
else:
    st.query_params.pop("against", None)
with st.expander(f"History: every stored run of {job.user} ({len(history)})"):
    st.dataframe(history_frame(history), hide_index=True)

st.subheader("Reports")
downloads = st.columns(len(REPORT_MIME))
for column, (format, mime) in zip(downloads, REPORT_MIME.items(), strict=True):
    column.download_button(
        format.upper(),
        data=checked_download(partial(report_file, run, format, comparison)),
        file_name=f"quality-{run.job_id}-{run.layer}.{format}",
        mime=mime,
        key=f"report_{format}",
        on_click="ignore",
    )
