"""Login settings: cookie signing key, session length and lockout policy, read through orchestrator.config.

Each has an environment name (which wins) that may also be a key of the secrets file. Without a configured
key, the cookie key is generated once into the data root's ``state/cookie_key`` (mode 0600) and reused.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field

from orchestrator.auth.store import LockoutPolicy, UserStore
from orchestrator.config import get_settings, int_setting, lookup
from orchestrator.errors import InvalidInput

COOKIE_KEY_ENV = "ORCHESTRATOR_COOKIE_KEY"
SESSION_MINUTES_ENV = "ORCHESTRATOR_SESSION_MINUTES"
MAX_FAILED_LOGINS_ENV = "ORCHESTRATOR_MAX_FAILED_LOGINS"
LOCKOUT_MINUTES_ENV = "ORCHESTRATOR_LOCKOUT_MINUTES"
MIN_COOKIE_KEY_CHARS = 64  # 32 random bytes written as hex; denser encodings are longer than needed
COOKIE_NAME = "workbench_session"


@dataclass(frozen=True)
class AuthSettings:
    """Everything the login frame needs, resolved once per script run."""

    cookie_key: str = field(repr=False)
    session_minutes: int
    lockout: LockoutPolicy


def open_user_store() -> UserStore:
    """The users database of this data root."""
    return UserStore(get_settings().state_dir / "users.sqlite")


def load_auth_settings() -> AuthSettings:
    """Resolve the login settings now; a bad value raises InvalidInput naming its setting."""
    return AuthSettings(
        cookie_key=_cookie_key(),
        session_minutes=int_setting(SESSION_MINUTES_ENV, 30, 1, 24 * 60),
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
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _long_enough(str(path), path.read_text().strip())
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))
    return path.read_text()


def _long_enough(source: str, key: str) -> str:
    if len(key) < MIN_COOKIE_KEY_CHARS:
        raise InvalidInput(
            source,
            f"the cookie key has {len(key)} characters; use at least {MIN_COOKIE_KEY_CHARS}, "
            "e.g. the output of python -c 'import secrets; print(secrets.token_hex(32))'",
        )
    return key
