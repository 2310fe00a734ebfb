"""Reports for admins and team leads: SLA compliance over a period, breaches, the backlog now; each figure
also as CSV."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import Blueprint, Response, g, render_template, request

from services.portal import figures, period, reports
from services.portal.client import Refused, Unreachable
from services.portal.pages import agent_required, error_page, portal
from shared.clock import now

blueprint = Blueprint("reports", __name__, url_prefix="/reports")
NOT_A_LEAD = ("Reports are for admins and team leads", "Ask an admin if you need the help desk's figures.")


@blueprint.app_context_processor
def navigation() -> dict:
    return {"may_read_reports": may_read_reports}


def may_read_reports() -> bool:
    """Whether the signed-in person may open the reports (the layout's link), asked once per page."""
    if "reports_reader" not in g:
        try:
            g.reports_reader = reports.reader(portal(), g.session) if g.get("session") else None
        except (Refused, Unreachable):
            g.reports_reader = None
    return g.reports_reader is not None


@blueprint.app_template_filter("duration")
def duration(seconds: float) -> str:
    return figures.duration_words(seconds)


@blueprint.app_template_filter("day")
def day(value: str | date | datetime, shift_days: int = 0) -> str:
    """A day as people read it (29 Nov 2026), from an ISO date or a datetime; shifted by whole days."""
    moment = date.fromisoformat(value) if isinstance(value, str) else value
    return f"{moment + timedelta(days=shift_days):%-d %b %Y}"


@blueprint.get("")
@agent_required
def index():
    if not may_read_reports():
        return error_page(403, *NOT_A_LEAD)
    chosen, form, errors = period.parse(request.args, now())
    tables, oldest = [], None
    if chosen is not None:
        source = reports.Source(portal(), g.reports_reader, chosen, form["clock"])
        tables = [reports.table(source, name) for name in reports.TABLES]
        oldest = figures.oldest_waiting(source.open_tickets)
    html = render_template(
        "reports/index.html",
        period=chosen,
        form=form,
        errors=errors,
        tables={table.name: table for table in tables},
        oldest=oldest,
        lead=g.reports_reader.teams,
        query={name: value for name, value in form.items() if value},
        presets=period.PRESETS,
        clocks=period.CLOCK_CHOICES,
        labels=period.FORM_LABELS,
    )
    return html, 422 if errors else 200


@blueprint.get("/<name>.csv")
@agent_required
def download(name: str):
    if not may_read_reports():
        return error_page(403, *NOT_A_LEAD)
    if name not in reports.TABLES:
        return error_page(404, "No such report", "Go back to the reports page and use its links.")
    chosen, form, errors = period.parse(request.args, now())
    if chosen is None:
        return error_page(422, "That period does not work", " ".join(m for ms in errors.values() for m in ms))
    table = reports.table(reports.Source(portal(), g.reports_reader, chosen, form["clock"]), name)
    last = chosen.until - timedelta(microseconds=1) if chosen.until else now()  # until is the next midnight
    filename = f"ticketflow-{name}-{chosen.since:%Y%m%d}-{last:%Y%m%d}.csv"
    return Response(  # UTF-8 with its byte order mark: Excel reads names in any script right only with one
        "\ufeff" + figures.csv_text(table),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
