"""Landing page: who is signed in, what each page is for (with a link to it), and the latest jobs."""

import streamlit as st

from orchestrator.jobs.store import JobStore
from orchestrator.page_table import ADMIN_PAGES, HOME, PAGES
from pages._tables import show_jobs

RECENT_JOBS = 5

if "user" not in st.session_state:  # opened by URL before the frame ran (see app.py): log in first
    st.switch_page("app.py")
user, is_admin = st.session_state["user"], st.session_state["is_admin"]
st.title("Data workbench")
st.markdown(f"Signed in as `{user}`.")

for entry in PAGES + (ADMIN_PAGES if is_admin else ()):
    if entry.path != HOME:
        link, purpose = st.columns([1, 3], vertical_alignment="center")
        link.page_link(entry.path, label=entry.title, icon=entry.icon)
        purpose.caption(entry.purpose)

st.subheader("Latest jobs" + (", everyone's" if is_admin else ""))
store = JobStore.default()
try:
    recent = store.list_jobs(user, is_admin, limit=RECENT_JOBS)
finally:
    store.close()
if recent:
    show_jobs(recent, ["job", "user", "kind", "state", "created", "rows out"])
else:
    st.info("No jobs yet. Generate a data set to start one.")
