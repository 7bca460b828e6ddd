"""How the pages show a table of jobs: local times (the zone named in the header's help), counts with
thousands separators, state, job and source columns wide enough to read, and a value a job does not have (a
generation reads no rows in; a running job has no seconds yet) as an empty cell, as the text columns leave
theirs, not Streamlit's "None". Not a page."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from orchestrator.config import get_settings
from orchestrator.jobs.store import Job
from orchestrator.ui_support import jobs_frame

_COUNT = st.column_config.NumberColumn(format="localized")


def show_jobs(jobs: list[Job], columns: Sequence[str] | None = None) -> None:
    """The jobs as a table, in the browser's time zone (UTC where the browser does not say)."""
    zone = st.context.timezone or "UTC"
    frame = jobs_frame(jobs, get_settings(), zone)
    config = {
        "job": st.column_config.TextColumn(width=210),
        "state": st.column_config.TextColumn(width=90),
        "source": st.column_config.TextColumn(width=210),
        "cloud": st.column_config.TextColumn(width=260),  # "Microsoft Azure + copy on this machine"
        "created": st.column_config.DatetimeColumn(
            format="D MMM YYYY, HH:mm:ss", help=f"When the job was created, in your time zone ({zone})"
        ),
        "seconds": st.column_config.NumberColumn(format="%.1f"),
        "rows in": _COUNT,
        "rows out": _COUNT,
        "quarantined": _COUNT,
    }
    st.dataframe(
        frame[list(columns)] if columns else frame, hide_index=True, column_config=config, placeholder=""
    )
