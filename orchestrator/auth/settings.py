"""Login settings: cookie signing key, session lengths, lockout policy and the first run's setup token, read
through orchestrator.config.

Each has an environment name (which wins) that may also be a key of the secrets file. Without a configured
value, the cookie key and the setup token are generated once into the data root's ``state/`` (mode 0600):
the key is reused, the token is removed once the first administrator exists.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.auth.store import LockoutPolicy, User, UserStore
from orchestrator.config import get_settings, int_setting, lookup
from orchestrator.errors import InvalidInput

COOKIE_KEY_ENV = "ORCHESTRATOR_COOKIE_KEY"
SESSION_MINUTES_ENV = "ORCHESTRATOR_SESSION_MINUTES"  # idle minutes that end a session
SESSION_MAX_HOURS_ENV = "ORCHESTRATOR_SESSION_MAX_HOURS"  # a session's longest life, however busy
SETUP_TOKEN_ENV = "ORCHESTRATOR_SETUP_TOKEN"
MAX_FAILED_LOGINS_ENV = "ORCHESTRATOR_MAX_FAILED_LOGINS"
LOCKOUT_MINUTES_ENV = "ORCHESTRATOR_LOCKOUT_MINUTES"
MIN_COOKIE_KEY_CHARS = 64  # 32 random bytes written as hex; denser encodings are longer than needed
COOKIE_NAME = "workbench_session"


@dataclass(frozen=True)
class AuthSettings:
    """Everything the login frame needs, resolved once per script run."""

    cookie_key: str = field(repr=False)
    session_minutes: int  # idle time that ends a session
    session_max_minutes: int  # the longest a session lives, renewed or not
    lockout: LockoutPolicy


def open_user_store() -> UserStore:
    """The users database of this data root."""
    return UserStore(get_settings().state_dir / "users.sqlite")


def load_auth_settings() -> AuthSettings:
    """Resolve the login settings now; a bad value raises InvalidInput naming its setting."""
    return AuthSettings(
        cookie_key=_cookie_key(),
        session_minutes=int_setting(SESSION_MINUTES_ENV, 30, 1, 24 * 60),
        session_max_minutes=int_setting(SESSION_MAX_HOURS_ENV, 12, 1, 30 * 24) * 60,
        lockout=LockoutPolicy(
            max_failed_logins=int_setting(MAX_FAILED_LOGINS_ENV, 5, 1, 100),
            lockout_minutes=int_setting(LOCKOUT_MINUTES_ENV, 15, 1, 24 * 60),
        ),
    )


def _cookie_key() -> str:
    """The configured key if long enough, else the generated key file, created on first use."""
    if configured := lookup(COOKIE_KEY_ENV):
        return _long_enough(COOKIE_KEY_ENV, configured)
    path = get_settings().state_dir / "cookie_key"
    return _long_enough(str(path), _generated_secret(path))


def _generated_secret(path: Path) -> str:
    """The random secret in ``path``, written (mode 0600) by the first process that asks for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))
    return path.read_text()


def setup_token_file() -> Path:
    return get_settings().state_dir / "setup_token"


def setup_token() -> str:
    """The one-time token the first-administrator form asks for, so that not anyone who reaches a fresh
    server can claim it: the configured one, else one generated for this data root (printed at start)."""
    return lookup(SETUP_TOKEN_ENV) or _generated_secret(setup_token_file())


def create_first_admin(store: UserStore, token: str, name: str, password: str, repeat: str) -> User:
    """The first run's administrator, given the setup token; the generated token is spent by it."""
    if not secrets.compare_digest(token.strip().encode(), setup_token().encode()):
        raise InvalidInput(
            "setup token",
            "is not this server's; copy it from the output of `make run` (or the server log), or from "
            f"{SETUP_TOKEN_ENV} where it is configured",
        )
    user = store.create_first_admin(name, password, repeat)
    setup_token_file().unlink(missing_ok=True)
    return user


def _long_enough(source: str, key: str) -> str:
    if len(key) < MIN_COOKIE_KEY_CHARS:
        raise InvalidInput(
            source,
            f"the cookie key has {len(key)} characters; use at least {MIN_COOKIE_KEY_CHARS}, "
            "e.g. the output of python -c 'import secrets; print(secrets.token_hex(32))'",
        )
    return key
