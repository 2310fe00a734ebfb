"""Sign in and out (agents and admins); setting a password from a one-time link, asking for one by email
("Forgot your password?"), and changing one's password while signed in."""

from __future__ import annotations

import re

from flask import Blueprint, g, redirect, render_template, request, url_for

from services.portal import devices, handlers, passwords
from services.portal.pages import (
    agent_required,
    client_network,
    device_cookie,
    error_page,
    portal,
    set_device,
    set_session,
)
from shared.clock import now

blueprint = Blueprint("auth", __name__)


SAFE_PATH = re.compile(r"/(?![/\\])[A-Za-z0-9/_.~%?=&+-]*")


def _safe_next(target: str | None) -> str:
    """Only a path of this site: never an open redirect to another one (no //host, no backslash or blank)."""
    if target and SAFE_PATH.fullmatch(target):
        return target
    return url_for("console.queue")


@blueprint.get("/login")
def login():
    if g.session and g.session.get("account_id"):
        return redirect(_safe_next(request.args.get("next")))
    form = {"next": request.args.get("next", "")}
    if request.args.get("notice") == "password-set":  # the address the password was just set for, to sign in with
        form["email"] = request.args.get("email", "")[:320]
    return render_template("auth/login.html", form=form, errors={})


@blueprint.post("/login")
def login_post():
    form = {"email": request.form.get("email", ""), "next": request.form.get("next", "")}
    errors = {}
    if not form["email"].strip():
        errors["email"] = ["Enter your email address."]
    if not request.form.get("password"):
        errors["password"] = ["Enter your password."]
    if errors:  # nothing to check yet: said next to the field, and no attempt counted
        return render_template("auth/login.html", form=form, errors=errors), 422
    try:
        email = form["email"].strip().lower()
        password = request.form.get("password", "")
        account = handlers.sign_in(portal(), email, password, device_cookie(email), client_network())
    except handlers.UserError as exc:
        page = render_template("auth/login.html", form=form, errors={}, message=exc.message)
        return page, exc.status
    handlers.end_session(portal(), g.session)  # a new session id at sign-in: never the one the browser brought
    token, g.session = handlers.start_session(portal(), account=account)
    set_session(token)
    set_device(account)  # known at its next sign-in, with a new token each time
    return redirect(_safe_next(form["next"]), 303)


@blueprint.get("/logout")
def logout_address():
    """The sign-out button's address opened in the bar: a page with the button (a GET signs nobody out: a link
    could), or the sign-in page to whoever is not signed in."""
    if not (g.session and g.session.get("account_id")):
        return redirect(url_for("auth.login"), 303)
    return render_template("auth/logout.html")


@blueprint.post("/logout")
def logout():
    handlers.end_session(portal(), g.session)
    set_session(None)
    return redirect(url_for("auth.login", notice="signed-out"), 303)


@blueprint.get("/password/<token>")
def password(token: str):
    account = passwords.link_account(portal(), token)
    if account is None:
        return error_page(404, "This link is not valid any more", passwords.LINK_GONE)
    return render_template("auth/password.html", token=token, email=account["email"], errors={})


@blueprint.post("/password/<token>")
def password_post(token: str):
    email = (passwords.link_account(portal(), token) or {}).get("email")  # the link is spent once it is used
    try:
        passwords.set_password(portal(), token, request.form.get("password", ""))
    except handlers.UserError as exc:
        if exc.status == 404:
            return error_page(404, "This link is not valid any more", exc.message)
        account = passwords.link_account(portal(), token) or {}
        page = render_template(
            "auth/password.html", token=token, email=account.get("email", ""), errors=exc.errors, message=exc.message
        )
        return page, 422
    return redirect(url_for("auth.login", notice="password-set", **({"email": email} if email else {})), 303)


@blueprint.get("/password/forgot")
def forgot():
    return render_template("auth/forgot.html", form={}, errors={})


@blueprint.post("/password/forgot")
def forgot_post():
    form = {"email": request.form.get("email", "")}
    try:
        passwords.request_reset(portal(), form["email"], client_network())
    except handlers.UserError as exc:
        return render_template("auth/forgot.html", form=form, errors=exc.errors, message=exc.message), exc.status
    return redirect(url_for("auth.forgot_sent"), 303)  # a reload shows the page again and asks for nothing


@blueprint.get("/password/forgot/sent")
def forgot_sent():
    return render_template("auth/forgot_sent.html")


@blueprint.get("/account/password")
@agent_required
def change_password():
    return _password_page({})


def _password_page(errors: dict, message: str | None = None, status: int = 200):
    others = portal().store.other_sessions(g.session["account_id"], g.session["_id"], now())
    return render_template("auth/change_password.html", errors=errors, message=message, others=others), status


def _own_device(svc) -> str | None:
    """The device id of this browser's good device cookie for the signed-in account, if it has one."""
    account = svc.store.account(g.session["account_id"])
    return devices.known(svc.secret, account, device_cookie(g.session["email"]), now()) if account else None


@blueprint.post("/account/sessions/others")
@agent_required
def end_other_sessions():
    """ "Sign out everywhere else": a computer someone forgot to sign out of, without changing the password."""
    svc = portal()
    own = _own_device(svc)  # the id of this browser's device cookie, read before the others are forgotten
    svc.store.end_sessions_of(g.session["account_id"], but=g.session["_id"])
    svc.store.forget_devices(g.session["account_id"])  # and no browser is known to the account any more,
    if own and (account := svc.store.account(g.session["account_id"])):  # but this one, if it was: no new id
        set_device(account, own)  # (a session alone, without the password, must not mint fresh counts)
    return redirect(url_for("auth.change_password", notice="signed-out-elsewhere"), 303)


@blueprint.post("/account/password")
@agent_required
def change_password_post():
    form = request.form
    try:
        own = _own_device(portal())
        token, g.session = passwords.change_password(
            portal(), g.session, form.get("current", ""), form.get("password", ""), form.get("again", ""),
            device_cookie(g.session["email"]),
        )  # fmt: skip
    except handlers.UserError as exc:  # no password is ever written back into the page
        return _password_page(exc.errors, exc.message, exc.status)
    set_session(token)  # every session of the account ended, this browser's too: it gets a new one
    if account := portal().store.account(g.session["account_id"]):  # a new password forgot every browser but this
        set_device(account, own)
    return redirect(url_for("auth.change_password", notice="changed"), 303)
