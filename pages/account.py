"""Account: who is signed in, with which role, and a change of their own password (the current one first)."""

import streamlit as st

from orchestrator.auth import load_auth_settings, open_user_store
from orchestrator.auth.passwords import MIN_PASSWORD_CHARS, PASSWORD_RULES
from orchestrator.errors import WorkbenchError
from orchestrator.page_table import SESSION_ID

if "user" not in st.session_state:  # opened by URL before the frame ran (see app.py): log in first
    st.switch_page("app.py")
st.title("Account")
user = st.session_state["user"]
store = open_user_store()
account = store.get(user)
st.markdown(f"Signed in as `{user}`, role **{account.role}**.")

with st.form("change_password", clear_on_submit=True):
    st.caption(PASSWORD_RULES)
    st.subheader("Change your password")
    current = st.text_input("Current password", type="password", autocomplete="current-password")
    password = st.text_input(
        "New password",
        type="password",
        autocomplete="new-password",
        help=f"At least {MIN_PASSWORD_CHARS} characters; your sessions in other browsers end",
    )
    repeat = st.text_input("Repeat new password", type="password", autocomplete="new-password")
    if st.form_submit_button("Change password"):
        try:
            ended = store.change_password(
                user,
                current,
                password,
                repeat,
                policy=load_auth_settings().lockout,
                keep_session=st.session_state.get(SESSION_ID),
            )
        except WorkbenchError as error:
            st.error(f"Password not changed. {error}")
        else:
            st.success(f"Your password is changed; {ended} other session(s) of yours ended.")
