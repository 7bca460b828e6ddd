"""Settings: the profile, the routing threshold and schedules with where each comes from, and for
administrators a form to change those three (unless the environment sets them) with the last changes, which
secrets are set (never their values) and connection tests of the systems the profile uses, whose answers
count every user's jobs and tables."""

import pandas as pd
import streamlit as st

from orchestrator.clouds import CLOUDS, SMALL_RUNNERS, cloud_of
from orchestrator.config import (
    EDITABLE,
    ENVIRONMENT,
    STORED,
    EditableValue,
    editable_values,
    get_settings,
    secret_status,
)
from orchestrator.domain.sizes import size_text
from orchestrator.errors import WorkbenchError
from orchestrator.jobs.store import JobStore, SettingChange
from orchestrator.storage import open_lake
from orchestrator.ui_support import connection_checks, schedule_of, scheduler_status

RUNNERS = {
    "local": "local Spark",
    "databricks": "Databricks",
    "datafactory": "Data Factory (large_batch pipeline)",
    "session": "this process's Spark session",
}
SAVED = "settings_saved"  # session_state key: what the last save changed, said once on the run after it
HISTORY = 20  # changes shown
LABELS = {setting.name: setting.label for setting in EDITABLE}


def _shown(value: EditableValue) -> str:
    """A value as the page shows it, a row count with thousands separators."""
    return f"{value.value:,}" if isinstance(value.value, int) else value.value


def _origin(value: EditableValue) -> str:
    """Where a value comes from, as the page says it."""
    if value.source == ENVIRONMENT:
        return f"set by {value.setting.name}, change it there"
    if value.source == STORED and value.stored is not None:
        return f"stored by {value.stored.set_by}, {value.stored.set_at:%Y-%m-%d %H:%M} UTC"
    return "default"


def _saved(changes: list[SettingChange]) -> str:
    """What a save changed, as the page says it once the page shows the new values."""
    if not changes:
        return "Nothing changed."
    said = "; ".join(f"{LABELS[c.name]}: {c.old_value} → {c.new_value}" for c in changes)
    return f"Saved ({said}). A running scheduler follows a new schedule within about a minute."


if "user" not in st.session_state:  # opened by URL before the frame ran (see app.py): log in first
    st.switch_page("app.py")
st.title("Settings")
try:
    settings = get_settings()
    values = editable_values(settings)
except WorkbenchError as error:
    st.error(f"The configuration is invalid. {error}")
    st.stop()

st.dataframe(
    pd.DataFrame(
        {
            "setting": [
                "profile",
                "small-batch limit (rows)",
                "small batches cleaned",
                "small batches run on",
                "large batches cleaned",
                "large batches run on",
                "generations at once (per user)",
                "job store",
            ],
            "value": [
                settings.profile,
                f"{settings.small_batch_max_rows:,}",
                schedule_of("small", settings),
                SMALL_RUNNERS[cloud_of(settings).small_batches].label,
                schedule_of("large", settings),
                RUNNERS.get(settings.spark_runner, "none set (ORCHESTRATOR_SPARK_RUNNER)"),
                str(settings.max_active_generations),
                settings.job_store,
            ],
        }
    ),
    hide_index=True,
)
st.caption(
    f"Batches of up to {settings.small_batch_max_rows:,} rows take the small route, larger ones the large "
    "route."
)
st.subheader("Clouds")
clouds = {name: CLOUDS[name] for name in settings.clouds}
st.dataframe(
    pd.DataFrame(
        {
            "cloud": [cloud.label for cloud in clouds.values()],
            "name": list(clouds),
            "new jobs": ["default" if name == settings.profile else "" for name in clouds],
            "small batches run on": [SMALL_RUNNERS[cloud.small_batches].label for cloud in clouds.values()],
            "large batches run on": [
                RUNNERS.get(settings.on_cloud(name).spark_runner, "none of its own") for name in clouds
            ],
        }
    ),
    hide_index=True,
)
st.caption(
    "A job lives on the cloud it was created on (chosen on the Generate page); the Jobs page copies it to "
    "another. ORCHESTRATOR_CLOUDS lists the clouds, ORCHESTRATOR_PROFILE names the default."
)
scheduling, status = scheduler_status(settings)
(st.info if scheduling else st.warning)(f"Scheduler: {status}.")

st.subheader("Routing and schedules")
if saved := st.session_state.pop(SAVED, None):
    st.success(saved)
st.table(
    pd.DataFrame(
        {
            "setting": [value.setting.label for value in values],
            "value": [_shown(value) for value in values],
            "from": [_origin(value) for value in values],
        }
    ),
    hide_index=True,
)

if not st.session_state["is_admin"]:  # what the systems hold, whoever it belongs to, is for administrators
    st.caption("Administrators change the routing threshold and schedules here.")
    st.caption("Which secrets are set, and the connection tests, are shown to administrators.")
    st.stop()

store = JobStore.default()
try:
    with st.form("change_settings"):
        typed = {
            value.setting.name: st.text_input(
                f"{value.setting.label[0].upper()}{value.setting.label[1:]}",
                str(value.value),
                disabled=value.source == ENVIRONMENT,
                help=_origin(value)
                if value.source == ENVIRONMENT
                else f"{value.setting.hint}; {value.setting.name} in the environment would win over it",
            )
            for value in values
        }
        save = st.form_submit_button("Save", disabled=all(value.source == ENVIRONMENT for value in values))
    if save:
        changed = {
            value.setting.name: typed[value.setting.name].strip()
            for value in values
            if value.source != ENVIRONMENT and typed[value.setting.name].strip() != str(value.value)
        }
        try:
            st.session_state[SAVED] = _saved(store.set_settings(changed, user=st.session_state["user"]))
        except WorkbenchError as error:
            st.error(f"Nothing was saved. {error}")
        else:
            st.rerun()  # every value above as it is now

    st.markdown(f"**Changes** (the last {HISTORY})")
    changes = store.setting_changes(HISTORY)
    if changes:
        st.table(
            pd.DataFrame(
                {
                    "when (UTC)": [f"{c.changed_at:%Y-%m-%d %H:%M:%S}" for c in changes],
                    "who": [c.changed_by for c in changes],
                    "setting": [LABELS.get(c.name, c.name) for c in changes],
                    "old value": [c.old_value for c in changes],
                    "new value": [c.new_value for c in changes],
                }
            ),
            hide_index=True,
        )
    else:
        st.caption("No setting has been changed here yet.")
finally:
    store.close()

free = open_lake(settings).free_bytes()
if free is not None:  # the local lake: what its disk still takes (a generation leaves 1 GB of it free)
    st.markdown(f"The lake's disk has **{size_text(free)}** free (a job takes about 2 kB per order).")

st.subheader("Secrets")
st.dataframe(
    pd.DataFrame(
        {
            "secret": list(secret_status()),
            "status": ["set" if s else "not set" for s in secret_status().values()],
        }
    ),
    hide_index=True,
)

st.subheader("Connections")
if st.button("Test connections"):
    with st.spinner("Testing..."):
        checks = connection_checks(settings)
    for name, check in checks.items():
        hint = f" Check {check.field}." if check.field and not check.ok else ""
        (st.success if check.ok else st.error)(f"{name}: {check.message}.{hint}")
