"""The session cookie: an HS256 JWT whose id (jti) must name a live session in the user store."""

from __future__ import annotations

import jwt

from orchestrator.auth.store import Session, UserStore

_ALGORITHM = "HS256"
_REQUIRED_CLAIMS = ["sub", "jti", "iat", "exp"]


def sign_session(key: str, session: Session) -> str:
    """The token that names ``session``, valid until the session's longest time."""
    claims = {
        "sub": session.user,
        "jti": session.id,
        "iat": int(session.issued_at),
        "exp": int(session.expires_at),
    }
    return jwt.encode(claims, key, algorithm=_ALGORITHM)


def verify_token(store: UserStore, key: str, token: str) -> Session | None:
    """The session a cookie names, or None if it is forged, signed with another key, expired or revoked."""
    try:
        claims = jwt.decode(token, key, algorithms=[_ALGORITHM], options={"require": _REQUIRED_CLAIMS})
    except jwt.InvalidTokenError:
        return None
    session = store.active_session(str(claims["jti"]))
    if session is None or session.user != claims["sub"]:
        return None
    return session
