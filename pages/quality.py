"""Data quality: profile a layer of a job; headline scores with errors and warnings apart, per-column and
per-rule charts, failing rows whole (raw beside cleaned, with the answer key), the score against the answer
key, before and after (raw against silver, or any other stored run of the owner), the history of stored runs,
and download the report (built when clicked)."""

from datetime import datetime
from functools import partial

import pandas as pd
import plotly.express as px
import streamlit as st
from pandas.io.formats.style import Styler

from orchestrator import quality
from orchestrator.domain.rules import ERROR, WARNING
from orchestrator.errors import WorkbenchError
from orchestrator.jobs.store import FAILED, KIND_CLEAN, SUCCEEDED, Job, JobStore
from orchestrator.quality.model import NULL_ALLOWED, SEVERITIES
from orchestrator.quality.report import SEVERITY_COLOURS
from orchestrator.service import PROFILE_LOST, background_profile
from orchestrator.ui_support import (
    MISSING,
    REFRESH_SECONDS,
    REPORT_MIME,
    column_comparison_frame,
    columns_frame,
    comparison_choices,
    comparison_frame,
    failing_rows_frame,
    history_frame,
    report_file,
    row_frame,
    rules_frame,
    samples_frame,
    scores_frame,
)
from pages._session import checked_download, session_fragment

CHART_ROWS = 25
SEVERITY_MEANINGS = {
    ERROR: "a row failing one is unusable, and silver must pass every one",
    WARNING: "an incomplete optional value, reported only: cleaning keeps the row and sets a value it "
    "cannot repair to null",
}
_PERCENT = st.column_config.NumberColumn(format="percent")
_COUNT = st.column_config.NumberColumn(format="localized")
_STATE = st.column_config.TextColumn(width=100)
# How the tables of this page show a column, by heading: counts with thousands separators, shares as
# percentages, states wide enough to read, times in UTC.
COLUMN_CONFIG = {
    **dict.fromkeys(
        (
            "share failing",
            "completeness",
            "recall",
            "precision",
            "share before",
            "share after",
            "completeness before",
            "completeness after",
        ),
        _PERCENT,
    ),
    **dict.fromkeys(
        (
            "rows",
            "present",
            "distinct",
            "rows checked",
            "rows failing",
            "injected",
            "judgeable",
            "detected",
            "flagged",
            "correct flags",
            "fixed",
            "nulled",
            "remaining",
            "quarantined",
            "dropped",
            "failing before",
            "failing after",
            "change",
            "distinct before",
            "distinct after",
            "errors failing",
            "warnings failing",
            "rows failing errors",
            "rows failing warnings",
        ),
        _COUNT,
    ),
    **dict.fromkeys(("status", "status before", "status after", "severity", "layer"), _STATE),
    "description": st.column_config.TextColumn(width="large"),
    "run": st.column_config.TextColumn(width="medium"),
    "job": st.column_config.TextColumn(width="medium"),
    MISSING: st.column_config.TextColumn(
        width=110,
        help="error: the row is unusable without it; warning: reported as incomplete; "
        "allowed: null by design, no rule asks for a value",
    ),
    "profiled": st.column_config.DatetimeColumn(
        format="localized", timezone="UTC", help="When the run was profiled, in UTC"
    ),
    "answer key: kind": st.column_config.TextColumn(help="The error the generator injected in this cell"),
    "answer key: clean": st.column_config.TextColumn(help="The cell's true value, as JSON text"),
    "answer key: dirty": st.column_config.TextColumn(help="What the generator wrote to raw, as JSON text"),
}


def _table(frame: pd.DataFrame | Styler) -> None:
    """A table of this page, each column shown as COLUMN_CONFIG says."""
    headings = frame.columns if isinstance(frame, pd.DataFrame) else frame.data.columns
    config = {heading: COLUMN_CONFIG[heading] for heading in headings if heading in COLUMN_CONFIG}
    st.dataframe(frame, hide_index=True, column_config=config)


@st.cache_data(max_entries=64, show_spinner="Reading the failing rows...")
def _failing_rows(run_id: str, rule_id: str, _run: quality.QualityRun) -> list[quality.FailingRow]:
    """A rule's failing rows whole, read once per run and rule (the run's id names its data)."""
    return quality.failing_rows(_run, rule_id)


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


@session_fragment(run_every=REFRESH_SECONDS)
def _profiling(cleaning_id: str, layer: str, what: str) -> None:
    """Say that the profile the cleaning started in the background works on ``layer``; once it has moved on
    (stored it, failed, or its process was lost), show the page anew."""
    store = JobStore.default()
    try:
        profile = background_profile(store.get(cleaning_id))
    except WorkbenchError:  # deleted meanwhile
        profile = None
    finally:
        store.close()
    if profile is None or not profile.works_on(layer):
        st.rerun()
    st.info(profile.under_way(what))


def _after_cleaning(cleaning: Job, layer: str, what: str) -> bool:
    """Whether the profile ``cleaning`` started in the background works on ``layer`` now (said, and
    followed); else why it stored nothing there, if it failed or its process was lost."""
    profile = background_profile(cleaning)
    if profile is None or profile.layer != layer:
        return False
    if profile.works_on(layer):
        _profiling(cleaning.job_id, layer, what)
        return True
    if profile.state == FAILED:
        st.warning(f"Profiling {what} in the background after the cleaning failed: {profile.error}")
    elif profile.state == PROFILE_LOST:
        st.warning(f"Profiling {what} in the background after the cleaning stopped (its process was lost).")
    return False


def _cleaning_profiling_raw(generation: Job) -> Job | None:
    """The newest cleaning of ``generation`` whose background profile came to its raw, if any."""
    store = JobStore.default()
    try:
        cleanings = store.list_jobs(user, is_admin, kind=KIND_CLEAN, parent_id=generation.job_id)
    finally:
        store.close()
    return next((c for c in cleanings if (p := background_profile(c)) and p.layer == "raw"), None)


run = quality.latest_run(job.user, job.job_id, layer)
if run is None:
    cleaning = job if job.kind == KIND_CLEAN else _cleaning_profiling_raw(job)
    if cleaning is not None and _after_cleaning(cleaning, layer, layer):
        st.stop()
    st.info(f"The {layer} layer of {job.job_id} has not been profiled yet.")
    if st.button(f"Profile {layer}", type="primary"):
        _profile(job.job_id, layer)
        st.rerun()
    st.stop()

summary = run.summary()
metrics = st.columns(6)
metrics[0].metric("Rows", f"{sum(t.rows for t in run.tables):,}")
metrics[1].metric("Tables", len(run.tables))
for column, severity in zip(metrics[2:4], SEVERITIES, strict=True):
    counts = summary[severity]
    column.metric(
        f"{severity.capitalize()}s failing",
        f"{counts.failing:,} of {counts.rules:,}",
        help=f"Rules of severity {severity} that fail, of those that ran ({counts.skipped:,} skipped): "
        f"{SEVERITY_MEANINGS[severity]}. {counts.failed_rows:,} failing rows, summed over the rules.",
    )
if run.score and run.score.layer == "raw":
    metrics[4].metric("Recall of the rules", f"{run.score.totals['recall']:.1%}")
    metrics[5].metric("Precision of the rules", f"{run.score.totals['precision']:.1%}")
elif run.score:
    metrics[4].metric("Cell accuracy", f"{run.score.totals['cell_accuracy']:.1%}")
    totals = run.score.totals
    metrics[5].metric(
        "Wrong values left",
        f"{totals['remaining']:,}",
        help=f"of {totals['injected']:,} injected errors: {totals['fixed']:,} fixed, "
        f"{totals['nulled']:,} set aside as null (caught, not repairable), "
        "the rest quarantined with their rows",
    )
profiled = datetime.fromisoformat(run.created_at)
st.caption(f"Profiled {profiled:%Y-%m-%d %H:%M} UTC in {run.seconds:.1f} s (run {run.run_id}).")
if st.button("Profile again"):
    _profile(job.job_id, layer)
    st.rerun()

rules = rules_frame(run)
columns = columns_frame(run)
chart_left, chart_right = st.columns(2)
with chart_left:
    st.subheader("Completeness per column")
    data = columns[~columns["column"].str.startswith("_")]  # not silver's bookkeeping (_issues, _raw_line)
    by_design = data[MISSING] == NULL_ALLOWED
    named = data.assign(name=data["table"] + "." + data["column"])
    worst = named[~by_design].nsmallest(CHART_ROWS, "completeness")
    figure = px.bar(
        worst,
        x="completeness",
        y="name",
        orientation="h",
        range_x=[0, 1],
        color=MISSING,
        color_discrete_map=SEVERITY_COLOURS,
        hover_data={"present": ":,", "rows": ":,"},
    )
    figure.update_layout(
        xaxis={"tickformat": ".0%"},
        yaxis={"categoryorder": "array", "categoryarray": list(worst["name"]), "autorange": "reversed"},
        yaxis_title=None,
        height=600,
        margin={"t": 10},
    )
    st.plotly_chart(figure, key="columns_chart")
    if by_design.any():
        apart = named[by_design].sort_values("completeness")
        st.caption(
            "Left out, empty by design (no rule asks for a value): "
            + ", ".join(
                f"{n} ({c:.0%} present)" for n, c in zip(apart["name"], apart["completeness"], strict=True)
            )
            + "."
        )
with chart_right:
    st.subheader("Failing rows per rule")
    failed = rules[rules["rows failing"] > 0]
    order = failed["severity"].map(list(SEVERITIES).index)  # errors first, then by rows failing
    ranked = failed.assign(_order=order).sort_values(["_order", "rows failing"], ascending=[True, False])
    each = CHART_ROWS // max(ranked["severity"].nunique(), 1)  # warnings never crowd out every error
    top = ranked.groupby("severity", sort=False).head(each)
    figure = px.bar(
        top,
        x="rows failing",
        y="rule",
        orientation="h",
        color="severity",
        color_discrete_map=SEVERITY_COLOURS,
        category_orders={"severity": list(SEVERITIES)},
        text="rows failing",
        hover_data={"share failing": ":.2%"},
    )
    figure.update_traces(texttemplate="%{x:,}", textposition="outside", cliponaxis=False)
    figure.update_layout(
        yaxis={"categoryorder": "array", "categoryarray": list(top["rule"]), "autorange": "reversed"},
        yaxis_title=None,
        height=600,
        margin={"t": 10},
    )
    st.plotly_chart(figure, key="rules_chart")
    if len(top) < len(ranked):
        st.caption(
            f"The {each} rules of each severity failing the most rows; all {len(ranked):,} failing rules are "
            "under Failing rows."
        )

with st.expander("All rules and columns"):
    _table(rules)
    _table(columns)

st.subheader("Failing rows")
failing = run.failing()
if failing:
    rule_id = st.selectbox(
        "Rule",
        [r.rule_id for r in failing],
        format_func=lambda r: f"{r} ({run.rule(r).failed:,} rows, {run.rule(r).severity})",
    )
    rule = run.rule(rule_id)
    st.caption(
        f"{rule.severity.capitalize()} rule: {rule.description}. {rule.failed:,} rows fail "
        f"({rule.share:.2%} of the table); the first {len(rule.samples):,} are kept with the run."
    )
    try:
        rows = _failing_rows(run.run_id, rule_id, run)
    except WorkbenchError as error:
        st.warning(f"The whole rows cannot be read: {error}. The failing cells kept with the run:")
        _table(samples_frame(run, rule_id))
        rows = []
    else:
        _table(failing_rows_frame(run, rule_id, rows))
    if rows:
        by_line = {row.line: row for row in rows}
        keys = {sample["line"]: sample.get("key") for sample in rule.samples}
        line = st.selectbox(
            "Row",
            list(by_line),
            format_func=lambda n: (
                f"line {n}"
                + (f" (raw line {by_line[n].raw_line})" if layer == "silver" else "")
                + f", key {keys.get(n)}"
            ),
        )
        shown = by_line[line]
        whole = "The raw line beside the cleaned row" if layer == "silver" else "The whole row"
        st.caption(f"{whole}, column by column; the rule's columns are coloured.")
        if run.score and not shown.answers:
            st.caption("The answer key holds no error for this line.")
        _table(row_frame(run, rule_id, shown))
else:
    st.success("No rule fails on this layer.")

if run.score:
    st.subheader("Against the answer key")
    _table(scores_frame(run))

st.subheader("Before and after")
history = quality.run_history(job.user)
choices = comparison_choices(history, job, layer)
source = (  # the newest run of the raw this silver came from; history is newest first
    next((h["run_id"] for h in history if (h["job_id"], h["layer"]) == (job.parent_id, "raw")), None)
    if layer == "silver"
    else None
)
if (
    layer == "silver"
    and source is None
    and not _after_cleaning(job, "raw", f"the raw layer of {job.parent_id}")
):
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
    for when, compared in (("Before", before), ("After", run)):
        counts = compared.summary()
        for side, severity in zip(st.columns(2), (ERROR, WARNING), strict=True):
            side.metric(
                f"{when}: {compared.layer} of {compared.job_id}, {severity}s failing",
                f"{counts[severity].failing:,} of {counts[severity].rules:,}",
                help=f"Failing rows summed over the {severity} rules: {counts[severity].failed_rows:,}; "
                f"rows: {sum(t.rows for t in compared.tables):,}",
            )
    _table(comparison_frame(comparison))
    st.caption("Columns whose completeness or distinct count changed")
    _table(column_comparison_frame(comparison))
else:
    st.query_params.pop("against", None)
with st.expander(f"History: every stored run of {job.user} ({len(history)})"):
    _table(history_frame(history))

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
