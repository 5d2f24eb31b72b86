"""Who is calling, and may they: API keys, rate limits (requests and tokens per minute), budgets.

Keys are optional: without ``SWITCHBOARD_REQUIRE_API_KEY`` an anonymous call is served without
limits. A presented Switchboard key (``sk-sb-...``) must be valid (401 otherwise: revoked keys
stop working) and its limits apply; any other bearer token, such as the placeholder an OpenAI SDK
insists on, counts as anonymous unless keys are required. A budget is
enforced by reserving the call's estimated cost before the call (atomic in Redis, so 50
concurrent calls cannot overspend) and settling with the actual cost after it, streamed or not.
Set ``max_tokens`` for a hard cap: the estimate assumes that many output tokens.

If the shared store is down, ``SWITCHBOARD_FAIL_OPEN`` (default true) serves calls without
limits rather than refusing them; routing never depends on the store.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass, field

from app.errors import AuthenticationError, RateLimited
from app.settings import Settings
from app.state import KEY_PREFIX, ApiKeyRecord, RateDecision, StateStore, StateUnavailable

log = logging.getLogger(__name__)
WINDOW_S = 60.0


@dataclass
class Admission:
    """A call let in: what it reserved, and the rate-limit headers to send back."""

    key: ApiKeyRecord | None = None
    reserved_usd: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


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


def _headers(kind: str, decision: RateDecision) -> dict[str, str]:
    return {
        f"x-ratelimit-limit-{kind}": str(decision.limit),
        f"x-ratelimit-remaining-{kind}": str(decision.remaining),
        f"x-ratelimit-reset-{kind}": f"{decision.reset_s:.3f}s",
    }


async def admit(
    store: StateStore, key: ApiKeyRecord | None, tokens: int, cost_usd: float, *, fail_open: bool
) -> Admission:
    """Apply the key's limits to a call of ~``tokens`` tokens and ~``cost_usd``; raise 429."""
    admission = Admission(key)
    if key is None:
        return admission
    try:
        for kind, limit, amount in (("requests", key.rpm, 1), ("tokens", key.tpm, tokens)):
            if limit is None:
                continue
            decision = await store.hit(f"{key.id}:{kind}", amount, limit, WINDOW_S)
            admission.headers |= _headers(kind, decision)
            if not decision.allowed:
                raise RateLimited(f"rate limit of {limit} {kind} per minute reached for this key",
                                  retry_after=decision.retry_after)  # fmt: skip
        if key.budget_usd is not None:
            if not await store.reserve(key.id, cost_usd, key.budget_usd):
                raise RateLimited(f"the key's budget of ${key.budget_usd:g} is spent",
                                  code="insufficient_quota", retry_after=3600)  # fmt: skip
            admission.reserved_usd = cost_usd
    except StateUnavailable:
        if not fail_open:
            raise
        log.warning("state store down: serving without rate limits or budget (fail open)")
    return admission


async def settle(store: StateStore, admission: Admission, actual_usd: float) -> None:
    """Record a finished call's spend and release its reservation."""
    if admission.key is None:
        return
    try:
        await store.settle(admission.key.id, admission.reserved_usd, actual_usd)
    except StateUnavailable:
        log.error(
            "state store down: %.6f USD spent by %s not recorded", actual_usd, admission.key.id
        )
