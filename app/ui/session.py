"""Console sessions: a signed cookie, the CSRF token bound to it, and the login form's token.

The cookie is ``<expires>.<nonce>.<signature>``, an HMAC-SHA256 under a key derived from the
admin key, so a forged cookie fails without a store lookup and changing ``SWITCHBOARD_ADMIN_KEY``
ends every session at once. The nonce is also the session's id in the state store (with its
expiry as TTL): logging out drops it there, so a copy of the cookie stops working on every
worker, which a signature alone could not do. The CSRF token is a second HMAC of the nonce: the
page carries it, the browser never sends it by itself, and the console's API refuses unsafe
methods without it. The login form, which has no session yet, carries a random token that must
match a cookie set with the form (double submit).

Every comparison of secrets is ``app.pipeline.access.same_secret`` (``compare_digest`` on bytes).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from app.pipeline.access import same_secret
from app.state import StateStore

COOKIE = "sb_console"
LOGIN_COOKIE = "sb_console_login"
SESSION_S = 12 * 3600
LOGIN_FORM_S = 3600
_CONTEXT = b"switchboard console session v1"


@dataclass(frozen=True)
class Session:
    nonce: str
    expires: int
    csrf: str


def _signing_key(admin_key: str) -> bytes:
    return hmac.new(admin_key.encode(), _CONTEXT, hashlib.sha256).digest()


def _mac(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def open_session(admin_key: str, now: float | None = None) -> tuple[str, Session]:
    """A new session: (cookie value, session)."""
    key = _signing_key(admin_key)
    nonce = secrets.token_urlsafe(24)
    expires = int(now if now is not None else time.time()) + SESSION_S
    payload = f"{expires}.{nonce}"
    return f"{payload}.{_mac(key, payload)}", Session(nonce, expires, _mac(key, "csrf." + nonce))


def read_session(cookie: str | None, admin_key: str, now: float | None = None) -> Session | None:
    """The session a cookie proves, or None (missing, forged, expired, or another admin key)."""
    if not cookie or len(cookie) > 200:
        return None
    payload, _, signature = cookie.rpartition(".")
    expires, _, nonce = payload.partition(".")
    key = _signing_key(admin_key)
    if not nonce or not expires.isdigit() or not same_secret(signature, _mac(key, payload)):
        return None
    if int(expires) <= (now if now is not None else time.time()):
        return None
    return Session(nonce, int(expires), _mac(key, "csrf." + nonce))


async def start(store: StateStore, admin_key: str) -> tuple[str, Session]:
    """Log in: a new session, open in the store until it expires; (cookie value, session)."""
    cookie, opened = open_session(admin_key)
    await store.add_session(opened.nonce, SESSION_S)
    return cookie, opened


async def current(store: StateStore, cookie: str | None, admin_key: str) -> Session | None:
    """The session a cookie proves and the store still holds open, or None."""
    found = read_session(cookie, admin_key)
    if found is None or not await store.has_session(found.nonce):
        return None
    return found


def is_admin_key(candidate: str, admin_key: str) -> bool:
    return same_secret(candidate, admin_key)


def login_token() -> str:
    """A fresh token for the login form and its cookie."""
    return secrets.token_urlsafe(24)
