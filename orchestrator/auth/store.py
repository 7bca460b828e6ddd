"""Users, failed-login lockout and server-side sessions in one SQLite file under the data root."""

from __future__ import annotations

import math
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.auth.passwords import check_new_password, decoy_hash, hash_password, password_matches
from orchestrator.dbschema import add_missing_columns
from orchestrator.errors import AlreadyExists, InvalidInput, WorkbenchError
from orchestrator.storage.paths import check_user

ROLES = ("user", "admin")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    password_hash TEXT NOT NULL,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until REAL,
    created_at REAL NOT NULL,
    disabled_at REAL
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    issued_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS cookie_grants (
    code TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS login_attempts (
    id INTEGER PRIMARY KEY,
    user TEXT NOT NULL,
    started_at REAL NOT NULL
);
"""

# Newer than the first stores, added where missing. A session ends when idle past ``idle_until`` (renewed
# while its user works) or at ``expires_at`` whatever happens; ``end_reason`` says why it was revoked.
_ADDED_USER_COLUMNS = (("disabled_at", "REAL"),)
_ADDED_SESSION_COLUMNS = (("idle_until", "REAL"), ("idle_minutes", "INTEGER"), ("end_reason", "TEXT"))
# A login attempt holds its place for this long at most: one whose process died mid-check stops counting.
ATTEMPT_HOLD_SECONDS = 60
# How long the browser has to exchange a login's one-time code for its session cookie.
GRANT_SECONDS = 60

# Why a session was revoked (the ``end_reason`` column) and what the signed-out tab is told.
LOGGED_OUT = "logged_out"
PASSWORD_CHANGED = "password_changed"
ROLE_CHANGED = "role_changed"
DISABLED = "disabled"
END_NOTICES = {
    LOGGED_OUT: "You were logged out (in another tab of this browser).",
    PASSWORD_CHANGED: "Your password was changed, which ends your other sessions; log in with the new one.",
    ROLE_CHANGED: "Your role was changed by an administrator; log in again to work with it.",
    DISABLED: "Your account was disabled by an administrator.",
}
IDLE_NOTICE = "You were logged out after {minutes} minutes without activity."
EXPIRED_NOTICE = "Your session reached its longest allowed time; log in again."
ENDED_NOTICE = "Your session has ended; log in again."


class AccountDisabled(WorkbenchError, PermissionError):
    """An administrator disabled the account: it cannot sign in until enabled again."""


class AccountLocked(WorkbenchError, PermissionError):
    """Too many failed logins: the account refuses every password until the lock expires."""


@dataclass(frozen=True)
class LockoutPolicy:
    """How many failed logins in a row lock an account, and for how long."""

    max_failed_logins: int = 5
    lockout_minutes: int = 15


@dataclass(frozen=True)
class User:
    """A person who can sign in; the name is also their folder in the lake."""

    name: str
    role: str
    created_at: float
    failed_logins: int
    locked_until: float | None
    disabled_at: float | None  # set while an administrator has disabled the account
    password_hash: str = field(repr=False)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class Session:
    """A signed-in browser session; its id travels in the cookie and logout revokes it here. It ends when
    idle past ``idle_until`` (moved on by ``touch`` while its user works) or at ``expires_at``."""

    id: str
    user: str
    issued_at: float
    expires_at: float
    idle_until: float
    idle_minutes: int


@dataclass(frozen=True)
class SessionCheck:
    """A session as the server knows it now: live (``session`` set, with its user's role), or ended with
    the reason to tell."""

    session: Session | None
    role: str | None = None
    notice: str = ""


class UserStore:
    """The users database; every method opens its own connection, so one store serves all script threads."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.clock = clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=10)) as db:
            db.execute("PRAGMA journal_mode = WAL")  # readers never wait for a login being recorded
            db.executescript(_SCHEMA)
            add_missing_columns(db.cursor(), "users", _ADDED_USER_COLUMNS)
            add_missing_columns(db.cursor(), "sessions", _ADDED_SESSION_COLUMNS)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection inside one immediate transaction, committed on success and rolled back on error."""
        with closing(sqlite3.connect(self.path, timeout=10, isolation_level=None)) as db:
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def has_users(self) -> bool:
        with self._connect() as db:
            return db.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None

    def get(self, name: str) -> User | None:
        with self._connect() as db:
            row = db.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE name = ?", (name,)).fetchone()
        return User(*row) if row else None

    def list_users(self) -> list[User]:
        with self._connect() as db:
            rows = db.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY name").fetchall()
        return [User(*row) for row in rows]

    def add_user(self, name: str, password: str, repeat: str, role: str = "user") -> User:
        """Add a user (done by an administrator); the password is checked, then hashed once and stored."""
        return self._insert(name, password, repeat, role, only_if_empty=False)

    def create_first_admin(self, name: str, password: str, repeat: str) -> User:
        """The first run's administrator; refused once any user exists, so the form cannot be replayed."""
        return self._insert(name, password, repeat, "admin", only_if_empty=True)

    def _insert(self, name: str, password: str, repeat: str, role: str, *, only_if_empty: bool) -> User:
        check_user(name)
        _check_role(role)
        check_new_password(name, password, repeat)
        password_hash = hash_password(password)
        now = self.clock()
        with self._connect() as db:
            if only_if_empty and db.execute("SELECT 1 FROM users LIMIT 1").fetchone():
                raise AlreadyExists("An administrator exists already; log in instead.")
            if db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise InvalidInput("user", f"{name!r} exists already; choose another user name")
            db.execute(
                "INSERT INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
                (name, role, password_hash, now),
            )
        return User(name, role, now, 0, None, None, password_hash)

    def authenticate(self, name: str, password: str, policy: LockoutPolicy) -> bool:
        """Check a login; failures are counted in the file and lock the account at the policy's limit.

        The attempt takes its place before the slow password check, in the transaction that reads the lock,
        so concurrent attempts are checked no more often than the limit allows; a correct password that
        lands after the account was locked meanwhile is refused."""
        user = self.get(name)
        if user is None:
            password_matches(password, decoy_hash())
            return False
        attempt = self._reserve_attempt(name, policy)
        matches = False
        try:
            matches = password_matches(password, user.password_hash)
        finally:
            with self._connect() as db:
                db.execute("DELETE FROM login_attempts WHERE id = ?", (attempt,))
                locked = not matches and self._count_failure(db, name, policy)
        if locked:
            raise _locked(name, policy.lockout_minutes * 60)
        if not matches:
            return False
        now = self.clock()
        with self._connect() as db:
            locked_until, disabled_at = db.execute(
                "SELECT locked_until, disabled_at FROM users WHERE name = ?", (name,)
            ).fetchone()
            if locked_until is not None and locked_until > now:
                raise _locked(name, locked_until - now)
            if disabled_at is not None:  # said only to whoever knows the password
                raise AccountDisabled(f"Account {name!r} is disabled; ask an administrator to enable it.")
            db.execute("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE name = ?", (name,))
        return True

    def _reserve_attempt(self, name: str, policy: LockoutPolicy) -> int:
        """Hold a place for one password check, or refuse it: the account is locked, or as many checks are
        under way as the failures the lock still allows."""
        now = self.clock()
        with self._connect() as db:
            db.execute("DELETE FROM login_attempts WHERE started_at <= ?", (now - ATTEMPT_HOLD_SECONDS,))
            failed, locked_until = db.execute(
                "SELECT failed_logins, locked_until FROM users WHERE name = ?", (name,)
            ).fetchone()
            if locked_until is not None and locked_until > now:
                raise _locked(name, locked_until - now)
            (under_way,) = db.execute(
                "SELECT count(*) FROM login_attempts WHERE user = ?", (name,)
            ).fetchone()
            if failed + under_way >= policy.max_failed_logins:
                raise AccountLocked(
                    f"Account {name!r} has as many logins under way as it may still fail; try again in a "
                    "minute."
                )
            (attempt,) = db.execute(
                "INSERT INTO login_attempts (user, started_at) VALUES (?, ?) RETURNING id", (name, now)
            ).fetchone()
        return attempt

    def _count_failure(self, db: sqlite3.Connection, name: str, policy: LockoutPolicy) -> bool:
        """Count a wrong password; the failure that reaches the limit locks the account (and says so)."""
        (failed,) = db.execute(
            "UPDATE users SET failed_logins = failed_logins + 1 WHERE name = ? RETURNING failed_logins",
            (name,),
        ).fetchone()
        if failed < policy.max_failed_logins:
            return False
        db.execute(
            "UPDATE users SET failed_logins = 0, locked_until = ? WHERE name = ?",
            (self.clock() + policy.lockout_minutes * 60, name),
        )
        return True

    def reset_password(self, name: str, password: str, repeat: str, keep_session: str | None = None) -> int:
        """Give a user a new password (done by an administrator): the lock and failure count are cleared and
        every session of theirs ends, but ``keep_session`` (the administrator's own, resetting their own
        password). Returns how many sessions ended. A refused password changes nothing."""
        self._check_exists(name)
        check_new_password(name, password, repeat)
        password_hash = hash_password(password)
        now = self.clock()
        with self._connect() as db:
            db.execute(
                "UPDATE users SET password_hash = ?, failed_logins = 0, locked_until = NULL WHERE name = ?",
                (password_hash, name),
            )
            return _end_sessions(db, name, now, PASSWORD_CHANGED, keep=keep_session)

    def change_password(
        self,
        name: str,
        current: str,
        password: str,
        repeat: str,
        *,
        policy: LockoutPolicy,
        keep_session: str | None = None,
    ) -> int:
        """A user's own change of password. The current one must be right, and a wrong one counts as a
        failed login, so the form cannot be used to guess it; then as reset_password. Returns how many other
        sessions ended. A refused request changes nothing but that count."""
        check_new_password(name, password, repeat)
        if not self.authenticate(name, current, policy):
            raise InvalidInput("current password", "is not your current password; nothing was changed")
        if password == current:
            raise InvalidInput("password", "is your current password; choose a new one")
        return self.reset_password(name, password, repeat, keep_session=keep_session)

    def set_role(self, name: str, role: str) -> int:
        """Make a user an administrator or a plain user; the last administrator who can sign in stays one.
        A change ends the user's sessions, so no open tab goes on with the rights it had. Returns how many
        sessions ended."""
        _check_role(role)
        self._check_exists(name)
        with self._connect() as db:
            if role != "admin":
                _keep_an_administrator(db, name, "make them a plain user")
            changed = db.execute(
                "UPDATE users SET role = ? WHERE name = ? AND role != ?", (role, name, role)
            ).rowcount
            return _end_sessions(db, name, self.clock(), ROLE_CHANGED) if changed else 0

    def disable(self, name: str) -> int:
        """Stop a user from signing in, ending every session of theirs; their jobs and files stay, and the
        name is not free for anyone else. Returns how many sessions ended."""
        self._check_exists(name)
        now = self.clock()
        with self._connect() as db:
            _keep_an_administrator(db, name, "disable them")
            db.execute("UPDATE users SET disabled_at = COALESCE(disabled_at, ?) WHERE name = ?", (now, name))
            return _end_sessions(db, name, now, DISABLED)

    def enable(self, name: str) -> None:
        """Let a disabled user sign in again, with the password they had."""
        self._check_exists(name)
        with self._connect() as db:
            db.execute("UPDATE users SET disabled_at = NULL WHERE name = ?", (name,))

    def unlock(self, name: str) -> None:
        """Lift a lock after failed logins now, instead of when it expires; the password stays."""
        self._check_exists(name)
        with self._connect() as db:
            db.execute("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE name = ?", (name,))

    def _check_exists(self, name: str) -> None:
        if self.get(name) is None:
            raise InvalidInput("user", f"there is no user {name!r}; choose one of the accounts listed")

    def open_session(self, user: str, idle_minutes: int, max_minutes: int | None = None) -> Session:
        """Record a new session for a signed-in user, ending after ``idle_minutes`` without ``touch`` and
        after ``max_minutes`` (default: ``idle_minutes``) in any case; ended sessions are dropped here."""
        now = self.clock()
        expires_at = now + (max_minutes or idle_minutes) * 60
        idle_until = min(expires_at, now + idle_minutes * 60)
        session = Session(secrets.token_urlsafe(32), user, now, expires_at, idle_until, idle_minutes)
        with self._connect() as db:
            db.execute(
                "DELETE FROM sessions WHERE expires_at <= ? OR idle_until <= ? OR revoked_at IS NOT NULL",
                (now, now),
            )
            db.execute(
                "INSERT INTO sessions (id, user, issued_at, expires_at, idle_until, idle_minutes) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (session.id, user, now, expires_at, idle_until, idle_minutes),
            )
        return session

    def check_session(self, session_id: str) -> SessionCheck:
        """The session as the server knows it now: live with its user's role, or ended and why."""
        now = self.clock()
        with self._connect() as db:
            row = db.execute(
                f"SELECT {_SESSION_COLUMNS}, s.revoked_at, s.end_reason, u.role, u.disabled_at "
                "FROM sessions s JOIN users u ON u.name = s.user WHERE s.id = ?",
                (session_id,),
            ).fetchone()
        if row is None:
            return SessionCheck(None, notice=ENDED_NOTICE)
        session = Session(*row[:6])
        revoked_at, end_reason, role, disabled_at = row[6:]
        if disabled_at is not None:
            return SessionCheck(None, notice=END_NOTICES[DISABLED])
        if revoked_at is not None:
            return SessionCheck(None, notice=END_NOTICES.get(end_reason, ENDED_NOTICE))
        if session.expires_at <= now:
            return SessionCheck(None, notice=EXPIRED_NOTICE)
        if session.idle_until <= now:
            return SessionCheck(None, notice=IDLE_NOTICE.format(minutes=session.idle_minutes))
        return SessionCheck(session, role)

    def active_session(self, session_id: str) -> Session | None:
        """The session if it exists, is not revoked, expired or idle, and its user may sign in."""
        return self.check_session(session_id).session

    def touch(self, session_id: str) -> SessionCheck:
        """Its user is at work: a live session's idle end moves its idle minutes from now (never past its
        longest time). Returns the session as the server knows it after: renewed, or ended and why."""
        now = self.clock()
        with self._connect() as db:
            db.execute(
                "UPDATE sessions SET idle_until = min(expires_at, ? + idle_minutes * 60) "
                "WHERE id = ? AND revoked_at IS NULL AND idle_until > ? AND expires_at > ?",
                (now, session_id, now, now),
            )
        return self.check_session(session_id)

    def grant_cookie(self, session_id: str) -> str:
        """A one-time code the browser exchanges for the session's cookie (see orchestrator.auth.routes), so
        the page never holds the token itself."""
        code = secrets.token_urlsafe(32)
        now = self.clock()
        with self._connect() as db:
            db.execute("DELETE FROM cookie_grants WHERE expires_at <= ?", (now,))
            db.execute(
                "INSERT INTO cookie_grants (code, session_id, expires_at) VALUES (?, ?, ?)",
                (code, session_id, now + GRANT_SECONDS),
            )
        return code

    def redeem_grant(self, code: str) -> Session | None:
        """The live session a code was granted for, once: the code is spent whatever the answer."""
        with self._connect() as db:
            row = db.execute(
                "DELETE FROM cookie_grants WHERE code = ? RETURNING session_id, expires_at", (code,)
            ).fetchone()
        if row is None or row[1] <= self.clock():
            return None
        return self.active_session(row[0])

    def revoke_session(self, session_id: str) -> None:
        """Logout: the session id is refused from now on, whoever presents it."""
        with self._connect() as db:
            db.execute(
                "UPDATE sessions SET revoked_at = ?, end_reason = ? WHERE id = ? AND revoked_at IS NULL",
                (self.clock(), LOGGED_OUT, session_id),
            )


_USER_COLUMNS = "name, role, created_at, failed_logins, locked_until, disabled_at, password_hash"
# Sessions of stores older than idle ends last until their end, as they did then.
_SESSION_COLUMNS = (
    "s.id, s.user, s.issued_at, s.expires_at, coalesce(s.idle_until, s.expires_at), "
    "coalesce(s.idle_minutes, round((s.expires_at - s.issued_at) / 60))"
)


def _end_sessions(db: sqlite3.Connection, name: str, now: float, reason: str, keep: str | None = None) -> int:
    """Revoke every live session of ``name`` (but ``keep``) for ``reason``; returns how many ended."""
    return db.execute(
        "UPDATE sessions SET revoked_at = ?, end_reason = ? "
        "WHERE user = ? AND revoked_at IS NULL AND id IS NOT ?",
        (now, reason, name, keep),
    ).rowcount


def _locked(name: str, seconds_left: float) -> AccountLocked:
    minutes = max(1, math.ceil(seconds_left / 60))
    return AccountLocked(
        f"Account {name!r} is locked after too many failed logins; try again in {minutes} minute(s)."
    )


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidInput("role", f"{role!r} is not a role; choose one of {', '.join(ROLES)}")


def _keep_an_administrator(db: sqlite3.Connection, name: str, change: str) -> None:
    """Refuse a change that would leave no administrator able to sign in."""
    role, disabled_at = db.execute("SELECT role, disabled_at FROM users WHERE name = ?", (name,)).fetchone()
    (others,) = db.execute(
        "SELECT count(*) FROM users WHERE role = 'admin' AND disabled_at IS NULL AND name != ?", (name,)
    ).fetchone()
    if role == "admin" and disabled_at is None and others == 0:
        raise InvalidInput(
            "user",
            f"{name!r} is the only administrator who can sign in; make another user an administrator before "
            f"you {change}",
        )
