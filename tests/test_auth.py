"""The user store, lockout, session tokens and login settings, against a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
from starlette.applications import Starlette

from orchestrator.auth import (
    AccountDisabled,
    AccountLocked,
    LockoutPolicy,
    Session,
    UserStore,
    load_auth_settings,
    open_user_store,
    sign_session,
    verify_token,
)
from orchestrator.auth.routes import LOGOUT_PATH, ROUTES, SESSION_PATH
from orchestrator.auth.settings import (
    COOKIE_KEY_ENV,
    SESSION_MINUTES_ENV,
    SETUP_TOKEN_ENV,
    create_first_admin,
    setup_token,
)
from orchestrator.errors import AlreadyExists, InvalidInput

KEY = "k" * 64
PASSWORD = "correct horse battery"


def issue_token(store: UserStore, key: str, user: str, minutes: int) -> tuple[str, Session]:
    """A login as the frame makes it: a session, and the token the cookie carries."""
    session = store.open_session(user, minutes)
    return sign_session(key, session), session


class Clock:
    """A clock the test moves forward, so expiry and lock times are tested without waiting."""

    def __init__(self) -> None:
        self.now = time.time()  # tokens carry real times: PyJWT refuses one issued in the future

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path, clock) -> UserStore:
    users = UserStore(tmp_path / "users.sqlite", clock=clock)
    users.create_first_admin("alice", PASSWORD, PASSWORD)
    return users


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ORCHESTRATOR_SECRETS_FILE", str(tmp_path / "no-secrets.toml"))
    for env in (COOKIE_KEY_ENV, SESSION_MINUTES_ENV):
        monkeypatch.delenv(env, raising=False)
    return tmp_path


def test_passwords_are_stored_only_as_bcrypt_hashes(store, tmp_path):
    store.add_user("bob", "bobs password 1", "bobs password 1")
    with sqlite3.connect(tmp_path / "users.sqlite") as db:
        hashes = dict(db.execute("SELECT name, password_hash FROM users"))
    assert set(hashes) == {"alice", "bob"}
    assert all(value.startswith("$2b$12$") for value in hashes.values())
    assert b"bobs password 1" not in (tmp_path / "users.sqlite").read_bytes()
    assert store.authenticate("bob", "bobs password 1", LockoutPolicy())


def test_first_administrator_can_be_created_only_once(store):
    with pytest.raises(AlreadyExists, match="log in instead"):
        store.create_first_admin("mallory", PASSWORD, PASSWORD)
    assert [(user.name, user.role) for user in store.list_users()] == [("alice", "admin")]


@pytest.mark.parametrize(
    ("name", "password", "repeat", "role", "field"),
    [
        ("Bob", PASSWORD, PASSWORD, "user", "user"),
        ("../bob", PASSWORD, PASSWORD, "user", "user"),
        ("alice", PASSWORD, PASSWORD, "user", "user"),
        ("bob", "short", "short", "user", "password"),
        ("bob", "x" * 73, "x" * 73, "user", "password"),
        ("bob", " padded password ", " padded password ", "user", "password"),
        ("bob", PASSWORD, PASSWORD + "!", "user", "repeat password"),
        ("bob", PASSWORD, PASSWORD, "root", "role"),
    ],
)
def test_invalid_new_user_names_the_field_and_stores_nothing(store, name, password, repeat, role, field):
    with pytest.raises(InvalidInput) as caught:
        store.add_user(name, password, repeat, role)
    assert caught.value.field == field
    assert [user.name for user in store.list_users()] == ["alice"]


def test_failed_logins_lock_the_account_across_a_restart_until_the_lock_expires(store, tmp_path, clock):
    policy = LockoutPolicy(max_failed_logins=3, lockout_minutes=15)
    assert not store.authenticate("alice", "wrong password", policy)
    assert not store.authenticate("alice", "wrong password", policy)
    with pytest.raises(AccountLocked, match="try again in 15 minute"):
        store.authenticate("alice", "wrong password", policy)

    restarted = UserStore(tmp_path / "users.sqlite", clock=clock)
    with pytest.raises(AccountLocked):
        restarted.authenticate("alice", PASSWORD, policy)
    clock.now += 14 * 60
    with pytest.raises(AccountLocked, match="try again in 1 minute"):
        restarted.authenticate("alice", PASSWORD, policy)
    clock.now += 2 * 60
    assert restarted.authenticate("alice", PASSWORD, policy)
    alice = restarted.get("alice")
    assert (alice.failed_logins, alice.locked_until) == (0, None)


def test_failure_count_survives_a_restart_and_a_success_resets_it(store, tmp_path, clock):
    policy = LockoutPolicy(max_failed_logins=3)
    store.authenticate("alice", "wrong password", policy)
    store.authenticate("alice", "wrong password", policy)
    assert UserStore(tmp_path / "users.sqlite", clock=clock).get("alice").failed_logins == 2
    assert store.authenticate("alice", PASSWORD, policy)
    assert not store.authenticate("alice", "wrong password", policy)
    assert store.get("alice").failed_logins == 1


def test_unknown_user_is_refused_without_creating_anything(store):
    assert not store.authenticate("nobody", PASSWORD, LockoutPolicy(max_failed_logins=1))
    assert [user.name for user in store.list_users()] == ["alice"]


def test_logout_revokes_the_session_so_a_copied_cookie_is_refused(store):
    token, session = issue_token(store, KEY, "alice", minutes=30)
    copied = str(token)
    assert verify_token(store, KEY, copied) == session
    store.revoke_session(session.id)
    assert verify_token(store, KEY, copied) is None


def test_token_signed_with_another_key_is_refused(store):
    _, session = issue_token(store, KEY, "alice", minutes=30)
    claims = {
        "sub": "alice",
        "jti": session.id,
        "iat": int(session.issued_at),
        "exp": int(session.expires_at),
    }
    forged = jwt.encode(claims, "another key " + "x" * 64, algorithm="HS256")
    assert verify_token(store, KEY, forged) is None


def test_token_naming_another_user_or_no_session_is_refused(store):
    store.add_user("bob", "bobs password 1", "bobs password 1")
    _, session = issue_token(store, KEY, "bob", minutes=30)
    claims = {
        "sub": "alice",
        "jti": session.id,
        "iat": int(session.issued_at),
        "exp": int(session.expires_at),
    }
    assert verify_token(store, KEY, jwt.encode(claims, KEY, algorithm="HS256")) is None
    library_style = jwt.encode({"username": "alice", "exp_date": 9_999_999_999}, KEY, algorithm="HS256")
    assert verify_token(store, KEY, library_style) is None
    assert verify_token(store, KEY, "not a token") is None


def test_expired_token_is_refused(tmp_path, clock):
    users = UserStore(tmp_path / "users.sqlite", clock=clock)
    users.create_first_admin("alice", PASSWORD, PASSWORD)
    clock.now = 1_000_000_000.0  # long past: the token's exp lies in the past for the JWT check too
    token, _ = issue_token(users, KEY, "alice", minutes=30)
    assert verify_token(users, KEY, token) is None


def test_session_ends_server_side_after_its_minutes(store, clock):
    _, session = issue_token(store, KEY, "alice", minutes=5)
    clock.now += 4 * 60
    assert store.active_session(session.id) == session
    clock.now += 2 * 60
    assert store.active_session(session.id) is None


def test_cookie_key_is_generated_once_into_a_private_file(data_dir):
    first = load_auth_settings()
    key_file = data_dir / "state" / "cookie_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(bytes.fromhex(first.cookie_key)) == 32
    assert load_auth_settings().cookie_key == first.cookie_key


def test_configured_cookie_key_wins_and_a_short_one_is_refused(data_dir, monkeypatch):
    secrets_file = data_dir / "secrets.toml"
    secrets_file.write_text(f'{COOKIE_KEY_ENV} = "{"s" * 64}"\n')
    monkeypatch.setenv("ORCHESTRATOR_SECRETS_FILE", str(secrets_file))
    assert load_auth_settings().cookie_key == "s" * 64
    monkeypatch.setenv(COOKIE_KEY_ENV, "e" * 64)
    assert load_auth_settings().cookie_key == "e" * 64
    assert not (data_dir / "state" / "cookie_key").exists()
    monkeypatch.setenv(COOKIE_KEY_ENV, "some_key")
    with pytest.raises(InvalidInput, match="at least 64") as caught:
        load_auth_settings()
    assert caught.value.field == COOKIE_KEY_ENV


def test_session_minutes_are_configurable_and_checked(data_dir, monkeypatch):
    assert load_auth_settings().session_minutes == 30
    monkeypatch.setenv(SESSION_MINUTES_ENV, "10")
    assert load_auth_settings().session_minutes == 10
    monkeypatch.setenv(SESSION_MINUTES_ENV, "0")
    with pytest.raises(InvalidInput, match="from 1 to 1,440") as caught:
        load_auth_settings()
    assert caught.value.field == SESSION_MINUTES_ENV
    monkeypatch.setenv(SESSION_MINUTES_ENV, "half an hour")
    with pytest.raises(InvalidInput, match="must be a whole number"):
        load_auth_settings()


def test_a_reset_password_replaces_the_old_one_lifts_the_lock_and_ends_the_other_sessions(store):
    policy = LockoutPolicy(max_failed_logins=2)
    new = "a new password of length"
    store.add_user("bob", PASSWORD, PASSWORD)
    _, kept = issue_token(store, KEY, "bob", minutes=30)
    _, other = issue_token(store, KEY, "bob", minutes=30)
    _, alices = issue_token(store, KEY, "alice", minutes=30)
    assert not store.authenticate("bob", "wrong password", policy)
    with pytest.raises(AccountLocked):
        store.authenticate("bob", "wrong password", policy)

    before = store.get("bob")
    for password, repeat, field in (
        (new, "another one entirely", "repeat password"),
        ("short", "short", "password"),
    ):
        with pytest.raises(InvalidInput) as refused:
            store.reset_password("bob", password, repeat)
        assert refused.value.field == field
    assert store.get("bob") == before  # a refused password changes nothing, the lock included
    with pytest.raises(InvalidInput) as unknown:
        store.reset_password("nobody", new, new)
    assert unknown.value.field == "user"

    assert store.reset_password("bob", new, new, keep_session=kept.id) == 1
    assert store.authenticate("bob", new, policy) and not store.authenticate("bob", PASSWORD, policy)
    assert store.active_session(kept.id) == kept and store.active_session(other.id) is None
    assert store.active_session(alices.id) == alices  # another user's sessions are not touched


def test_unlock_lifts_the_lock_now_and_keeps_the_password(store):
    policy = LockoutPolicy(max_failed_logins=1, lockout_minutes=60)
    with pytest.raises(AccountLocked):
        store.authenticate("alice", "wrong password", policy)
    with pytest.raises(AccountLocked):
        store.authenticate("alice", PASSWORD, policy)
    store.unlock("alice")
    assert (store.get("alice").failed_logins, store.get("alice").locked_until) == (0, None)
    assert store.authenticate("alice", PASSWORD, policy)
    with pytest.raises(InvalidInput):
        store.unlock("nobody")


def test_a_users_file_of_an_earlier_version_keeps_its_users_and_sessions(store, tmp_path, clock):
    store.add_user("bob", "bobs password 1", "bobs password 1")
    session = store.open_session("bob", 60)
    with sqlite3.connect(tmp_path / "users.sqlite") as db:  # as the first versions made it
        db.execute("ALTER TABLE users DROP COLUMN disabled_at")
        for column in ("idle_until", "idle_minutes", "end_reason"):
            db.execute(f"ALTER TABLE sessions DROP COLUMN {column}")
        db.execute("DROP TABLE login_attempts")
    upgraded = UserStore(tmp_path / "users.sqlite", clock=clock)
    assert upgraded.authenticate("bob", "bobs password 1", LockoutPolicy())
    assert upgraded.active_session(session.id) == session
    assert upgraded.get("bob").disabled_at is None
    assert upgraded.disable("bob") == 1  # and the new column works
    assert upgraded.active_session(session.id) is None


def test_a_disabled_account_refuses_its_password_and_its_sessions_until_enabled(store):
    store.add_user("bob", "bobs password 1", "bobs password 1")
    session = store.open_session("bob", 60)
    assert store.disable("bob") == 1
    with pytest.raises(AccountDisabled, match="'bob' is disabled"):
        store.authenticate("bob", "bobs password 1", LockoutPolicy())
    assert store.authenticate("bob", "a wrong guess", LockoutPolicy()) is False  # nothing said to a guesser
    assert store.active_session(session.id) is None
    with pytest.raises(InvalidInput, match="'bob' exists already"):
        store.add_user("bob", "someone elses 1", "someone elses 1")  # the name, and bob's jobs, stay his
    store.enable("bob")
    assert store.authenticate("bob", "bobs password 1", LockoutPolicy())
    assert store.active_session(session.id) is None  # the sessions ended by the disable stay ended


def test_concurrent_logins_are_checked_no_more_often_than_the_lock_allows(store):
    """Attempts racing each other take their place before the slow password check: of sixteen at once
    against a limit of five, at most five are checked, the rest are refused as locked, and the lock holds
    for the right password afterwards."""
    policy = LockoutPolicy(max_failed_logins=5, lockout_minutes=15)
    barrier = threading.Barrier(16)

    def attempt(_: int) -> str:
        barrier.wait()
        try:
            return "checked" if store.authenticate("alice", "wrong password", policy) is False else "in"
        except AccountLocked:
            return "refused"

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(attempt, range(16)))
    assert outcomes.count("in") == 0
    assert outcomes.count("checked") < policy.max_failed_logins  # the fifth failure raises as it locks
    assert outcomes.count("refused") > 16 - policy.max_failed_logins
    with pytest.raises(AccountLocked, match="try again in 15 minute"):
        store.authenticate("alice", PASSWORD, policy)


def test_a_login_under_way_holds_its_place_and_lets_it_go_when_done(store, clock):
    """The places taken by attempts in flight count against the limit only while they are under way: a
    process that died mid-check stops counting after a minute."""
    policy = LockoutPolicy(max_failed_logins=2)
    with sqlite3.connect(store.path) as db:  # two attempts of processes that died before they finished
        db.executemany(
            "INSERT INTO login_attempts (user, started_at) VALUES ('alice', ?)", [(clock.now,), (clock.now,)]
        )
    with pytest.raises(AccountLocked, match="logins under way"):
        store.authenticate("alice", PASSWORD, policy)
    clock.now += 61
    assert store.authenticate("alice", PASSWORD, policy)
    assert store.authenticate("alice", PASSWORD, policy)  # a finished attempt gives its place back


def test_a_session_ends_when_idle_is_renewed_by_work_and_ends_at_its_longest_time(store, clock):
    session = store.open_session("alice", idle_minutes=30, max_minutes=60)
    clock.now += 25 * 60
    assert store.touch(session.id).session is not None  # the user works: thirty more minutes from now
    clock.now += 25 * 60
    assert store.active_session(session.id) is not None  # 50 minutes after login, 25 after the last work
    renewed = store.touch(session.id).session
    assert renewed.idle_until == session.expires_at  # never past the longest time
    clock.now += 10 * 60
    check = store.check_session(session.id)
    assert check.session is None
    assert check.notice == "Your session reached its longest allowed time; log in again."
    assert store.touch(session.id).session is None  # an ended session is not brought back

    idle = store.open_session("alice", idle_minutes=30, max_minutes=60)
    clock.now += 31 * 60
    assert store.touch(idle.id).session is None
    assert store.check_session(idle.id).notice == "You were logged out after 30 minutes without activity."


@pytest.mark.parametrize(
    ("end", "notice"),
    [
        (lambda s, session: s.revoke_session(session.id), "You were logged out (in another tab"),
        (lambda s, session: s.disable("bob"), "Your account was disabled by an administrator."),
        (lambda s, session: s.set_role("bob", "admin"), "Your role was changed by an administrator"),
        (lambda s, session: s.reset_password("bob", "a new password 1", "a new password 1"), "Your password"),
    ],
)
def test_an_ended_session_says_why(store, end, notice):
    store.add_user("bob", "bobs password 1", "bobs password 1")
    session = store.open_session("bob", 60)
    assert store.check_session(session.id).role == "user"
    end(store, session)
    check = store.check_session(session.id)
    assert check.session is None and check.notice.startswith(notice)
    assert store.check_session("no such session").notice == "Your session has ended; log in again."


def test_setting_the_role_a_user_has_ends_nothing(store):
    store.add_user("bob", "bobs password 1", "bobs password 1")
    session = store.open_session("bob", 60)
    assert store.set_role("bob", "user") == 0
    assert store.active_session(session.id) == session
    assert store.set_role("bob", "admin") == 1
    assert store.active_session(session.id) is None


def test_the_first_administrator_needs_the_setup_token_which_is_then_spent(data_dir, monkeypatch):
    monkeypatch.delenv(SETUP_TOKEN_ENV, raising=False)
    users = open_user_store()
    token = setup_token()
    token_file = data_dir / "state" / "setup_token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600 and len(token) == 64
    assert setup_token() == token  # the same for every process of this data root until spent
    with pytest.raises(InvalidInput, match="copy it from the output of `make run`") as refused:
        create_first_admin(users, "guess", "alice", PASSWORD, PASSWORD)
    assert refused.value.field == "setup token"
    assert not users.has_users()
    assert create_first_admin(users, f" {token}\n", "alice", PASSWORD, PASSWORD).is_admin
    assert not token_file.exists()

    monkeypatch.setenv(SETUP_TOKEN_ENV, "configured token")
    assert setup_token() == "configured token"


def _post(path: str, body: bytes = b"", *, https: bool = False) -> tuple[int, list[str]]:
    """POST to the cookie routes as the server hosts them (an ASGI call); the status and Set-Cookie lines."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    headers = [(b"host", b"127.0.0.1")] + ([(b"x-forwarded-proto", b"https")] if https else [])
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "scheme": "http",
        "server": ("127.0.0.1", 8501),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
        "http_version": "1.1",
    }
    asyncio.run(Starlette(routes=ROUTES)(scope, receive, send))
    start = sent[0]
    return start["status"], [v.decode() for k, v in start["headers"] if k == b"set-cookie"]


def test_the_server_sets_the_session_cookie_httponly_once_per_login_code(data_dir):
    users = open_user_store()
    users.create_first_admin("alice", PASSWORD, PASSWORD)
    session = users.open_session("alice", 30, 120)
    code = users.grant_cookie(session.id)

    status, [cookie] = _post(SESSION_PATH, code.encode())
    assert status == 204
    token = cookie.split(";")[0].removeprefix("workbench_session=")
    assert verify_token(users, load_auth_settings().cookie_key, token) == session
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path=/", "samesite=strict"} <= attributes and "secure" not in attributes
    assert 119 * 60 < int(next(a for a in attributes if a.startswith("max-age="))[8:]) <= 120 * 60

    assert _post(SESSION_PATH, code.encode()) == (403, [])  # spent
    assert _post(SESSION_PATH, b"a guessed code") == (403, [])
    assert _post(SESSION_PATH, b"x" * 1000)[0] == 400
    over_https = users.grant_cookie(session.id)
    assert "Secure" in _post(SESSION_PATH, over_https.encode(), https=True)[1][0]
    users.revoke_session(session.id)
    assert _post(SESSION_PATH, users.grant_cookie(session.id).encode()) == (403, [])  # no cookie for it

    status, [expired] = _post(LOGOUT_PATH)
    assert status == 204 and "Max-Age=0" in expired and "HttpOnly" in expired
