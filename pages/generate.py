"""Generate: a contract, its tables, rows, seed, locales and error rates (overall, per kind, per table); a
live preview with the injected errors marked, the route the job will take, then the generation itself, which
runs in a process of its own while the page follows its progress (and may stop it)."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from orchestrator import contracts
from orchestrator.cleaning.engines import AUTO, LABELS
from orchestrator.cleaning.pipeline import read_manifest
from orchestrator.clouds import CLOUDS
from orchestrator.config import get_settings
from orchestrator.contract_views import contract_label
from orchestrator.domain.sizes import size_text
from orchestrator.errors import NotFound, WorkbenchError
from orchestrator.generation.catalogue import KINDS, receivable
from orchestrator.generation.pools import LOCALES
from orchestrator.generation.spec import GenerationSpec
from orchestrator.jobs import placement
from orchestrator.jobs.store import ACTIVE_STATES, CANCELLED, FAILED, Job, JobStore
from orchestrator.service import GENERATION_SILENT_SECONDS, generate_in_background, resolve_engine
from orchestrator.storage import open_lake
from orchestrator.ui_support import preview, route_of
from pages._session import session_fragment

FOLLOW_SECONDS = 1.0  # how often a running generation's progress is read again
QUIET_SECONDS = 60  # a generation reports after every chunk, seconds apart: this long without is a worry

if "user" not in st.session_state:  # opened by URL before the frame ran (see app.py): log in first
    st.switch_page("app.py")
st.title("Generate data")
user = st.session_state["user"]
settings = get_settings()

# a job follows its owner's contracts, those that still validate
usable = {entry.ref: entry for entry in contracts.listed(user) if entry.source}
asked = st.query_params.get("contract")
if asked and asked not in usable:
    st.warning(f"There is no contract {asked} you may use; choose one below.")
ref = st.selectbox(
    "Contract",
    list(usable),
    index=list(usable).index(asked) if asked in usable else list(usable).index("shop"),
    format_func=lambda r: contract_label(usable[r]),
    key="contract",
)
st.query_params["contract"] = ref
source = usable[ref].source
contract = source.contract


BY_HAND = "rates_set_by_hand"  # session_state: keys of the rate sliders the user moved; the others follow
MOVED = "_rates_moved"  # session_state: rate sliders whose value changed in this interaction
RATE_MOVED = "_error_rate_moved"  # session_state: the overall rate changed in this interaction


def _default(kind: str, error_rate: float) -> float:
    return round(error_rate * KINDS[kind].weight, 3)


def _moved(key: str) -> None:
    """A rate slider's value changed (its on_change): the user moved it, unless the overall rate moved too."""
    st.session_state.setdefault(MOVED, set()).add(key)


def _rate_moved() -> None:
    st.session_state[RATE_MOVED] = True


def _table_key(table: str) -> str:
    """A table's rate slider, one per contract and table: another contract's table starts afresh."""
    return f"table_{ref}:{table}"


def _follow_overall_rate(error_rate: float) -> None:
    """Every kind and table rate the user has not moved takes its default for ``error_rate``, set before the
    sliders are drawn, so they follow however quickly and in whatever order the overall rate moved.

    A rate slider that changes together with the overall rate was not moved by the user: a browser that had
    not yet drawn the last values sends its old ones back with the next step of the overall slider."""
    moved = st.session_state.pop(MOVED, set())
    by_hand = st.session_state.setdefault(BY_HAND, set())
    if not st.session_state.pop(RATE_MOVED, False):
        by_hand |= moved
    defaults = {f"kind_{kind}": _default(kind, error_rate) for kind in KINDS}
    defaults |= {_table_key(table): error_rate for table in contract.table_names}
    for key, default in defaults.items():
        if key not in by_hand or key not in st.session_state:  # a table left out of the job forgets its rate
            by_hand.discard(key)
            st.session_state[key] = default


st.session_state.setdefault("error_rate", 0.3)
_follow_overall_rate(st.session_state["error_rate"])
left, right = st.columns(2)
with left:
    tables = st.multiselect(
        "Tables", contract.table_names, default=list(contract.table_names), key=f"tables_{ref}"
    )
    driving = contract.driving_table
    rows = st.number_input(
        f"Rows of {driving}", value=500, step=100, help=f"Every other table scales with the {driving}"
    )
    seed = st.number_input("Seed", value=0, step=1, help="The same seed and settings give the same data")
    locales = st.multiselect("Locales", list(LOCALES), default=list(LOCALES))
with right:
    error_rate = st.slider("Error rate", 0.0, 1.0, step=0.01, key="error_rate", on_change=_rate_moved)
    with st.expander("Rates per error kind"):
        st.caption(
            "The kinds this contract's data can receive. Each starts at the error rate times its weight; a "
            "kind you move keeps its rate."
        )
        chosen = {
            kind: st.slider(
                kind,
                0.0,
                1.0,
                step=0.001,
                format="%.3f",
                key=f"kind_{kind}",
                help=KINDS[kind].description,
                on_change=_moved,
                args=(f"kind_{kind}",),
            )
            for kind in receivable(contract)
        }
    with st.expander("Rates per table"):
        st.caption(
            "Each table starts at the error rate; a table you move keeps its rate. Its kinds are its rate "
            "times their weight, except a kind whose rate you set above."
        )
        per_table = {
            table: st.slider(
                table, 0.0, 1.0, step=0.01, key=_table_key(table), on_change=_moved, args=(_table_key(table),)
            )
            for table in tables
        }
by_hand = st.session_state[BY_HAND]
kind_rates = {kind: rate for kind, rate in chosen.items() if f"kind_{kind}" in by_hand}
table_rates = {table: rate for table, rate in per_table.items() if _table_key(table) in by_hand}

try:
    spec = GenerationSpec(
        rows=int(rows),
        seed=int(seed),
        tables=tuple(tables),
        error_rate=error_rate,
        kind_rates=kind_rates,
        table_rates=table_rates,
        locales=tuple(locales),
        contract=ref,
    )
except WorkbenchError as error:
    st.error(f"Nothing generated. {error}")
    st.stop()


@st.cache_data(show_spinner="Generating a preview...", max_entries=16)
def _preview(spec: GenerationSpec, user: str, contract_sha256: str):
    """The preview of ``spec``, made again once its contract's text changes (a user's contract saved anew)."""
    return preview(spec, user, settings)


sample = _preview(spec, user, source.sha256)
st.subheader("Preview")
shown = st.selectbox("Table", list(sample.raw), key="preview_table")
st.caption(
    f"The first {sample.orders} rows of {driving} of this spec, as written to raw; cells with an injected "
    "error are red."
)
st.dataframe(sample.highlighted(shown), hide_index=True)
errors = sample.answer_key[sample.answer_key["table"] == shown]
if len(errors):
    st.markdown(f"**Answer key of this preview: the {len(errors):,} errors injected into {shown}**")
    st.dataframe(errors[["line", "key", "column", "kind", "clean", "dirty"]], hide_index=True)

estimate = sample.estimated_lines(spec.rows)
size = sample.estimated_bytes(spec.rows)
route = route_of(estimate, settings)
st.subheader("Route")
st.markdown(
    f"About **{estimate:,} rows** in all, taking about **{size_text(size)}** in the lake (estimated from the "
    f"preview): the **{route}** route, since up to {settings.small_batch_max_rows:,} rows are small."
)
cloud = None  # the default cloud
if len(settings.clouds) > 1:
    cloud = st.radio(
        "Cloud",
        list(settings.clouds),
        index=list(settings.clouds).index(settings.profile),
        format_func=lambda c: CLOUDS[c].label,
        horizontal=True,
        key="generate_cloud",
        help="Where the job lives: its raw data, and where it is cleaned unless a copy is chosen later",
    )
free = open_lake(settings.on_cloud(cloud)).free_bytes()
too_big = free is not None and size > free
if too_big:
    st.error(
        f"Nothing can be generated: the lake's disk has {size_text(free)} free, less than this needs. "
        "Lower the orders, or free space on the disk."
    )
st.markdown(f"Cleaning will run on **{LABELS[resolve_engine(AUTO, route)]}**.")


def _follow(job_id: str) -> None:
    """The running generation's progress, read again every second; the whole page reruns once it ends."""
    job = _generation(job_id)
    if job.state not in ACTIVE_STATES:
        st.rerun()
    started = f"Started, {job.progress_text}" if job.progress_text else "Starting"
    st.progress(job.progress or 0.0, text=f"{started}. It runs in the background: you may leave this page.")
    if datetime.now(UTC) - job.updated_at > timedelta(seconds=QUIET_SECONDS):
        st.warning(
            f"No word from its worker process since {job.updated_at:%H:%M:%S} UTC, though it reports after "
            "every chunk. If it stays so, stop it and generate again; the scheduler ends it after "
            f"{GENERATION_SILENT_SECONDS // 60} minutes."
        )
    if st.button("Stop", key="stop_generation"):
        store = JobStore.default()
        try:
            store.cancel(job_id, user=user)
        finally:
            store.close()
        st.rerun()


def _generation(job_id: str) -> Job:
    store = JobStore.default()
    try:
        return store.get(job_id, user=user)
    finally:
        store.close()


def _outcome(job: Job) -> None:
    """How the user's last generation ended, with what it wrote."""
    if job.state == CANCELLED:
        st.warning(f"Generation `{job.job_id}` {job.error or 'was cancelled; nothing of it was kept'}.")
        return
    if job.state == FAILED:
        st.error(f"Generation `{job.job_id}` failed. {job.error}")
        return
    manifest = read_manifest(open_lake(placement.settings_for(job, settings)), job.user, job.job_id)
    made = manifest["tables"]
    where = f" on {placement.lives_on(job, settings)}" if len(settings.clouds) > 1 else ""
    st.success(
        f"Generated job `{job.job_id}`{where}: {job.rows_out:,} rows, {manifest['errors_injected']:,} errors "
        f"injected in {manifest['seconds']:.1f} s."
    )
    st.dataframe(
        pd.DataFrame({"table": list(made), "rows": [t["rows"] for t in made.values()]}), hide_index=True
    )
    st.page_link(
        "pages/pipelines.py", label="Clean it", icon=":material/cleaning:", query_params={"job": job.job_id}
    )


def _last_generation(followed: str) -> Job | None:
    """The user's last generation on this tab, unless it was deleted since (it is forgotten then)."""
    if followed not in st.session_state:
        return None
    try:
        return _generation(st.session_state[followed])
    except NotFound:
        del st.session_state[followed]
        return None


followed = f"generation_of_{user}"  # per user: another may sign in on this browser tab later
last = _last_generation(followed)
running = last is not None and last.state in ACTIVE_STATES
if st.button(
    "Generate",
    type="primary",
    disabled=running or too_big,
    help="One generation at a time: stop this one or wait for it" if running else None,
):
    try:
        st.session_state[followed] = generate_in_background(spec, user, cloud=cloud).job_id
    except WorkbenchError as error:
        st.error(f"Nothing generated. {error}")
    else:
        st.rerun()  # the page follows the new job, its button disabled until it ends
if running:
    session_fragment(run_every=FOLLOW_SECONDS)(_follow)(last.job_id)
elif last:
    _outcome(last)
