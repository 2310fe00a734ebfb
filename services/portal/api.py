"""The portal: create_app() for gunicorn. Pages for requesters, the agents' console, admin pages, and a
JSON API for accounts. It owns `<ns>_portal` and calls the five services' APIs with short-lived tokens.
"""

from __future__ import annotations

from flask import Flask, current_app
from flask.views import MethodView
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from services.portal import handlers, pages, passwords
from services.portal.admin import people
from services.portal.schemas import AccountChangeSchema, AccountCreateSchema, AccountSchema
from services.portal.views import admin, auth, console, health, reports, requester
from shared.config import Settings, load_settings
from shared.dumping import Blueprint
from shared.errors import Problem
from shared.web import MAX_BODY, ServiceApi, create_service_app, ensure_storage_once, principal, require_roles

DESCRIPTION = """The web portal's JSON API: accounts of agents and admins (for ops scripts).

The portal itself is HTML: `/` for requesters, `/login`, `/console/` for agents, `/admin/` for admins.
`POST /api/accounts` (admin token) adds an account; passwords are hashed with argon2id and have at
least 12 characters. Without a password the answer carries `set_password_url`, a one-time link
(3 days) where the person sets one. `PATCH /api/accounts/{email}` with `{"disabled": true}` disables
an account (it cannot sign in, its sessions and password links end; nothing it did is lost), and
`{"disabled": false}` enables it again; `DELETE` deletes a disabled one for good. `POST
/api/accounts/{email}/password-link` answers a new one-time link (3 days) for an enabled account whose person
cannot choose a password by email: its password works until the link is used (`ticketflow account
password-link`, for the last admin who forgot theirs).
"""

# templates/ and static/ of this folder (the app's own root is not a package folder)
site = Blueprint("site", __name__, template_folder="templates", static_folder="static", static_url_path="/static")
accounts = Blueprint("accounts", __name__, url_prefix="/api", description="Accounts of agents and admins")


@accounts.route("/accounts")
class Accounts(MethodView):
    @require_roles("admin")
    @accounts.arguments(AccountCreateSchema())
    @accounts.response(201, AccountSchema)
    def post(self, data):
        """Add an account."""
        svc = current_app.extensions["ticketflow.portal"]
        try:
            if data["role"] == "agent" and data.get("agent_id"):  # never with another agent's address
                who = principal()
                session = {"role": who.role, "email": who.sub, "agent_id": who.agent_id}
                people.email_of_nobody_else(
                    svc, session, data["agent_id"], data["email"], rule=people.ACCOUNT_OF_ANOTHER
                )
            account, token = handlers.create_account(
                svc, data["email"], data["role"], data.get("agent_id"), data.get("password"), agent_field="agent_id"
            )
        except handlers.UserError as exc:
            raise _problem(exc) from None
        if token:
            account = {**account, "set_password_url": passwords.url(svc, token)}
        return account


@accounts.route("/accounts/<email>")
class AccountByEmail(MethodView):
    @require_roles("admin")
    @accounts.arguments(AccountChangeSchema())
    @accounts.response(200, AccountSchema)
    @accounts.alt_response(404, response="NOT_FOUND")
    def patch(self, data, email):
        """Disable an account (it cannot sign in; its sessions and password links end) or enable it again."""
        svc, account = _by_email(email)
        try:
            changed = handlers.set_disabled(svc, account["_id"], data["disabled"])
        except handlers.UserError as exc:
            raise _problem(exc) from None
        if data["disabled"]:  # its agent stops taking tickets, as from the Accounts page
            who = principal()
            people.leaves(svc, {"role": who.role, "email": who.sub, "agent_id": who.agent_id}, changed)
        return changed

    @require_roles("admin")
    @accounts.response(204)
    @accounts.alt_response(404, response="NOT_FOUND")
    @accounts.alt_response(409, response="CONFLICT")
    def delete(self, email):
        """Delete a disabled account for good (409 while it is enabled: disable it first)."""
        svc, account = _by_email(email)
        try:
            handlers.delete_account(svc, account["_id"])
        except handlers.UserError as exc:
            raise _problem(exc) from None
        return "", 204


@accounts.route("/accounts/<email>/password-link")
class AccountPasswordLink(MethodView):
    @require_roles("admin")
    @accounts.response(201, AccountSchema)
    @accounts.alt_response(404, response="NOT_FOUND")
    @accounts.alt_response(409, response="CONFLICT")
    def post(self, email):
        """A new one-time link to set the account's password (`set_password_url`, 3 days); 409 while disabled."""
        svc, account = _by_email(email)
        try:
            account, token = passwords.new_link(svc, account["_id"], by=f"the API ({principal().sub})")
        except handlers.UserError as exc:
            raise _problem(exc) from None
        return {**account, "set_password_url": passwords.url(svc, token)}


def _by_email(email: str) -> tuple[handlers.Portal, dict]:
    """The portal and the account of the path's address (as people type it); 404 problem when there is none."""
    svc = current_app.extensions["ticketflow.portal"]
    account = svc.store.account_by_email(email.strip().lower())
    if account is None:
        raise _problem(handlers.UserError(f"No account for {email}.", status=404))
    return svc, account


def _problem(exc: handlers.UserError) -> Problem:
    problem = Problem(exc.message, exc.errors or None)
    problem.status = exc.status
    problem.title = {404: "Not found", 409: "Conflict", 422: "Validation failed"}.get(exc.status, "Bad request")
    return problem


class PortalApi(ServiceApi):
    """Errors of pages are pages; errors of the JSON API are problem+json."""

    def handle_http_exception(self, error: HTTPException):
        from flask import request

        if pages.is_page(request.path):
            return pages.page_error(error)
        return super().handle_http_exception(error)


def create_app(settings: Settings | None = None, urls: dict[str, str] | None = None) -> Flask:
    settings = settings or load_settings()
    svc = handlers.bootstrap(settings, urls)
    app, api = create_service_app(
        "portal",
        DESCRIPTION,
        settings,
        broker=False,
        json_only=lambda path: path.startswith("/api/"),
        api_class=PortalApi,
        body_limit=lambda method, path: pages.FORM_WITH_FILES_MAX if pages.takes_files(method, path) else MAX_BODY,
    )
    app.extensions["ticketflow.portal"] = svc
    app.jinja_env.autoescape = True
    api.register_blueprint(accounts)
    app.register_blueprint(site)
    for area in (requester, auth, console, admin, reports, health):
        app.register_blueprint(area.blueprint)
    pages.install(app)
    ensure_storage_once(app, svc.ensure_storage)
    if settings.trusted_proxies:  # the client's address (rate limits) and scheme as the proxies in front saw them
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies)
    return app
