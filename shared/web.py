"""The web plumbing every service shares: errors, request ids, health, metrics and bearer-token roles.

problem+json for every error, X-Request-ID in and out, /healthz, /readyz, /metrics,
/openapi.json with a docs page, the 1 MiB body limit, JSON-only bodies and bearer auth.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from functools import cache, wraps
from pathlib import Path

from flask import Flask, Response, g, jsonify, request
from flask_smorest import Api
from marshmallow import Schema, fields
from pymongo.errors import ConnectionFailure, PyMongoError
from werkzeug.exceptions import BadRequest, ClientDisconnected, HTTPException, MethodNotAllowed, RequestEntityTooLarge

from shared import metrics, mongo
from shared.auth import AuthError, Principal, decode_token
from shared.bus import BrokerProbe
from shared.config import Settings, load_settings
from shared.errors import SLUGS, Forbidden, Problem, Unauthorized
from shared.events import Timestamp

log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024
WITHOUT_STORAGE = ("healthz", "readyz", "metrics_endpoint", "docs", "docs_asset", "api-docs.openapi_json")
READY_CACHE_SECONDS = 1.5  # /readyz answers from its last probe for this long: one probe for a burst of calls
PROBLEM_JSON = "application/problem+json"
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class BodyTooLarge(RequestEntityTooLarge):
    """A body over its route's limit, refused before any of it is read: problem+json, or a page where a service
    renders its errors as pages (the portal's)."""

    name = "Payload too large"


def too_many_parts(request) -> bool:
    """Whether a RequestEntityTooLarge met while a form was read says its parts are too many (werkzeug's
    max_form_parts, a file or field each), not its size: the body's stated length is within its limit (a larger one
    is refused before it is read)."""
    length, limit = request.content_length, request.max_content_length
    return length is not None and limit is not None and length <= limit


class ProblemSchema(Schema):
    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


def problem(status: int, title: str, detail: str, errors: dict | None = None, headers: dict | None = None) -> Response:
    body = {
        "type": f"urn:ticketflow:problem:{SLUGS.get(status, 'error')}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_JSON
    response.headers.update(headers or {})
    return response


def flatten_errors(messages, prefix: str = "") -> dict[str, list[str]]:
    """webargs/marshmallow messages -> {"requester.email": ["Not a valid email address."]}."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for field, msgs in flatten_errors(value, name).items():
                out.setdefault(field, []).extend(msgs)
    elif isinstance(messages, list | tuple):
        for item in messages:
            if isinstance(item, dict | list):
                for field, msgs in flatten_errors(item, prefix).items():
                    out.setdefault(field, []).extend(msgs)
            else:
                out.setdefault(prefix or "_schema", []).append(str(item))
    else:
        out.setdefault(prefix or "_schema", []).append(str(messages))
    return out


class ServiceApi(Api):
    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self):
        """The error responses the document describes are problem+json, as the API answers."""
        content_type = self.DEFAULT_RESPONSE_CONTENT_TYPE
        self.DEFAULT_RESPONSE_CONTENT_TYPE = PROBLEM_JSON
        try:
            super()._register_responses()
        finally:
            self.DEFAULT_RESPONSE_CONTENT_TYPE = content_type

    def handle_http_exception(self, error: HTTPException):
        if isinstance(error, ClientDisconnected):  # the body stopped coming (gone, or silent past the read timeout)
            return stalled_body()
        data = getattr(error, "data", None) or {}
        messages = data.get("messages")
        if error.code == 422 and messages:
            # webargs nests by location ("json", "query"); the field names are what clients know
            errors = {}
            for location_errors in messages.values():
                errors.update(flatten_errors(location_errors))
            return problem(422, "Validation failed", "The request has invalid fields.", errors)
        if error.code == 400 and messages:
            return problem(400, "Bad request", "The body is not valid JSON.")
        detail = data.get("message") or error.description or error.name
        headers = dict(data.get("headers") or {})
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            headers["Allow"] = ", ".join(error.valid_methods)
        return problem(error.code or 500, error.name, detail, headers=headers)


def create_service_app(
    service: str,
    description: str,
    settings: Settings | None = None,
    ready_checks: list[Callable[[], bool]] | None = None,
    *,
    broker: bool = True,
    json_only: Callable[[str], bool] = lambda path: True,
    api_class: type[ServiceApi] | None = None,
    body_limit: Callable[[str, str], int] = lambda method, path: MAX_BODY,
) -> tuple[Flask, ServiceApi]:
    """A service's Flask app with the shared plumbing.

    The portal differs in three ways: its pages need no broker (`broker=False`: /readyz does not probe
    RabbitMQ; only its admins' health page asks the queues' counts), only its JSON API takes JSON bodies
    (`json_only(path)`; its pages post forms), and it renders errors for browsers as pages (`api_class`, a
    ServiceApi that knows which are pages).
    `body_limit(method, path)`: the most bytes a request's body may have (1 MiB; more where files are
    uploaded); a larger Content-Length is refused (413) before any of it is read, and a body without one
    stops being read there (Flask's max_content_length, set per request).
    """
    settings = settings or load_settings()
    from shared.runtime import configure_logging

    configure_logging(settings)  # TICKETFLOW_LOG_LEVEL, as in the workers (gunicorn's own lines: GUNICORN_LOG_LEVEL)
    app = Flask(f"ticketflow.{service}", static_folder=None)  # the portal serves its files from a blueprint
    app.config.update(
        API_TITLE=f"ticketflow {service}",
        API_VERSION="1.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=MAX_BODY,
        JSON_SORT_KEYS=False,
        API_SPEC_OPTIONS={
            "info": {"description": description},
            "components": {
                "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
            },
        },
    )
    app.json.sort_keys = False
    app.extensions["ticketflow.settings"] = settings
    app.extensions["ticketflow.secret"] = settings.require_secret()  # what the service signs with
    app.extensions["ticketflow.secrets"] = settings.accepted_secrets()  # what it accepts
    api = (api_class or ServiceApi)(app)
    api.register_field(Timestamp, "string", "date-time")
    _install_hooks(app, service, json_only, body_limit)
    _install_error_handlers(app)
    _install_probes(app, settings, ready_checks or [], broker)
    _install_docs(app, service)
    return app, api


def _install_hooks(
    app: Flask, service: str, json_only: Callable[[str], bool], body_limit: Callable[[str, str], int]
) -> None:
    @app.before_request
    def start():
        g.started = time.perf_counter()
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex
        try:  # werkzeug decodes the query strictly when it is first read: its error would be a 500
            request.query_string.decode()
        except UnicodeDecodeError:
            raise BadRequest("The address's query is not UTF-8: percent-encode its bytes (%C3%A9 for é).") from None
        if _needs_storage(request.endpoint) and mongo.known_down(app.extensions["ticketflow.settings"]):
            raise mongo.StorageDown("the database did not answer a moment ago")
        limit = body_limit(request.method, request.path)
        request.max_content_length = limit
        # a form's text field may be as long as the body (the page says it is too long, next to it): below the body's
        # limit, only too many parts stop a form being read (too_many_parts)
        request.max_form_memory_size = limit
        too_large = f"The body is larger than {limit / (1024 * 1024):g} MiB."
        if request.content_length is not None and request.content_length > limit:
            raise BodyTooLarge(too_large)
        chunked = request.content_length is None and "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        has_body = bool(request.content_length) or chunked
        if not json_only(request.path):
            return None  # a form's body (the portal's pages) is read by its view, after the session and its token
        if chunked:  # werkzeug ends a chunked body at the limit without a word: one byte more tells (JSON: <= 1 MiB)
            request.max_content_length = limit + 1
            if len(request.get_data(cache=True)) > limit:
                raise BodyTooLarge(too_large)
        if request.method in ("POST", "PUT", "PATCH") and has_body and not request.is_json:
            return problem(400, "Bad request", "The body must be JSON (Content-Type: application/json).")
        if has_body and request.is_json:
            return _body_problem(request.get_data(cache=True))
        return None

    @app.after_request
    def finish(response: Response):
        response.headers["X-Request-ID"] = getattr(g, "request_id", None) or uuid.uuid4().hex
        response.headers["X-Content-Type-Options"] = "nosniff"
        if response.status_code < 500 and response.status_code not in (401, 403) and _needs_storage(request.endpoint):
            mongo.note_answer(app.extensions["ticketflow.settings"])  # it reached the database: no longer down
        route = request.url_rule.rule if request.url_rule else "unmatched"
        elapsed = time.perf_counter() - getattr(g, "started", time.perf_counter())
        metrics.REQUEST_LATENCY.labels(service, request.method, route, str(response.status_code)).observe(elapsed)
        return response


def stalled_body() -> Response:
    """A request whose body stopped coming before its end (silent past gunicorn_worker.READ_TIMEOUT, or gone):
    werkzeug's ClientDisconnected."""
    log.info("the body of %s %s stopped coming", request.method, request.path)
    return problem(408, "Request timeout", "The request's body stopped arriving before its end; send it again.")


def _needs_storage(endpoint: str | None) -> bool:
    """Whether a route may read or write the database (probes, docs and static files do not; nor a 404)."""
    return endpoint is not None and endpoint not in WITHOUT_STORAGE and not endpoint.endswith(".static")


def _body_problem(raw: bytes) -> Response | None:
    """400 for JSON that the views' parser would choke on rather than reject (it reports only syntax errors)."""
    try:
        document = json.loads(raw)
    except RecursionError:
        return problem(400, "Bad request", "The body is nested too deeply.")
    except ValueError as exc:  # syntax, or an integer of more than 4300 digits
        return problem(400, "Bad request", f"The body is not valid JSON: {exc}")
    if b"\\u" in raw and _has_lone_surrogate(document):  # the only way to write one: skip the walk for most bodies
        return problem(400, "Bad request", "The body has text that is not valid Unicode (a lone surrogate).")
    return None


def _has_lone_surrogate(document: object) -> bool:
    """JSON may escape half of a UTF-16 pair (\\ud800) alone: valid JSON, but no text can be stored or sent."""
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _install_error_handlers(app: Flask) -> None:
    @app.errorhandler(Problem)
    def domain_problem(exc: Problem):
        return problem(exc.status, exc.title, exc.detail, exc.errors, exc.headers)

    @app.errorhandler(ConnectionFailure)
    def storage_down(exc):
        mongo.note_failure(app.extensions["ticketflow.settings"], exc)
        if not isinstance(exc, mongo.StorageDown):  # the requests refused at once are not logged one by one
            log.warning("storage unavailable: %r", exc)
        return problem(
            503, "Service unavailable", "Storage is unavailable; try again shortly.", headers={"Retry-After": "2"}
        )

    @app.errorhandler(Exception)
    def unexpected(exc):  # HTTPExceptions go to ServiceApi.handle_http_exception, the more specific handler
        log.exception("unhandled error on %s %s", request.method, request.path)
        if isinstance(exc, PyMongoError):
            return problem(
                503, "Service unavailable", "Storage failed; try again shortly.", headers={"Retry-After": "2"}
            )
        return problem(500, "Internal server error", "Something went wrong on our side; it has been logged.")


def _install_probes(app: Flask, settings: Settings, checks: list[Callable[[], bool]], broker: bool) -> None:
    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})

    lock, last = threading.Lock(), {"at": float("-inf"), "status": {}}
    rabbitmq = BrokerProbe(settings, timeout=1.0)  # its connection is kept: not one per probe
    app.extensions["ticketflow.readyz"] = rabbitmq  # for closing it (tests)

    @app.get("/readyz")
    def readyz():
        """Probes MongoDB and RabbitMQ at most once per READY_CACHE_SECONDS in this process (it needs no token).

        `?ignore=rabbitmq` (a check's name, repeated or comma-separated) still reports that check but answers
        200 without it: Kubernetes' readiness probe of an api asks so, since an api serves while the broker is
        away (its events wait in the outbox), and every pod out of its Service at once would stop them all."""
        with lock:  # concurrent calls wait for the one probe under way rather than open their own connections
            if time.monotonic() - last["at"] >= READY_CACHE_SECONDS:
                status = {"mongodb": mongo.ping(settings)}
                if broker:
                    status["rabbitmq"] = rabbitmq.answers()
                status.update({check.__name__: bool(check()) for check in checks})
                last.update(at=time.monotonic(), status=status)
            status = dict(last["status"])
        ignored = {name.strip() for asked in request.args.getlist("ignore") for name in asked.split(",")}
        ready = all(answered for name, answered in status.items() if name not in ignored)
        return jsonify({"status": "ready" if ready else "not ready", "checks": status}), 200 if ready else 503

    @app.get("/metrics")
    def metrics_endpoint():
        body, content_type = metrics.render()
        return Response(body, content_type=content_type)


# Swagger UI, served by the service itself from a pinned package (flask-swagger-ui bundles its dist):
# no CDN, nothing loaded from another origin. tests/integration/test_web_hardening.py records the
# sha256 of each file, so an upgrade of the package is a deliberate change.
SWAGGER_UI_VERSION = "5.34.0"
DOCS_ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
DOCS_INIT_JS = """window.addEventListener("load", function () {
  var container = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: container.getAttribute("data-spec-url"),
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true
  });
});
"""
DOCS_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ticketflow {service} API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui" data-spec-url="/openapi.json"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/init.js"></script>
</body>
</html>
"""


def swagger_ui_dist() -> Path:
    """The folder of Swagger UI's files inside the installed flask-swagger-ui package."""
    spec = importlib.util.find_spec("flask_swagger_ui")
    if spec is None or spec.origin is None:
        raise RuntimeError("flask-swagger-ui is not installed: /docs needs its Swagger UI files")
    return Path(spec.origin).parent / "dist"


@cache
def _docs_asset(name: str) -> bytes:
    return (swagger_ui_dist() / name).read_bytes()


def _install_docs(app: Flask, service: str) -> None:
    """GET /docs (Swagger UI on /openapi.json) and its assets, all from this origin, under a strict CSP."""
    html = DOCS_HTML.format(service=service)

    @app.get("/docs")
    def docs():
        response = Response(html, content_type="text/html; charset=utf-8")
        response.headers["Content-Security-Policy"] = DOCS_CSP
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.get("/docs/assets/<name>")
    def docs_asset(name: str):
        if name == "init.js":
            response = Response(DOCS_INIT_JS, content_type="text/javascript; charset=utf-8")
        elif name in DOCS_ASSETS:
            response = Response(_docs_asset(name), mimetype=DOCS_ASSETS[name])
            response.headers["Cache-Control"] = "public, max-age=86400"
        else:
            return problem(404, "Not Found", f"No docs asset {name!r}.")
        response.headers["Content-Security-Policy"] = DOCS_CSP
        return response


def ensure_storage_once(app: Flask, ensure: Callable[[], None]) -> None:
    """Indexes and seeds at start; if MongoDB is not up yet, again before the next request until done."""
    lock, done = threading.Lock(), threading.Event()

    def ensure_now() -> None:
        if done.is_set():
            return
        with lock:
            if not done.is_set():
                ensure()
                done.set()

    def before_request() -> None:
        if _needs_storage(request.endpoint):  # /healthz stays 200 while the database is down: the process lives
            ensure_now()

    try:
        ensure_now()
    except PyMongoError:  # storage not reachable at start: /readyz says so, requests retry
        log.warning("MongoDB not reachable at start; indexes will be created on the first request")
    app.before_request(before_request)


def current_settings() -> Settings:
    from flask import current_app

    return current_app.extensions["ticketflow.settings"]


def correlation_id() -> str | None:
    return getattr(g, "request_id", None)


def authenticate() -> Principal:
    from flask import current_app

    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "A bearer token is required (Authorization: Bearer <JWT>).", headers={"WWW-Authenticate": "Bearer"}
        )
    try:
        settings = current_app.extensions["ticketflow.settings"]
        return decode_token(
            current_app.extensions["ticketflow.secrets"],
            token.strip(),
            max_hours=settings.token_max_hours,
            portal_max_hours=settings.portal_token_max_hours,
        )
    except AuthError as exc:
        raise Unauthorized(f"The token is not valid: {exc}", headers={"WWW-Authenticate": "Bearer"}) from None


def require_roles(*roles: str):
    """Authenticate before anything else is parsed; 401 without a valid token, 403 for another role."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            principal = authenticate()
            if principal.role not in roles:
                raise Forbidden(f"The {principal.role} role may not do this (allowed: {', '.join(roles)}).")
            g.principal = principal
            return view(*args, **kwargs)

        doc = getattr(wrapper, "_apidoc", {})
        manual = dict(doc.get("manual_doc", {}))
        manual["security"] = [{"bearerAuth": []}]
        manual["responses"] = {**manual.get("responses", {}), "401": "UNAUTHORIZED", "403": "FORBIDDEN"}
        manual["description"] = (manual.get("description", "") + f"\n\nRoles: {', '.join(roles)}.").strip()
        wrapper._apidoc = {**doc, "manual_doc": manual}
        return wrapper

    return decorator


def principal() -> Principal:
    return g.principal
