"""Administrators add users, reset a password or lift a lock after failed logins, change a role, disable or
enable an account, and see who may sign in, with their role, any lock and whether they are disabled."""

from collections.abc import Callable

import pandas as pd
import streamlit as st

from orchestrator.auth import ROLES, open_user_store
from orchestrator.auth.passwords import MIN_PASSWORD_CHARS, PASSWORD_RULES
from orchestrator.errors import InvalidInput, WorkbenchError
from orchestrator.page_table import SESSION_ID

if "user" not in st.session_state:  # opened by URL before the frame ran (see app.py): log in first
    st.switch_page("app.py")
st.title("Users")
if not st.session_state.get("is_admin"):
    st.error("Only administrators can manage users.")
    st.stop()


def _typed_twice(label: str, hint: str) -> tuple[str, str]:
    """A new password and its repetition, as a password manager expects them."""
    typed = st.text_input(label, type="password", autocomplete="new-password", help=hint)
    again = st.text_input(
        f"Repeat {label[0].lower()}{label[1:]}", type="password", autocomplete="new-password"
    )
    return typed, again


def _carry_out(action: Callable[[], str] | None) -> bool:
    """Run the action a form's button asked for; say what it did or why nothing changed. True if one ran."""
    if action is None:
        return False
    try:
        st.success(action())
    except WorkbenchError as error:
        st.error(str(error))
    return True


store = open_user_store()
with st.form("add_user", clear_on_submit=False):
    st.subheader("Add a user")
    st.caption(PASSWORD_RULES)
    name = st.text_input(
        "User name", help="1-32 lower-case letters, digits, '_' or '-'; also their lake folder"
    )
    role = st.selectbox("Role", ROLES, help="Administrators see every user's jobs and files and manage users")
    password, repeat = _typed_twice("Password", f"At least {MIN_PASSWORD_CHARS} characters")
    if st.form_submit_button("Add user"):
        try:
            added = store.add_user(name, password, repeat, role)
        except WorkbenchError as error:
            st.error(str(error))
        else:
            st.success(f"Added {added.role} `{added.name}`; they can log in now.")

users = store.list_users()
with st.form("manage_user", clear_on_submit=False):
    st.subheader("Reset a password or lift a lock")
    chosen = st.selectbox("Account", [user.name for user in users])
    new_password, new_repeat = _typed_twice(
        "New password", f"At least {MIN_PASSWORD_CHARS} characters; their other sessions end"
    )
    left, right = st.columns(2)
    reset = left.form_submit_button("Set password")
    unlock = right.form_submit_button(
        "Unlock", help="Clear the failed logins and any lock; the password stays"
    )

    def _reset() -> str:
        ended = store.reset_password(
            chosen, new_password, new_repeat, keep_session=st.session_state.get(SESSION_ID)
        )
        return f"`{chosen}` has a new password; {ended} session(s) of theirs ended."

    def _unlock() -> str:
        store.unlock(chosen)
        return f"`{chosen}` can log in again."

    if _carry_out(_reset if reset else _unlock if unlock else None):
        users = store.list_users()

with st.form("access", clear_on_submit=False):
    st.subheader("Role and access")
    # Nothing is chosen until the administrator chooses: a click must never act on a preselected account.
    account = st.selectbox(
        "Account",
        [user.name for user in users],
        index=None,
        placeholder="Choose an account",
        key="access_account",
    )
    new_role = st.selectbox("Role", ROLES, index=None, placeholder="Choose a role", key="access_role")
    role_column, disable_column, enable_column = st.columns(3)
    set_role = role_column.form_submit_button("Set role")
    disable = disable_column.form_submit_button(
        "Disable", help="They can no longer sign in and their sessions end; their jobs and files stay"
    )
    enable = enable_column.form_submit_button("Enable", help="They can sign in again with their password")

    def _chosen() -> str:
        if account is None:
            raise InvalidInput("account", "choose the account to change first")
        return account

    def _set_role() -> str:
        if new_role is None:
            raise InvalidInput("role", "choose the role to give first")
        ended = store.set_role(_chosen(), new_role)
        role = "an administrator" if new_role == "admin" else "a plain user"
        return f"`{account}` is now {role}; {ended} session(s) of theirs ended, to sign in again with it."

    def _disable() -> str:
        if _chosen() == st.session_state["user"]:
            raise InvalidInput("user", "you cannot disable your own account; another administrator can")
        ended = store.disable(account)
        return f"`{account}` can no longer sign in; {ended} session(s) of theirs ended."

    def _enable() -> str:
        store.enable(_chosen())
        return f"`{account}` can sign in again."

    if _carry_out(_set_role if set_role else _disable if disable else _enable if enable else None):
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
            "disabled since": pd.to_datetime([user.disabled_at for user in users], unit="s", utc=True),
        }
    ),
    hide_index=True,
)
