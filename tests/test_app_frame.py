"""The frame and its pages through AppTest: first run, login, lockout, logout, users, access rules."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from orchestrator.auth import AccountLocked, LockoutPolicy, open_user_store
from orchestrator.auth.passwords import PASSWORD_RULES
from orchestrator.auth.settings import (
    COOKIE_KEY_ENV,
    LOCKOUT_MINUTES_ENV,
    MAX_FAILED_LOGINS_ENV,
    SESSION_MAX_HOURS_ENV,
    SESSION_MINUTES_ENV,
    setup_token,
)
from orchestrator.errors import InvalidInput

ROOT = Path(__file__).resolve().parents[1]
ADMIN_PASSWORD = "correct horse battery"
BOB_PASSWORD = "bobs password 1"


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """An empty data root per test, and no login settings leaking in from the environment."""
    monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ORCHESTRATOR_SECRETS_FILE", str(tmp_path / "no-secrets.toml"))
    for env in (COOKIE_KEY_ENV, SESSION_MINUTES_ENV, MAX_FAILED_LOGINS_ENV, LOCKOUT_MINUTES_ENV):
        monkeypatch.delenv(env, raising=False)
    return tmp_path


@pytest.fixture
def admin_exists() -> None:
    open_user_store().create_first_admin("alice", ADMIN_PASSWORD, ADMIN_PASSWORD)


def app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    if page:
        at.switch_page(page)
    return at.run()


def log_in(at: AppTest, name: str, password: str) -> AppTest:
    form = {widget.label: widget for widget in at.text_input}
    form["User name"].input(name)
    form["Password"].input(password)
    return at.button[0].click().run()


def shows_login_form(at: AppTest) -> bool:
    return [s.value for s in at.subheader] == ["Log in"] and not at.sidebar.children


def test_first_run_asks_for_the_administrator_then_lets_them_log_in(data_dir):
    at = app()
    assert [t.value for t in at.title] == ["Create the first administrator"]
    assert not at.sidebar.children

    assert [c.value for c in at.caption] == [PASSWORD_RULES]  # the rules come before the first error
    fields = {widget.label: widget for widget in at.text_input}
    fields["Setup token"].input("a guess")
    fields["User name"].input("alice")
    fields["Password"].input(ADMIN_PASSWORD)
    fields["Repeat password"].input(ADMIN_PASSWORD)
    at.button[0].click().run()
    assert [e.value for e in at.error] == [
        "setup token: is not this server's; copy it from the output of `make run` (or the server log), or "
        "from ORCHESTRATOR_SETUP_TOKEN where it is configured"
    ]
    assert not open_user_store().has_users()

    fields = {widget.label: widget for widget in at.text_input}
    fields["Setup token"].input(setup_token())
    fields["Repeat password"].input("another password")
    at.button[0].click().run()
    assert [e.value for e in at.error] == [
        "repeat password: does not match the password; type the same password twice"
    ]
    assert not open_user_store().has_users()

    fields = {widget.label: widget for widget in at.text_input}
    fields["Repeat password"].input(ADMIN_PASSWORD)
    at.button[0].click().run()
    assert [i.value for i in at.info] == ["Administrator `alice` created. Log in with it."]
    assert shows_login_form(at)

    log_in(at, "alice", ADMIN_PASSWORD)
    assert not at.exception
    assert [t.value for t in at.sidebar.text] == ["Signed in as alice\nRole: admin"]
    assert at.button(key="log_out").label == "Log out"
    assert (at.session_state["user"], at.session_state["is_admin"]) == ("alice", True)
    assert "Signed in as `alice`." in [m.value for m in at.markdown]
    assert [link.label for link in at.page_link][-1] == "Users"  # the home page links the admin's page
    assert [i.value for i in at.info] == ["No jobs yet. Generate a data set to start one."]
    assert (data_dir / "state" / "cookie_key").stat().st_mode & 0o077 == 0
    assert not (data_dir / "state" / "setup_token").exists()  # spent


def test_wrong_password_is_refused_with_a_message(admin_exists):
    at = log_in(app(), "alice", "wrong password")
    assert [e.value for e in at.error] == ["User name or password is incorrect."]
    assert shows_login_form(at)
    assert "user" not in at.session_state


def test_repeated_failures_lock_the_account_even_for_the_right_password(admin_exists, monkeypatch):
    monkeypatch.setenv(MAX_FAILED_LOGINS_ENV, "2")
    at = log_in(app(), "alice", "wrong password")
    log_in(at, "alice", "wrong password")
    assert [e.value for e in at.error] == [
        "Account 'alice' is locked after too many failed logins; try again in 15 minute(s)."
    ]
    restarted = log_in(app(), "alice", ADMIN_PASSWORD)
    assert "locked" in restarted.error[0].value
    assert shows_login_form(restarted)


def test_logout_revokes_the_session_and_shows_the_login_form(admin_exists):
    at = log_in(app(), "alice", ADMIN_PASSWORD)
    session_id = at.session_state["_session_id"]
    assert open_user_store().active_session(session_id) is not None

    at.button(key="log_out").click().run()
    assert [i.value for i in at.info] == ["You are logged out."]
    assert shows_login_form(at)
    assert "user" not in at.session_state
    assert open_user_store().active_session(session_id) is None


def test_a_session_revoked_elsewhere_signs_this_tab_out(admin_exists):
    at = log_in(app(), "alice", ADMIN_PASSWORD)
    open_user_store().revoke_session(at.session_state["_session_id"])
    at.run()
    assert [i.value for i in at.info] == ["You were logged out (in another tab of this browser)."]
    assert shows_login_form(at)


@pytest.mark.parametrize(
    ("change", "notice"),
    [
        (lambda users: users.disable("bob"), "Your account was disabled by an administrator."),
        (
            lambda users: users.set_role("bob", "admin"),
            "Your role was changed by an administrator; log in again to work with it.",
        ),
        (
            lambda users: users.reset_password("bob", "a new password 1", "a new password 1"),
            "Your password was changed, which ends your other sessions; log in with the new one.",
        ),
    ],
)
def test_an_administrators_change_ends_an_open_tab_with_the_reason(admin_exists, change, notice):
    open_user_store().add_user("bob", BOB_PASSWORD, BOB_PASSWORD)
    at = log_in(app(), "bob", BOB_PASSWORD)
    at.switch_page("pages/jobs.py").run()
    assert [t.value for t in at.title] == ["Jobs"]
    change(open_user_store())
    at.run()
    assert [i.value for i in at.info] == [notice]
    assert shows_login_form(at)
    assert "user" not in at.session_state


def test_work_renews_the_session_and_idleness_ends_it_with_the_reason(admin_exists, monkeypatch):
    monkeypatch.setenv(SESSION_MINUTES_ENV, "2")
    at = log_in(app(), "alice", ADMIN_PASSWORD)
    users = open_user_store()
    session_id = at.session_state["_session_id"]
    with sqlite3.connect(users.path) as db:  # as if the user had been idle for 90 seconds
        db.execute("UPDATE sessions SET idle_until = ? WHERE id = ?", (time.time() + 30, session_id))
    at.run()  # working: the idle end moves two minutes from now
    assert users.active_session(session_id).idle_until > time.time() + 100
    assert [t.value for t in at.sidebar.text] == ["Signed in as alice\nRole: admin"]

    with sqlite3.connect(users.path) as db:  # idle past the end
        db.execute("UPDATE sessions SET idle_until = ? WHERE id = ?", (time.time() - 1, session_id))
    at.run()
    assert [i.value for i in at.info] == ["You were logged out after 2 minutes without activity."]
    assert shows_login_form(at)


@pytest.mark.parametrize("page", ["pages/home.py", "pages/admin_users.py", "pages/account.py"])
def test_no_page_renders_without_login(admin_exists, page):
    at = app(page)
    assert not at.exception
    assert shows_login_form(at)
    assert not {"Users", "Account"} & {t.value for t in at.title}
    assert not at.dataframe


def test_administrator_adds_a_user_who_then_logs_in_without_admin_rights(admin_exists):
    at = log_in(app(), "alice", ADMIN_PASSWORD)
    at.switch_page("pages/admin_users.py").run()
    assert [t.value for t in at.title] == ["Users"]
    assert [t.value for t in at.sidebar.text] == ["Signed in as alice\nRole: admin"]

    def add(name: str, password: str, repeat: str, role: str = "user") -> None:
        fields = {widget.label: widget for widget in at.text_input}
        fields["User name"].input(name)
        fields["Password"].input(password)
        fields["Repeat password"].input(repeat)
        at.selectbox[0].select(role)
        at.button[0].click().run()

    add("Bob Smith", BOB_PASSWORD, BOB_PASSWORD)
    assert at.error[0].value.startswith("user: 'Bob Smith' is not a valid user name")
    add("bob", "short", "short")
    assert [e.value for e in at.error] == ["password: use at least 12 characters"]
    assert at.dataframe[0].value["user"].tolist() == ["alice"]

    add("bob", BOB_PASSWORD, BOB_PASSWORD)
    assert [s.value for s in at.success] == ["Added user `bob`; they can log in now."]
    table = at.dataframe[0].value
    assert table[["user", "role"]].values.tolist() == [["alice", "admin"], ["bob", "user"]]
    assert "password_hash" not in table.columns

    bob = log_in(app(), "bob", BOB_PASSWORD)
    assert [t.value for t in bob.sidebar.text] == ["Signed in as bob\nRole: user"]
    assert bob.session_state["is_admin"] is False
    assert "Users" not in [link.label for link in bob.page_link]
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        bob.switch_page("pages/admin_users.py")


def test_administrator_lifts_a_lock_and_resets_a_password(admin_exists):
    users = open_user_store()
    users.add_user("bob", BOB_PASSWORD, BOB_PASSWORD)
    with pytest.raises(AccountLocked):
        users.authenticate("bob", "a wrong password", LockoutPolicy(max_failed_logins=1))
    at = log_in(app(), "alice", ADMIN_PASSWORD)
    at.switch_page("pages/admin_users.py").run()
    assert not pd.isna(at.dataframe[0].value.set_index("user").loc["bob", "locked until"])

    def manage(button: str, password: str = "", repeat: str = "") -> None:
        next(s for s in at.selectbox if s.label == "Account").select("bob")
        fields = {widget.label: widget for widget in at.text_input}
        fields["New password"].input(password)
        fields["Repeat new password"].input(repeat)
        next(b for b in at.button if b.label == button).click().run()
        assert not at.exception

    manage("Unlock")
    assert [s.value for s in at.success] == ["`bob` can log in again."]
    assert pd.isna(at.dataframe[0].value.set_index("user").loc["bob", "locked until"])

    new = "bobs new password 2"
    manage("Set password", new, "not the same")
    assert [e.value for e in at.error] == [
        "repeat password: does not match the password; type the same password twice"
    ]
    assert [t.value for t in log_in(app(), "bob", BOB_PASSWORD).sidebar.text] == [
        "Signed in as bob\nRole: user"
    ]
    manage("Set password", new, new)
    assert [s.value for s in at.success] == ["`bob` has a new password; 1 session(s) of theirs ended."]
    assert shows_login_form(log_in(app(), "bob", BOB_PASSWORD))
    assert [t.value for t in log_in(app(), "bob", new).sidebar.text] == ["Signed in as bob\nRole: user"]


def test_administrator_changes_roles_and_disables_an_account_but_keeps_one_administrator(admin_exists):
    users = open_user_store()
    users.add_user("bob", BOB_PASSWORD, BOB_PASSWORD)
    bob = log_in(app(), "bob", BOB_PASSWORD)
    at = log_in(app(), "alice", ADMIN_PASSWORD)
    at.switch_page("pages/admin_users.py").run()

    def access(account: str, button: str, role: str = "user") -> list[str]:
        at.selectbox(key="access_account").select(account)
        at.selectbox(key="access_role").select(role)
        next(b for b in at.button if b.label == button).click().run()
        assert not at.exception
        return [m.value for m in (*at.success, *at.error)]

    refused = "is the only administrator who can sign in; make another user an administrator before you"
    assert access("alice", "Set role", "user") == [f"user: 'alice' {refused} make them a plain user"]
    assert access("alice", "Disable") == [
        "user: you cannot disable your own account; another administrator can"
    ]
    with pytest.raises(InvalidInput, match=f"'alice' {refused} disable them"):
        users.disable("alice")  # nor could anyone else: she is the only administrator
    assert users.get("alice").role == "admin" and users.get("alice").disabled_at is None

    assert access("bob", "Disable") == ["`bob` can no longer sign in; 1 session(s) of theirs ended."]
    assert not pd.isna(at.dataframe[0].value.set_index("user").loc["bob", "disabled since"])
    bob.run()  # his open tab is signed out
    assert [i.value for i in bob.info] == ["Your account was disabled by an administrator."]
    again = log_in(app(), "bob", BOB_PASSWORD)
    assert [e.value for e in again.error] == ["Account 'bob' is disabled; ask an administrator to enable it."]
    wrong = log_in(app(), "bob", "not his password")  # says nothing of the account to someone guessing
    assert [e.value for e in wrong.error] == ["User name or password is incorrect."]
    assert users.get("bob").failed_logins == 1  # the guess still counts towards a lock

    assert access("bob", "Enable") == ["`bob` can sign in again."]
    assert access("bob", "Set role", "admin") == [
        "`bob` is now an administrator; 0 session(s) of theirs ended, to sign in again with it."
    ]
    promoted = log_in(app(), "bob", BOB_PASSWORD)
    assert [t.value for t in promoted.sidebar.text] == ["Signed in as bob\nRole: admin"]
    assert access("alice", "Set role", "user") == [  # bob is one now
        "`alice` is now a plain user; 1 session(s) of theirs ended, to sign in again with it."
    ]
    assert users.get("alice").role == "user"


def test_a_user_changes_their_own_password_with_the_current_one(admin_exists):
    users = open_user_store()
    users.add_user("bob", BOB_PASSWORD, BOB_PASSWORD)
    elsewhere = users.open_session("bob", 60)  # bob is signed in in another browser too
    before = users.get("bob")
    at = log_in(app(), "bob", BOB_PASSWORD)
    at.switch_page("pages/account.py").run()
    assert "Signed in as `bob`, role **user**." in [m.value for m in at.markdown]

    def change(current: str, new: str, repeat: str) -> None:
        fields = {widget.label: widget for widget in at.text_input}
        fields["Current password"].input(current)
        fields["New password"].input(new)
        fields["Repeat new password"].input(repeat)
        next(b for b in at.button if b.label == "Change password").click().run()
        assert not at.exception

    new = "bobs new password 2"
    change("not my password", new, new)
    assert [e.value for e in at.error] == [
        "Password not changed. current password: is not your current password; nothing was changed"
    ]
    assert users.get("bob").password_hash == before.password_hash
    assert users.get("bob").failed_logins == 1  # a guess counts as a failed login
    change(BOB_PASSWORD, new, "not the same")
    assert [e.value for e in at.error] == [
        "Password not changed. repeat password: does not match the password; type the same password twice"
    ]
    change(BOB_PASSWORD, BOB_PASSWORD, BOB_PASSWORD)
    assert [e.value for e in at.error] == [
        "Password not changed. password: is your current password; choose a new one"
    ]
    assert users.get("bob").password_hash == before.password_hash

    change(BOB_PASSWORD, new, new)
    assert [s.value for s in at.success] == ["Your password is changed; 1 other session(s) of yours ended."]
    assert users.active_session(elsewhere.id) is None
    assert users.active_session(at.session_state["_session_id"]) is not None  # this tab stays signed in
    assert shows_login_form(log_in(app(), "bob", BOB_PASSWORD))
    assert [t.value for t in log_in(app(), "bob", new).sidebar.text] == ["Signed in as bob\nRole: user"]


def test_admin_page_refuses_a_signed_in_non_administrator():
    at = AppTest.from_file(str(ROOT / "pages" / "admin_users.py"), default_timeout=30)
    at.session_state["user"] = "bob"
    at.session_state["is_admin"] = False
    at.run()
    assert [e.value for e in at.error] == ["Only administrators can manage users."]
    assert not at.text_input
    assert not at.dataframe


def test_session_length_and_key_come_from_the_secrets_file(admin_exists, data_dir, monkeypatch):
    secrets_file = data_dir / "secrets.toml"
    secrets_file.write_text(
        f'{COOKIE_KEY_ENV} = "{"s" * 64}"\n{SESSION_MINUTES_ENV} = 5\n{SESSION_MAX_HOURS_ENV} = 2\n'
    )
    monkeypatch.setenv("ORCHESTRATOR_SECRETS_FILE", str(secrets_file))
    at = log_in(app(), "alice", ADMIN_PASSWORD)
    session = open_user_store().active_session(at.session_state["_session_id"])
    assert session.idle_minutes == 5 and 4 * 60 < session.idle_until - time.time() <= 5 * 60
    assert session.expires_at - session.issued_at == 2 * 60 * 60
    assert not (data_dir / "state" / "cookie_key").exists()


def test_an_unusable_cookie_key_stops_the_app_with_a_clear_message(admin_exists, monkeypatch):
    monkeypatch.setenv(COOKIE_KEY_ENV, "some_key")
    at = app()
    assert at.error[0].value.startswith(
        "The login settings are invalid. ORCHESTRATOR_COOKIE_KEY: the cookie key has 8 characters"
    )
    assert not at.text_input


def test_the_role_and_access_form_acts_on_nothing_until_an_account_is_chosen(admin_exists):
    open_user_store().add_user("bob", BOB_PASSWORD, BOB_PASSWORD)
    at = log_in(app(), "alice", ADMIN_PASSWORD)
    at.switch_page("pages/admin_users.py").run()
    assert PASSWORD_RULES in [c.value for c in at.caption]  # stated before any password is typed
    assert (at.selectbox(key="access_account").value, at.selectbox(key="access_role").value) == (None, None)
    next(b for b in at.button if b.label == "Disable").click().run()
    assert [e.value for e in at.error] == ["account: choose the account to change first"]
    at.selectbox(key="access_account").select("bob")
    next(b for b in at.button if b.label == "Set role").click().run()
    assert [e.value for e in at.error] == ["role: choose the role to give first"]
    assert open_user_store().get("bob").role == "user" and open_user_store().get("bob").disabled_at is None
