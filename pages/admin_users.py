"""Administrators add users and see who may sign in, with their role and any lock after failed logins."""

import pandas as pd
import streamlit as st

from orchestrator.auth import ROLES, open_user_store
from orchestrator.auth.passwords import MIN_PASSWORD_CHARS
from orchestrator.errors import WorkbenchError

if "user" not in st.session_state:  # opened by URL before the frame ran (see app.py): log in first
    st.switch_page("app.py")
st.title("Users")
if not st.session_state.get("is_admin"):
    st.error("Only administrators can manage users.")
    st.stop()

store = open_user_store()
with st.form("add_user", clear_on_submit=False):
    st.subheader("Add a user")
    name = st.text_input(
        "User name", help="1-32 lower-case letters, digits, '_' or '-'; also their lake folder"
    )
    role = st.selectbox("Role", ROLES, help="Administrators see every user's jobs and files and manage users")
    password = st.text_input(
        "Password",
        type="password",
        autocomplete="new-password",
        help=f"At least {MIN_PASSWORD_CHARS} characters",
    )
    repeat = st.text_input("Repeat password", type="password", autocomplete="new-password")
    if st.form_submit_button("Add user"):
        try:
            added = store.add_user(name, password, repeat, role)
        except WorkbenchError as error:
            st.error(str(error))
        else:
            st.success(f"Added {added.role} `{added.name}`; they can log in now.")

users = store.list_users()
st.subheader("Accounts")
st.dataframe(
    pd.DataFrame(
        {
            "user": [user.name for user in users],
            "role": [user.role for user in users],
            "created": pd.to_datetime([user.created_at for user in users], unit="s", utc=True),
            "failed logins": [user.failed_logins for user in users],
            "locked until": pd.to_datetime([user.locked_until for user in users], unit="s", utc=True),
        }
    ),
    hide_index=True,
)
