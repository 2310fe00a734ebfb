"""Admins' view of the running system: each service's readiness and queues, refreshing by itself."""

from __future__ import annotations

from flask import Blueprint, g, render_template

from services.portal import health
from services.portal.console import actor
from services.portal.pages import admin_required, portal

blueprint = Blueprint("health", __name__, url_prefix="/admin/health")


@blueprint.get("")
@admin_required
def index():
    return _render("health/index.html")


@blueprint.get("/live")
@admin_required
def live():
    """The figures alone: what the page fetches every few seconds (htmx)."""
    return _render("health/_status.html")


def _render(template: str) -> str:
    figures = health.check(portal(), actor(g.session))
    return render_template(
        template, health=figures, states=health.NOTIFICATION_STATES, namespace=portal().settings.namespace
    )
