"""What every page, fragment and deferred download runs first: the session as the server knows it now.

The frame (app.py) checks the session on every full run, but a fragment reruns alone and a deferred download
builds its file without any run, both keeping the user and role of the last full run. These checks end the
tab's view (a full rerun to the login, with the reason) as soon as the session has ended or the user's role
has changed, before anything is read or changed. Not a page: the frame's page table never lists it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from orchestrator.auth import SessionCheck, open_user_store
from orchestrator.auth.store import END_NOTICES, ROLE_CHANGED
from orchestrator.page_table import SESSION_ID

NOTICE = "_notice"  # session_state key: a message for the login screen, such as why the user was signed out

T = TypeVar("T")


def _refusal(check: SessionCheck, user: str | None, is_admin: bool | None) -> str | None:
    """Why a tab signed in as ``user`` (an administrator or not) may not go on, or None if it may."""
    if check.session is None:
        return check.notice
    if check.session.user != user or (check.role == "admin") != is_admin:
        return END_NOTICES[ROLE_CHANGED]
    return None


def check_session() -> None:
    """Go on only as the user this tab was signed in as, with the same role; else back to the login."""
    check = open_user_store().check_session(st.session_state.get(SESSION_ID, ""))
    refusal = _refusal(check, st.session_state.get("user"), st.session_state.get("is_admin"))
    if refusal:
        st.session_state[NOTICE] = refusal
        st.rerun(scope="app")


def session_fragment(run_every: float | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Like ``st.fragment(run_every=...)``, but every run of the fragment, a timed one or a click inside it,
    first checks the session."""

    def fragment(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def checked(*args: Any, **kwargs: Any) -> Any:
            check_session()
            return func(*args, **kwargs)

        return st.fragment(checked, run_every=run_every)

    return fragment


def checked_download(build: Callable[[], T]) -> Callable[[], T]:
    """A deferred download's data: built only while the session that offered it is live, for the same user
    in the same role. Streamlit runs it on click without a script run, so it checks for itself."""
    session_id = st.session_state.get(SESSION_ID, "")
    user, is_admin = st.session_state.get("user"), st.session_state.get("is_admin")

    def checked() -> T:
        refusal = _refusal(open_user_store().check_session(session_id), user, is_admin)
        if refusal:
            raise PermissionError(f"Download refused. {refusal}")
        return build()

    return checked
