"""Who is calling: API keys, and the ``Caller`` every request path carries.

Keys are optional: without ``SWITCHBOARD_REQUIRE_API_KEY`` an anonymous call is served without
limits. A presented Switchboard key (``sk-sb-...``) must be valid (401 otherwise: revoked keys
stop working); any other bearer token, such as the placeholder an OpenAI SDK insists on, counts
as anonymous unless keys are required. The key's rate limits and budget are applied per request
by ``app.pipeline.ledger``.

If the shared store is down, ``SWITCHBOARD_FAIL_OPEN`` (default true) serves calls without
checking the key rather than refusing them; routing never depends on the store.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass

from app.errors import AuthenticationError
from app.settings import Settings
from app.state import KEY_PREFIX, ApiKeyRecord, StateStore, StateUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Caller:
    """Who is calling: a Switchboard API key, or nobody in particular (``key`` None)."""

    key: ApiKeyRecord | None = None

    @property
    def tenant(self) -> str | None:
        """What per-caller state is kept under (conversation memory, decisions, cache)."""
        return self.key.id if self.key else None

    @property
    def name(self) -> str | None:
        return self.key.name if self.key else None


ANONYMOUS = Caller()


def same_secret(given: str | None, expected: str | None) -> bool:
    """Constant-time equality of two secrets; False when either is missing or empty.

    Compares UTF-8 bytes: ``hmac.compare_digest`` refuses ``str`` with non-ASCII characters
    (a TypeError, so a 500), and a header may carry any byte. ``surrogatepass`` lets even a
    lone surrogate from a decoded body encode, so no input can make this raise.
    """
    if not given or not expected:
        return False
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def authenticate(
    store: StateStore, authorization: str | None, *, required: bool, fail_open: bool
) -> ApiKeyRecord | None:
    token = bearer(authorization)
    if token is not None and not token.startswith(KEY_PREFIX) and not required:
        token = None  # an SDK placeholder, not one of our keys
    if token is None:
        if required:
            raise AuthenticationError("an API key is required: send 'Authorization: Bearer <key>'")
        return None
    try:
        record = await store.lookup_key(token)
    except StateUnavailable:
        if fail_open and not required:
            log.warning("state store down: serving a keyed call without checking the key")
            return None
        raise
    if record is None:
        raise AuthenticationError("invalid API key")
    return record


def anonymous_notice(settings: Settings) -> str | None:
    """The start-up line that says what callers without a key may do (None if keys are required)."""
    if settings.require_api_key:
        return None
    glasses = "" if settings.noa_auth_value else f", and take glasses turns on {settings.noa_path}"
    console = "" if settings.admin_key else "; the /ui console is open without a login"
    return (
        "SWITCHBOARD_REQUIRE_API_KEY=false: anonymous callers (no key, or a bearer token that is "
        "not a Switchboard key) can call every available model without rate limits or budget "
        "(/v1/chat/completions and the other model APIs), route with /v1/route, steer routing "
        f"for everyone with /v1/feedback{glasses}{console}. Set it to true to require keys."
    )
