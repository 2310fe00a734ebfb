"""Admins' pages: accounts, agents, teams and topics, saved replies, SLA policies, business calendars, webhooks
and the notifications that failed. Thin views: form -> use case (services/portal/admin/) -> page. Each use case calls
the services with the admin's own token; a refusal comes back with the service's reason and its field errors,
shown next to the fields, with what was typed kept.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request, url_for

from services.portal.client import Refused
from services.portal.pages import error_page

blueprint = Blueprint("admin", __name__, url_prefix="/admin")
SECTIONS = (  # the admin pages' own navigation: (section, endpoint, words)
    ("accounts", "admin.index", "Accounts"),
    ("agents", "admin.agents", "Agents"),
    ("teams", "admin.teams", "Teams and topics"),
    ("replies", "admin.saved_replies", "Saved replies"),
    ("policies", "admin.policies", "SLA policies"),
    ("calendars", "admin.calendars", "Calendars"),
    ("webhooks", "admin.webhooks", "Webhooks"),
    ("dead", "admin.dead", "Failed notifications"),
    ("mail", "admin.mail_in", "Mail in"),
)


@blueprint.context_processor
def sections() -> dict:
    return {"admin_sections": SECTIONS}


@blueprint.errorhandler(Refused)
def refused(exc: Refused):
    """A page of something a service does not have (any more), or a refusal no form caught."""
    if exc.status == 404:
        back = ("Back to the admin pages", url_for("admin.index"))
        return error_page(404, "Not found", "It does not exist, or no longer does.", back=back)
    return error_page(exc.status, "That did not work", exc.detail or exc.title)


@blueprint.app_template_filter("minutes")
def minutes(value: float | None) -> str:
    """Minutes of a target as people read them: 240 min (4 h)."""
    if value is None:
        return "—"
    hours = value / 60
    longer = "" if hours < 1 else f" ({_number(hours, 1)} h)" if hours < 48 else f" ({_number(hours / 24, 1)} d)"
    return f"{_number(value, 3)} min{longer}"


def _number(value: float, places: int) -> str:
    """1234.5 (at most `places` decimals, none left trailing): never 1.2345e+06 as `g` would write a large one;
    a value too small for the places keeps two significant digits (0.00012) rather than reading 0."""
    text = f"{value:.{places}f}".rstrip("0").rstrip(".")
    return f"{value:.2g}" if text in ("0", "-0") and value else text


@blueprint.app_template_filter("percent")
def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"  # as the reports write it


def page(template: str, section: str, status: int = 200, notices: dict[str, str] | None = None, **context):
    """An admin page (its section lit in the navigation), with no form errors unless given; `done` is what a
    redirect after a change says (one of `notices`)."""
    context.setdefault("form", {})
    context.setdefault("errors", {})
    done = context.pop("done", None) or notice(notices or {})  # or a text of the page's own (a flash)
    return render_template(template, section=section, done=done, **context), status


def form_data(*lists: str) -> dict:
    """What the form sent, trimmed; `lists` are the fields that may repeat (checkboxes)."""
    form = {name: value.strip() for name, value in request.form.items() if name != "csrf_token"}
    return {**form, **{name: request.form.getlist(name) for name in lists}}


def notice(texts: dict[str, str]) -> str | None:
    """What a redirect after a change says: a fixed text, chosen by a key (nothing from the address is shown)."""
    return texts.get(request.args.get("notice", ""))


# each module adds its routes to the blueprint
from services.portal.views.admin import accounts, agents, policies, calendars, teams, replies, webhooks, mail  # noqa: E402, F401, I001
