"""Switchboard's one exception tree, and nothing else.

Every error a client can see is a ``SwitchboardError``; a single handler (``app.http.errors``)
turns it into the OpenAI error envelope ``{"error": {"message", "type", "param", "code"}}``.
Adapters raise the ``UpstreamError`` branch and map provider status codes in one place each,
chaining the cause with ``raise ... from exc``. Messages never carry provider keys.

    SwitchboardError                      500 api_error
    ├── ConfigError                       (start-up only: bad catalog, bad settings)
    ├── RequestError                      400 invalid_request_error
    │   ├── PayloadTooLarge               413
    │   ├── InvalidUpload                 400 invalid_upload (an unreadable or unusable file)
    │   ├── NotFound                      404 not_found
    │   │   └── ModelNotFound             404 model_not_found
    │   └── NoEligibleModel               400 no_eligible_model
    ├── AuthenticationError               401 authentication_error
    ├── PermissionDenied                  403 permission_error
    ├── RateLimited                       429 rate_limit_exceeded (+ Retry-After)
    ├── Overloaded                        503 overloaded (+ Retry-After): Switchboard itself is
    │                                         too busy to route the request in time
    └── UpstreamError                     502 upstream_error     (provider side)
        ├── UpstreamTimeout               504  retryable
        ├── UpstreamUnavailable           503  retryable (connect errors, 5xx, 408, 409)
        ├── UpstreamRateLimited           429  retryable (+ Retry-After)
        ├── UpstreamAuthError             502  not retryable (our key is wrong, not the caller's)
        ├── UpstreamBadRequest            400  not retryable (the provider rejected the request)
        └── UpstreamBusy                  503  no free slot for the call (+ Retry-After); not the
                                               provider's fault: no breaker, no retry, next model

``provider_fault`` says whether an error counts against the provider (breaker, latency record).
"""

from __future__ import annotations


class SwitchboardError(Exception):
    """Base class: carries what the OpenAI error envelope needs."""

    status_code = 500
    error_type = "api_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.retry_after = retry_after

    def envelope(self) -> dict[str, dict[str, str | None]]:
        """The OpenAI error body for this error."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class ConfigError(SwitchboardError):
    """The catalog or settings are invalid; raised at start-up with a readable message."""

    code = "config_error"


class RequestError(SwitchboardError):
    status_code = 400
    error_type = "invalid_request_error"
    code = "invalid_request"


class PayloadTooLarge(RequestError):
    status_code = 413
    code = "payload_too_large"


class InvalidUpload(RequestError):
    """An uploaded file (e.g. a recording) cannot be used; ``param`` names the form field."""

    code = "invalid_upload"


class NotFound(RequestError):
    status_code = 404
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class NoEligibleModel(RequestError):
    code = "no_eligible_model"


class AuthenticationError(SwitchboardError):
    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(SwitchboardError):
    status_code = 403
    error_type = "permission_error"
    code = "permission_denied"


class RateLimited(SwitchboardError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class Overloaded(SwitchboardError):
    """Switchboard is too busy to decide in time (``app.embedding.batcher``): shed at once."""

    status_code = 503
    error_type = "server_error"
    code = "overloaded"


class UpstreamError(SwitchboardError):
    """The provider failed. ``retryable`` says whether trying again (or elsewhere) is safe."""

    status_code = 502
    error_type = "upstream_error"
    code = "upstream_error"
    retryable = False
    provider_fault = True


class UpstreamTimeout(UpstreamError):
    status_code = 504
    code = "upstream_timeout"
    retryable = True


class UpstreamUnavailable(UpstreamError):
    status_code = 503
    code = "upstream_unavailable"
    retryable = True


class UpstreamRateLimited(UpstreamError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "upstream_rate_limited"
    retryable = True


class UpstreamAuthError(UpstreamError):
    code = "upstream_auth_error"


class UpstreamBadRequest(UpstreamError):
    status_code = 400
    error_type = "invalid_request_error"
    code = "upstream_bad_request"


class UpstreamBusy(UpstreamError):
    """Every slot for calls to the model is taken (``app.gateway.capacity``), or the pool is."""

    status_code = 503
    code = "overloaded"
    provider_fault = False
