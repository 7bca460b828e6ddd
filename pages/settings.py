"""Settings: the profile, the routing threshold and schedules, and for administrators which secrets are set
(never their values) and connection tests of the systems the profile uses, whose answers count every
user's jobs and tables."""

import pandas as pd
import streamlit as st

from orchestrator.config import get_settings, secret_status
from orchestrator.errors import WorkbenchError
from orchestrator.generation.generator import size_text
from orchestrator.storage import open_lake
from orchestrator.ui_support import connection_checks, schedule_of, scheduler_status

RUNNERS = {
    "local": "local Spark",
    "databricks": "Databricks",
    "datafactory": "Data Factory (large_batch pipeline)",
    "session": "this process's Spark session",
}

if "user" not in st.session_state:  # opened by URL before the frame ran (see app.py): log in first
    st.switch_page("app.py")
st.title("Settings")
try:
    settings = get_settings()
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
                "large batches cleaned",
                "large batches run on",
                "generations at once (per user)",
                "job store",
            ],
            "value": [
                settings.profile,
                f"{settings.small_batch_max_rows:,}",
                schedule_of("small", settings),
                schedule_of("large", settings),
                RUNNERS[settings.spark_runner],
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
scheduling, status = scheduler_status(settings)
(st.info if scheduling else st.warning)(f"Scheduler: {status}.")

if not st.session_state["is_admin"]:  # what the systems hold, whoever it belongs to, is for administrators
    st.caption("Which secrets are set, and the connection tests, are shown to administrators.")
    st.stop()

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
