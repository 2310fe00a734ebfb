"""The console's reading of a ticket from intake and assignment (console.ticket_view), on canned answers."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from services.portal import console
from services.portal.client import Refused

AGENT = {"_id": "s1", "role": "agent", "email": "ann@example.com", "agent_id": "ann"}
NOT_FOUND = Refused(404, "Not found", "No ticket t-1.")


class Services:
    """intake answers the ticket it has (its copy lags a transfer); assignment answers `work`, or refuses."""

    def __init__(self, ticket: dict, work: dict | Refused) -> None:
        self.ticket, self.work = ticket, work

    def get(self, service, path, actor, **params):
        if service == "assignment":
            if isinstance(self.work, Refused):
                raise self.work
            return self.work
        return {"items": []} if path.endswith("/attachments") else self.ticket


def view(ticket: dict, work: dict | Refused) -> console.domain.TicketView:
    return console.ticket_view(SimpleNamespace(services=Services(ticket, work)), AGENT, "t-1")


def test_a_ticket_assignment_has_not_routed_yet_shows_without_its_work():
    assert view({"id": "t-1", "status": "new", "team": None}, NOT_FOUND).work == {}


def test_a_routed_ticket_assignment_no_longer_shows_this_agent_is_out_of_sight():
    """Handed on to a team the agent is not in: assignment answers 404 at once, while intake's copy still names
    the old team for a moment. The page must not show it as a ticket nobody has routed."""
    with pytest.raises(Refused) as refused:
        view({"id": "t-1", "status": "assigned", "team": "network"}, NOT_FOUND)
    assert refused.value.status == 404


def test_a_ticket_read_in_both_shows_its_work():
    work = {"ticket_id": "t-1", "team": "network", "agent_id": "ann"}
    assert view({"id": "t-1", "status": "assigned", "team": "network"}, work).work == work
