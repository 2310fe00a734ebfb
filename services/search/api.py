"""search's HTTP API: create_app() for gunicorn. Thin views; the rules live in handlers and the engine."""

from __future__ import annotations

from flask import Flask, current_app
from flask.views import MethodView

from services.search import handlers
from services.search.schemas import SearchQuerySchema, SearchResultSchema, SimilarListSchema, SimilarQuerySchema
from shared.config import Settings, load_settings
from shared.dumping import Blueprint
from shared.web import create_service_app, ensure_storage_once, principal, require_roles

DESCRIPTION = """Past tickets as reference: full-text search, and the resolved tickets most like one.

The index is built from the ticket events: subject, description, the requester's messages, the agents'
public replies and the resolution, and the requester's name (searched, never a word of "similar"; a hit's
`requester_name`, an addition to the contract); never internal notes (no event carries them). A change is findable
within about a second of its event. `q` reads as people type: several words (all of them wanted; with
three or more, most of them are enough), a "phrase in quotes" (“ ”, „ “ and « » too), a ticket number
(`1234` or `#1234`); English stems (printers finds printer), accents folded (cafe finds café), and when the
exact words find fewer than three tickets, a word of 5 letters or more with no digit also finds its near
misses (one typo; two for 8+): a number or code one digit off is another one, not a typo.
A hit's `snippet` is HTML: a passage with the matched words in `<mark>`, everything else escaped.
`total` counts every match the asker may see; the cursor pages through the ranking (up to 10,000 hits).
`GET /tickets/{id}/similar` finds its candidates by the ticket's distinctive words, then orders them by the
words and their meaning together (a small embedding: "the tunnel drops" is near "VPN disconnects"); an
item's `score` orders one answer and is not comparable between answers.

Rights, the same as intake's: admins and the portal server's own token find every ticket; an agent the
tickets of its teams and those assigned to it (as search heard from `agent.updated` and `ticket.assigned`);
a requester-scoped portal token only that requester's tickets (only its ticket_id when it names one).
Nothing else is counted or shown; `GET /tickets/{id}/similar` answers 404 for a ticket the asker may not see.
`ticketflow search reindex` rebuilds the index beside the one in use and switches to it while this API answers.
"""

blp = Blueprint("search", __name__, description="Finding tickets by their words")


def search_service() -> handlers.Search:
    return current_app.extensions["ticketflow.search"]


@blp.route("/search")
class SearchTickets(MethodView):
    @require_roles("agent", "admin", "portal")
    @blp.arguments(SearchQuerySchema(), location="query")
    @blp.response(200, SearchResultSchema)
    def get(self, query):
        """Tickets matching `q`, best first, filtered by status and team."""
        return handlers.search(search_service(), query, principal())


@blp.route("/tickets/<ticket_id>/similar")
class SimilarTickets(MethodView):
    @require_roles("agent", "admin", "portal")
    @blp.arguments(SimilarQuerySchema(), location="query")
    @blp.response(200, SimilarListSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, query, ticket_id):
        """Resolved and closed tickets most like this one (never itself), with their resolution: what was done."""
        items = handlers.similar(search_service(), ticket_id, query["limit"], principal())
        return {"items": items, "next_cursor": None}


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    app, api = create_service_app("search", DESCRIPTION, settings)
    app.extensions["ticketflow.search"] = handlers.bootstrap(settings)
    api.register_blueprint(blp)
    ensure_storage_once(app, app.extensions["ticketflow.search"].ensure_storage)
    return app
