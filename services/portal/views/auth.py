"""Sign in and out (agents and admins), and setting a password from a one-time link."""

from __future__ import annotations

import re

from flask import Blueprint, g, redirect, render_template, request, url_for

from services.portal import handlers
from services.portal.pages import error_page, portal, set_session

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
    return render_template("auth/login.html", form={"next": request.args.get("next", "")}, errors={})


@blueprint.post("/login")
def login_post():
    form = {"email": request.form.get("email", ""), "next": request.form.get("next", "")}
    try:
        account = handlers.sign_in(portal(), form["email"], request.form.get("password", ""))
    except handlers.UserError as exc:
        page = render_template("auth/login.html", form=form, errors={}, message=exc.message)
        return page, exc.status
    handlers.end_session(portal(), g.session)  # a new session id at sign-in: never the one the browser brought
    token, g.session = handlers.start_session(portal(), account=account)
    set_session(token)
    return redirect(_safe_next(form["next"]), 303)


@blueprint.post("/logout")
def logout():
    handlers.end_session(portal(), g.session)
    set_session(None)
    return redirect(url_for("auth.login", notice="signed-out"), 303)


@blueprint.get("/password/<token>")
def password(token: str):
    if not handlers.password_link_valid(portal(), token):
        return error_page(404, "This link is not valid any more", "Ask an admin for a new link to set your password.")
    return render_template("auth/password.html", token=token, errors={})


@blueprint.post("/password/<token>")
def password_post(token: str):
    try:
        handlers.set_password(portal(), token, request.form.get("password", ""))
    except handlers.UserError as exc:
        if exc.status == 404:
            return error_page(404, "This link is not valid any more", exc.message)
        return render_template("auth/password.html", token=token, errors=exc.errors, message=exc.message), 422
    return redirect(url_for("auth.login", notice="password-set"), 303)
