"""Errors that handlers raise; the web layer turns each into one problem+json response."""

from __future__ import annotations


class Problem(Exception):
    status = 400
    title = "Bad request"
    slug = "bad-request"

    def __init__(self, detail: str, errors: dict | None = None, headers: dict | None = None) -> None:
        super().__init__(detail)
        self.detail, self.errors, self.headers = detail, errors, headers or {}


class NotFound(Problem):
    status, title, slug = 404, "Not found", "not-found"


class Conflict(Problem):
    status, title, slug = 409, "Conflict", "conflict"


class Forbidden(Problem):
    status, title, slug = 403, "Forbidden", "forbidden"


class Unauthorized(Problem):
    status, title, slug = 401, "Unauthorized", "unauthorized"


class Invalid(Problem):
    """A field-level validation failure found by a handler (an unknown topic, say)."""

    status, title, slug = 422, "Validation failed", "validation-error"


class TooLarge(Problem):
    """A body, or a part of it (an attached file), larger than the limit: its detail names what."""

    status, title, slug = 413, "Payload too large", "payload-too-large"


class TooManyRequests(Problem):
    """A rate limit was reached; raise it with a Retry-After header (seconds until the window ends)."""

    status, title, slug = 429, "Too many requests", "too-many-requests"


class Unavailable(Problem):
    status, title, slug = 503, "Service unavailable", "unavailable"


# problem+json's `type` is urn:ticketflow:problem:<slug>, by status
SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    408: "request-timeout",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    431: "request-header-fields-too-large",
    500: "internal-error",
    502: "bad-gateway",
    503: "unavailable",
}
