"""Landing page: who is signed in and what the workbench offers so far."""

import streamlit as st

if "user" not in st.session_state:  # opened by URL before the frame ran (see app.py): log in first
    st.switch_page("app.py")
st.title("Data workbench")
st.markdown(f"Signed in as `{st.session_state['user']}`.")
st.write(
    "Generate deliberately dirty e-commerce data, with an answer key of every injected error, from the "
    "command line: `python -m orchestrator generate --help`."
)
if st.session_state["is_admin"]:
    st.page_link("pages/admin_users.py", label="Manage users", icon=":material/group:")
