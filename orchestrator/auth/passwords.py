"""Password rules and bcrypt hashing: a password is hashed once, when set, and only its hash is stored."""

from __future__ import annotations

from functools import cache

import bcrypt

from orchestrator.errors import InvalidInput

MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_BYTES = 72  # bcrypt reads no further; longer passwords are refused rather than truncated
PASSWORD_RULES = (
    f"A password has at least {MIN_PASSWORD_CHARS} characters and at most {MAX_PASSWORD_BYTES} bytes, "
    "no space at its start or end, and is not the user name."
)


def check_new_password(user: str, password: str, repeat: str) -> str:
    """A password being set must be long, fit bcrypt, survive the login form's trimming and be typed twice."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidInput("password", f"use at least {MIN_PASSWORD_CHARS} characters")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise InvalidInput("password", f"use at most {MAX_PASSWORD_BYTES} bytes (bcrypt ignores the rest)")
    if password != password.strip():
        raise InvalidInput("password", "must not begin or end with a space (the login form trims them)")
    if password.lower() == user.lower():
        raise InvalidInput("password", "must differ from the user name")
    if repeat != password:
        raise InvalidInput("repeat password", "does not match the password; type the same password twice")
    return password


def hash_password(password: str) -> str:
    """A salted bcrypt hash (cost 12) of a password that passed check_new_password."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(12)).decode()


def password_matches(password: str, password_hash: str) -> bool:
    """Whether a typed password matches a stored hash; too long a password never matches."""
    encoded = password.encode()
    if len(encoded) > MAX_PASSWORD_BYTES:
        return False
    return bcrypt.checkpw(encoded, password_hash.encode())


@cache
def decoy_hash() -> str:
    """A hash checked for unknown user names, so that a login takes as long whether the user exists or not."""
    return hash_password("decoy password, never set for any user")
