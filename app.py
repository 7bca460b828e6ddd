"""The workbench frame: first-run setup, login, then navigation over the pages with the user in the sidebar.

Login is streamlit-authenticator's form, wired so that passwords are checked against the bcrypt hashes in
the user store (with lockout), no delay is added to each rerun, and the cookie is a JWT naming a server-side
session that idles out, ends at a longest time and is revoked by logout. The cookie is set by the server
(orchestrator.auth.routes), HttpOnly: `streamlit run app.py` serves this file as an ASGI app (``app`` below)
with those routes beside the pages. No page runs before a login succeeds.

Session keys that pages may read (set here on every run; pages never write them):
- ``"user"``: the signed-in user name; a valid lake path segment (see orchestrator.storage.paths.check_user).
- ``"is_admin"``: True for administrators. Administrators see every user's jobs and files, everyone else only
  their own.
"""

from __future__ import annotations

import json
import sys
import time
from functools import partial
from types import SimpleNamespace

import streamlit as st
import streamlit_authenticator as stauth
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit_authenticator.models import cookie_model as library_cookie_model

from orchestrator.auth import (
    AuthSettings,
    UserStore,
    load_auth_settings,
    open_user_store,
    verify_token,
)
from orchestrator.auth.passwords import PASSWORD_RULES
from orchestrator.auth.routes import LOGOUT_PATH, ROUTES, SESSION_PATH
from orchestrator.auth.settings import COOKIE_NAME, create_first_admin, setup_token
from orchestrator.config import get_settings, private_data_root
from orchestrator.errors import WorkbenchError
from orchestrator.page_table import ADMIN_PAGES, HOME, PAGES, SESSION_ID
from pages._session import NOTICE, session_fragment

_COOKIE_WRITE = "_cookie_write"  # a cookie change to send to the browser on the next run
ANNOUNCE_EVERY_SECONDS = 3  # how often a signed-in tab looks for jobs that finished and at its session
IDLE_WARNING_SECONDS = 60  # how long before an idle end the tab warns


# The library's cookie model builds extra_streamlit_components' CookieManager, a component that sends the
# browser's cookies back as it loads and so reruns the page; a login submitted during that rerun was lost.
# That model is replaced below (_SessionCookie), so its component is never built.
library_cookie_model.stx = SimpleNamespace(CookieManager=lambda: None)


class _SessionCookie:
    """Takes the place of the library's cookie model, whose token carries no session id and cannot be revoked.

    A cookie is accepted only if verify_token finds a live session for it; logout revokes the session, so a
    copy of the cookie taken before logout is refused. Cookies are read from the request (st.context). The
    server sets them, HttpOnly: a script in a same-origin frame posts a login's one-time code (or a logout)
    to the cookie routes and sends nothing back, so no write reruns the page. Writes are sent on the run
    after a login or logout, which is the run that stays on screen long enough for the browser to send them.
    """

    def __init__(self, store: UserStore, settings: AuthSettings) -> None:
        self._store = store
        self._settings = settings

    def get_cookie(self) -> dict[str, str] | None:
        token = st.context.cookies.get(COOKIE_NAME)
        session = verify_token(self._store, self._settings.cookie_key, token) if token else None
        if session is None:
            return None
        st.session_state[SESSION_ID] = session.id
        return {"username": session.user}

    def set_cookie(self) -> None:
        session = self._store.open_session(
            st.session_state["username"], self._settings.session_minutes, self._settings.session_max_minutes
        )
        st.session_state[SESSION_ID] = session.id
        st.session_state[_COOKIE_WRITE] = self._store.grant_cookie(session.id)

    def delete_cookie(self) -> None:
        session_id = st.session_state.pop(SESSION_ID, None)
        if session_id:
            self._store.revoke_session(session_id)
        st.session_state[_COOKIE_WRITE] = None

    def send_pending(self) -> None:
        """Have the server set the cookie a login asked for, or expire it after a logout."""
        if _COOKIE_WRITE not in st.session_state:
            return
        code = st.session_state.pop(_COOKIE_WRITE)
        path, body = (SESSION_PATH, code) if code else (LOGOUT_PATH, "")
        request = {"method": "POST", "body": body, "credentials": "same-origin", "cache": "no-store"}
        st.iframe(f"<script>fetch({json.dumps(path)}, {json.dumps(request)});</script>", height=1)


def _authenticator(store: UserStore, settings: AuthSettings) -> tuple[stauth.Authenticate, _SessionCookie]:
    """The library's login given stored hashes only, no per-run sleep, and the store's checks and sessions."""
    credentials = {
        "usernames": {
            user.name: {"name": user.name, "password": user.password_hash, "roles": [user.role]}
            for user in store.list_users()
        }
    }
    authenticator = stauth.Authenticate(
        credentials,
        cookie_name=COOKIE_NAME,
        cookie_key=settings.cookie_key,
        cookie_expiry_days=settings.session_max_minutes / (24 * 60),
        auto_hash=False,
        login_sleep_time=0,
    )
    # streamlit-authenticator 0.4.2 offers no hooks for these; its own versions are replaced on the instance.
    model = authenticator.authentication_controller.authentication_model
    model.check_credentials = partial(store.authenticate, policy=settings.lockout)
    cookie = _SessionCookie(store, settings)
    authenticator.cookie_controller.cookie_model = cookie
    return authenticator, cookie


def _first_admin_view(store: UserStore) -> None:
    st.title("Create the first administrator")
    st.write(
        "No users exist yet. The administrator you create here can add further users. The setup token was "
        "printed where the workbench was started (`make run`, or the server log)."
    )
    st.caption(PASSWORD_RULES)
    with st.form("first_admin"):
        token = st.text_input("Setup token", type="password", autocomplete="off")
        name = st.text_input("User name", help="1-32 lower-case letters, digits, '_' or '-'")
        password = st.text_input("Password", type="password", autocomplete="new-password")
        repeat = st.text_input("Repeat password", type="password", autocomplete="new-password")
        submitted = st.form_submit_button("Create administrator")
    if submitted:
        try:
            user = create_first_admin(store, token, name, password, repeat)
        except WorkbenchError as error:
            st.error(str(error))
            return
        st.session_state[NOTICE] = f"Administrator `{user.name}` created. Log in with it."
        st.rerun()


def _login_view(authenticator: stauth.Authenticate) -> None:
    st.title("Data workbench")
    # Kept (not popped) until a login succeeds, so any rerun of the login page still shows it.
    if notice := st.session_state.get(NOTICE):
        st.info(notice)
    fields = {"Form name": "Log in", "Username": "User name", "Password": "Password", "Login": "Log in"}
    try:
        authenticator.login(location="main", fields=fields, key="login")
    except WorkbenchError as error:
        st.error(str(error))
        return
    if st.session_state.get("authentication_status"):
        st.rerun()
    if st.session_state.get("authentication_status") is False:
        st.error("User name or password is incorrect.")


def _end_session(authenticator: stauth.Authenticate, notice: str | None = None) -> None:
    """Sign this tab out: revoke its session, forget the cookie and the shared session keys."""
    authenticator.logout(location="unrendered")
    for key in ("user", "is_admin"):
        st.session_state.pop(key, None)
    if notice:
        st.session_state[NOTICE] = notice


def _start_server() -> None:
    """At server start: keep the data root private, and say in the server's log which data root and address
    are in use and, while no user exists, the setup token the first-administrator form asks for.

    Streamlit also learns here that the frame's st.navigation is the only page table. It takes a pages/ folder
    beside the entry point for an app of page files until the process first calls st.navigation, so the first
    request after a start ran the page files' table: a link to a page's URL (/job-list) found no such page
    and said "Page not found" over the login."""
    PagesManager.uses_pages_directory = False  # no setting says so (Streamlit 1.67): the attribute it reads
    data_dir = private_data_root(get_settings())
    address = st.get_option("server.address") or "every interface"
    print(f"Data directory: {data_dir}", file=sys.stderr)
    print(f"Serving on {address}, port {st.get_option('server.port')}", file=sys.stderr)
    if not open_user_store().has_users():
        print(f"Setup token for the first administrator: {setup_token()}", file=sys.stderr)


def main() -> None:
    st.set_page_config(page_title="Data workbench", layout="wide")
    try:
        settings = load_auth_settings()
    except WorkbenchError as error:
        st.error(f"The login settings are invalid. {error}")
        st.stop()
    store = open_user_store()
    cookie_area = st.container(border=False)
    with cookie_area:
        authenticator, cookie = _authenticator(store, settings)

    user = None
    if st.session_state.get("authentication_status"):
        session_id = st.session_state.get(SESSION_ID, "")
        check = store.touch(session_id)  # a full run is the user at work: it renews the session's idle end
        user = store.get(check.session.user) if check.session else None
        if user is None:
            _end_session(authenticator, st.session_state.get(NOTICE) or check.notice)
    with cookie_area:
        cookie.send_pending()

    if user is None:
        if store.has_users():
            login = partial(_login_view, authenticator)
            # The login form answers on every page's URL too, so a link to a page (with its query) is still
            # the page shown after login: a page is known by its URL path, before and after.
            pages = [st.Page(login, title="Log in", url_path="login", default=True)]
            pages += [st.Page(login, title=entry.title, url_path=entry.url) for entry in PAGES + ADMIN_PAGES]
        else:
            setup = partial(_first_admin_view, store)
            pages = [st.Page(setup, title="Create administrator", url_path="setup")]
        st.navigation(pages, position="hidden").run()
        return

    st.session_state.pop(NOTICE, None)
    st.session_state["user"] = user.name
    st.session_state["is_admin"] = user.is_admin
    pages = [
        st.Page(
            entry.path, title=entry.title, icon=entry.icon, url_path=entry.url, default=entry.path == HOME
        )
        for entry in PAGES + (ADMIN_PAGES if user.is_admin else ())
    ]
    navigation = st.navigation(pages)
    st.sidebar.text(f"Signed in as {user.name}\nRole: {user.role}")
    if st.sidebar.button("Log out", key="log_out"):
        _end_session(authenticator, "You are logged out.")
        st.rerun()
    _announce(user.name)
    navigation.run()


@session_fragment(run_every=ANNOUNCE_EVERY_SECONDS)
def _announce(user: str) -> None:
    """On whatever page is open: back to the login once the session has ended, a warning with a way to stay
    signed in a minute before an idle end, and a toast for each job of the user that finished since the
    last look."""
    session = open_user_store().active_session(st.session_state.get(SESSION_ID, ""))
    if session is not None and session.idle_until - time.time() < IDLE_WARNING_SECONDS < (
        session.expires_at - time.time()
    ):
        st.warning("You will be logged out in under a minute without activity.")
        if st.button("Stay signed in", key="stay_signed_in"):
            open_user_store().touch(session.id)
            st.rerun(scope="fragment")
    from orchestrator.jobs.store import JobStore  # the engine loads after login, not for the login page

    store = JobStore.default()
    try:
        events = store.list_unseen(user)
        for event in events:
            failed = event.kind.endswith(" failed")  # not ticked off as done
            st.toast(
                f"{event.kind}: {event.message}", icon=":material/error:" if failed else ":material/task_alt:"
            )
        store.mark_seen(user, [event.event_id for event in events])
    finally:
        store.close()


if get_script_run_ctx() is None:  # imported by `streamlit run` as the ASGI app: the pages and cookie routes
    _start_server()
    app = st.App(__file__, routes=ROUTES)
else:
    main()
