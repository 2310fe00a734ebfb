"""Admin pages in-process, on the real portal database, the other services a stub."""

from __future__ import annotations

from tests.integration.test_portal_search import portal, signed_in, stub, text  # noqa: F401


def test_a_policy_page_points_out_a_response_target_past_the_resolution(portal, stub):  # noqa: F811
    policy = {"priority": "low", "version": 3, "first_response_minutes": 600, "next_response_minutes": 60,
              "resolution_minutes": 480, "warn_at_percent": [80], "calendar": "24x7",
              "changed_at": "2026-12-01T04:00:00.000Z"}  # fmt: skip
    stub.answers["/policies/low"] = policy
    stub.answers["/policies/low/versions"] = {"items": [policy]}
    stub.answers["/calendars"] = {"items": [{"id": "24x7", "timezone": "UTC"}]}

    page = text(signed_in(portal).get("/admin/policies/low"))

    assert "The first response target (600 min) is not shorter than the resolution target (480 min)" in page
    assert "next response target" not in page


def test_the_agents_page_says_who_holds_more_than_their_capacity(portal, stub):  # noqa: F811
    stub.answers["/agents"] = {"items": [
        {"id": "sofia", "name": "Sofia", "email": "sofia@example.com", "teams": ["network"], "lead_of": [],
         "capacity": 4, "available": True, "open_tickets": 10},
        {"id": "omar", "name": "Omar", "email": "omar@example.com", "teams": ["network"], "lead_of": [],
         "capacity": 4, "available": True, "open_tickets": 4},
    ]}  # fmt: skip
    stub.answers["/teams"] = {"items": [{"id": "network", "name": "Network"}]}
    stub.answers["/topics"] = {"items": []}

    page = text(signed_in(portal).get("/admin/agents"))

    over = "(more than their capacity: no new ticket goes to them by itself)"
    assert page.count(over) == 1 and page.index("sofia@example.com") < page.index(over) < page.index("omar@example.com")


def test_a_form_s_address_opened_again_leads_to_its_page(portal, stub):  # noqa: F811
    admin = signed_in(portal)
    expected = {
        "/admin/policies/high/what-if": "/admin/policies/high",
        "/admin/topics": "/admin/teams",
        "/admin/teams/network/lead": "/admin/teams/network",
        "/admin/agents/omar/teams/network/remove": "/admin/agents/omar",
        "/admin/webhooks/w-1/delete": "/admin/webhooks",
        "/admin/accounts/a-1/delete": "/admin/",
        "/account/sessions/others": "/account/password",
        "/forget": "/",
    }
    for address, page in expected.items():
        answer = admin.get(address)
        assert (answer.status_code, answer.headers.get("Location")) == (303, page), address
    assert admin.get("/admin/no-such-page").status_code == 404
