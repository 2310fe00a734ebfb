"""Business calendars: each one's week as a grid (days as columns), and a form to add or change one."""

from __future__ import annotations

from flask import g, redirect, url_for

from services.portal.admin import sla
from services.portal.handlers import UserError
from services.portal.pages import admin_required, portal
from services.portal.views.admin import blueprint, form_data, page

NOTICES = {
    "saved": "The calendar is saved. Time counted until now stays counted in the hours before; from now on time counts "
    "in these, and the open tickets' deadlines move into them in a moment.",
    "unchanged": "Nothing changed: these are the calendar's hours already, so its version stays.",
    "added": "The calendar is added. Choose it in an SLA policy for its hours to count: tickets of that priority "
    "created afterwards run in them.",
    "deleted": "The calendar is deleted.",
}


@blueprint.get("/calendars")
@admin_required
def calendars():
    return _list()


def _list(form: dict | None = None, errors=None, message=None, status=200):
    found = sla.calendars(portal(), g.session)
    return page(
        "admin/calendars.html", "calendars", status, calendars=found, form=form or {}, errors=errors or {},
        message=message, days=sla.DAYS, notices=NOTICES,
    )  # fmt: skip


@blueprint.post("/calendars")
@admin_required
def put_calendar():
    form = form_data()
    try:
        saved = sla.put_calendar(portal(), g.session, form)
    except UserError as exc:
        if form.get("existing"):
            return _show(form["calendar_id"], form, exc.errors, exc.message, exc.status)
        return _list(form, exc.errors, exc.message, exc.status)
    # a new one: nothing runs in it yet (its hours count once a policy names it)
    notice = "unchanged" if saved.get("unchanged") else "saved" if form.get("existing") else "added"
    return redirect(url_for("admin.calendar", calendar_id=form["calendar_id"], notice=notice), 303)


def _show(calendar_id: str, form: dict | None = None, errors=None, message=None, status=200):
    found = sla.calendar(portal(), g.session, calendar_id)
    return page(
        "admin/calendar.html", "calendars", status, calendar=found, grid=sla.week_grid(found["hours"]),
        days=sla.DAYS, built_in=calendar_id == sla.BUILT_IN, form=form or sla.calendar_form(found),
        errors=errors or {}, message=message, notices=NOTICES,
    )  # fmt: skip


@blueprint.get("/calendars/<calendar_id>")
@admin_required
def calendar(calendar_id: str):
    return _show(calendar_id)


@blueprint.post("/calendars/<calendar_id>/delete")
@admin_required
def delete_calendar(calendar_id: str):
    try:
        sla.delete_calendar(portal(), g.session, calendar_id)
    except UserError as exc:
        if exc.status == 404:
            return _show(calendar_id)  # gone already: the page says so
        return _show(calendar_id, None, exc.errors, exc.message, exc.status)
    return redirect(url_for("admin.calendars", notice="deleted"), 303)
