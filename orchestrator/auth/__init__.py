"""Who may use the workbench: users with bcrypt-hashed passwords, lockout, and revocable session cookies."""

from orchestrator.auth.settings import AuthSettings, load_auth_settings, open_user_store
from orchestrator.auth.store import (
    ROLES,
    AccountDisabled,
    AccountLocked,
    LockoutPolicy,
    Session,
    SessionCheck,
    User,
    UserStore,
)
from orchestrator.auth.tokens import sign_session, verify_token

__all__ = [
    "ROLES",
    "AccountDisabled",
    "AccountLocked",
    "AuthSettings",
    "LockoutPolicy",
    "Session",
    "SessionCheck",
    "User",
    "UserStore",
    "load_auth_settings",
    "open_user_store",
    "sign_session",
    "verify_token",
]
