"""The admin pages' use cases without a browser: forms into request bodies as the APIs take them, refusals into
field errors under the forms' names, a calendar's week grid, and the calls made (to a fake of the services)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from services.portal import console
from services.portal.admin import in_words, notify, number, people, refusal, sla, words
from services.portal.client import Refused, Unreachable
from services.portal.handlers import UserError
from services.portal.views.admin import minutes, percent
from services.portal.views.admin.webhooks import retried_words

ADMIN = {"_id": "s1", "role": "admin", "email": "admin@example.com", "agent_id": None}


def handing_back(services: FakeServices, stays: tuple[str, ...] = ()) -> None:
    """assignment's PATCH /agents hands the agent's tickets back: /queue then answers with those in `stays` alone."""
    answer, key = services.call, ("assignment", "GET", "/queue")

    def call(service, method, path, actor, json=None, params=None, **kwargs):
        result = answer(service, method, path, actor, json=json, params=params)
        if method == "PATCH" and path.startswith("/agents/"):
            items = [ticket for ticket in services.answers[key]["items"] if ticket["ticket_id"] in stays]
            services.answers[key] = {"items": items, "next_cursor": None}
        return result

    services.call = call


class FakeServices:
    """The four APIs as the portal's client sees them: canned answers, every call kept."""

    def __init__(self, answers: dict | None = None, refuse: Refused | None = None) -> None:
        self.answers, self.refuse, self.calls = answers or {}, refuse, []

    def call(self, service, method, path, actor, json=None, params=None, **kwargs):
        self.calls.append((service, method, path, json if json is not None else params))
        if self.refuse and method != "GET":
            raise self.refuse
        return self.answers.get((service, method, path), {"items": []})

    def get(self, service, path, actor, **params):
        return self.call(service, "GET", path, actor, params=params)

    def post(self, service, path, actor, body, **kwargs):
        return self.call(service, "POST", path, actor, json=body)


@pytest.mark.parametrize(
    ("typed", "sent"),
    [
        ("10", 10),
        (" 2.5 ", 2.5),
        ("0.05", 0.05),
        ("lots", "lots"),
        ("", ""),
        ("nan", "nan"),
        ("inf", "inf"),
        # what Python's int() and float() would read but a person did not mean as a number of minutes: the service
        # refuses the text, next to its field (the admin tester saved 1e3 and ٣٠٠ as 1000 and 300)
        ("1e3", "1e3"),
        ("٣٠٠", "٣٠٠"),
        ("1_000", "1_000"),
        ("4²", "4²"),
        ("-", "-"),
        (".", "."),
        ("-3", -3),
        ("9" * 5000, "9" * 5000),  # more digits than int() reads, or than a float holds: as typed, never a 500
        ("9" * 400, "9" * 400),
        ("9" * 400 + ".5", "9" * 400 + ".5"),
    ],
)
def test_numbers_go_as_json_numbers_and_anything_else_as_typed(typed, sent):
    assert number(typed) == sent and type(number(typed)) is type(sent)


def test_words_split_on_commas_spaces_and_lines():
    assert words("ticket.*, sla.breached\n *") == ["ticket.*", "sla.breached", "*"]
    assert words("") == [] and words(None) == []


def test_a_refusal_keeps_the_services_words_under_the_forms_names():
    refused = Refused(422, "Validation failed", "The agent has invalid fields.",
                      {"teams.0": ["Unknown team."], "capacity": ["Not a valid integer."], "id": ["Bad."]})  # fmt: skip
    error = refusal(refused, {"id": "topic_id"})
    assert isinstance(error, UserError) and error.status == 422
    assert error.message == "The agent has invalid fields."
    assert error.errors == {
        "teams": ["Unknown team."],
        "capacity": ["Enter a whole number, like 10."],
        "topic_id": ["Bad."],
    }  # fmt: skip  (the library's words in a person's)


@pytest.mark.parametrize(
    ("said", "shown"),
    [("Shorter than minimum length 1.", "Choose at least one."),
     ("Length must be between 1 and 200. Must not be blank.", "Write 1 to 200 characters."),
     ("Item 0: must be a whole number from 1 to 99.", "Item 1: must be a whole number from 1 to 99."),
     ("Must be greater than or equal to 1 and less than or equal to 1000.", "Enter a whole number from 1 to 1000."),
     ("Must be a finite number greater than 0 and at most 5270400.",
      "Enter a number of minutes above 0, like 60 (at most 3660 days)."),
     ('Not a valid date: use "YYYY-MM-DD"', "Not a day of the calendar: use YYYY-MM-DD, like 2026-12-25."),
     ("An agent omar exists already.", "An agent omar exists already."),
     ("Period 0: 09:00-09:00 must start before it ends (24:00 is midnight).",
      "Period 1: 09:00-09:00 ends when it starts: give it some time, like 09:00-17:00."),
     ("Period 1: 18:00-09:00 must start before it ends (24:00 is midnight).",
      "Period 2: 18:00-09:00 ends before it starts. Write the afternoon as 17:00, or a night with its minutes, like "
      "22:00-06:00.")],
)  # fmt: skip
def test_the_validation_librarys_words_become_a_persons(said, shown):
    assert in_words(said) == shown


def test_an_agent_form_becomes_assignments_body():
    form = {"name": " Pat ", "email": "pat@example.com", "teams": ["printing"], "capacity": "3", "lead_of": []}
    assert people.agent_body(form) == {"name": "Pat", "email": "pat@example.com", "teams": ["printing"],
                                       "capacity": 3, "lead_of": [], "available": False}  # fmt: skip
    assert people.agent_body({**form, "available": "on", "capacity": "a few"})["capacity"] == "a few"


def test_a_policy_form_and_body_are_each_others_mirror():
    policy = {"first_response_minutes": 60.0, "next_response_minutes": 120.0, "resolution_minutes": 0.05,
              "warn_at_percent": [75, 90], "calendar": "24x7", "priority": "high", "version": 3}  # fmt: skip
    form = sla.policy_form(policy)
    assert form == {"first_response_minutes": "60", "next_response_minutes": "120", "resolution_minutes": "0.05",
                    "warn_at_percent": "75, 90", "calendar": "24x7"}  # fmt: skip
    assert sla.policy_body(form) == {k: policy[k] for k in form}
    assert sla.policy_body({**form, "warn_at_percent": "75, most"})["warn_at_percent"] == [75, "most"]


def test_a_calendar_form_becomes_slas_body():
    form = {"timezone": " Europe/Madrid ", "hours-mon": "09:00-13:00, 14:00–18:00", "hours-tue": " ",
            "hours-sat": "9 to 1", "holidays": "2026-12-25\n2027-01-01"}  # fmt: skip
    assert sla.calendar_body(form) == {
        "timezone": "Europe/Madrid",
        "hours": {"mon": [["09:00", "13:00"], ["14:00", "18:00"]], "sat": [["9 to 1"]]},  # sla says what is wrong
        "holidays": ["2026-12-25", "2027-01-01"],
    }
    typed = sla.calendar_body({**form, "holidays": "2026-02-30\nnot a date, 2026-12-24"})["holidays"]
    assert typed == ["2026-02-30", "not a date", "2026-12-24"]  # a line (or comma) each: refused as typed
    calendar = {"id": "shop", "timezone": "UTC", "hours": {"mon": [["09:00", "17:00"]]}, "holidays": ["2026-12-25"]}
    shown = sla.calendar_form(calendar)
    assert shown["hours-mon"] == "09:00-17:00" and shown["hours-sun"] == "" and shown["calendar_id"] == "shop"
    assert sla.calendar_body(shown)["hours"] == calendar["hours"]


def test_a_calendar_refusal_names_the_day_field_and_the_date_typed():
    body = {"timezone": "UTC", "hours": {}, "holidays": ["2026-12-25", "tomorrow"]}
    problems = {"hours.sat": ["Period 0: times must be HH:MM."], "holidays.1": ["Not a valid date."], "id": ["Bad."]}
    refused = Refused(422, "Validation failed", "The calendar is not valid.", problems)
    errors = sla._calendar_refusal(refused, body).errors
    assert errors == {
        "hours-sat": ["Period 1: times must be HH:MM."],
        "holidays": ["tomorrow: Not a valid date."],
        "calendar_id": [sla.ID_WORDS],  # sla's rule, in the form's words
    }  # fmt: skip  (periods counted from 1, as people count)


def test_a_days_periods_are_counted_as_typed_when_the_night_before_spills_into_it():
    """Tuesday 17:00-09:00 is a night: Wednesday's first period is its morning, which the admin did not type."""
    form = {"hours-tue": "17:00-09:00", "hours-wed": "abc, 10:00-12:00", "hours-thu": "08:00-12:00"}
    spilled = sla._spilled(form)
    assert spilled == {"wed": ("Tuesday", "00:00-09:00")}
    assert sla.calendar_body(form)["hours"]["wed"][0] == ["00:00", "09:00"]
    problems = {"hours.wed": ['Period 1: must be two "HH:MM" strings.', "Periods 00:00-09:00 and 08:00-10:00 overlap."],
                "hours.thu": ['Period 0: must be two "HH:MM" strings.']}  # fmt: skip
    refused = Refused(422, "Validation failed", "The calendar is not valid.", problems)
    errors = sla._calendar_refusal(refused, sla.calendar_body(form), spilled).errors
    assert errors["hours-wed"][0].startswith("Period 1: write a start and an end")  # "abc", the first one typed
    assert errors["hours-wed"][1] == (
        "Periods 00:00-09:00 and 08:00-10:00 overlap. (00:00-09:00 is the morning of Tuesday's night.)"
    )
    assert errors["hours-thu"][0].startswith("Period 1: write a start")  # no night before it: as sla counts
    wrong_morning = {"hours.wed": ["Period 0: 00:00-09:00 must start before it ends."]}
    morning = Refused(422, "Validation failed", "x", wrong_morning)
    said = sla._calendar_refusal(morning, {}, spilled).errors["hours-wed"][0]
    assert said.startswith("The morning of Tuesday's night (00:00-09:00): ")


def test_a_calendar_form_with_a_bad_id_says_so_with_the_other_fields_problems():
    """sla checks the fields before the id, and is not asked without an id: each problem is said at once."""
    refused = Refused(422, "Validation failed", "The calendar is not valid.", {"timezone": ["Unknown time zone: 'x'."]})
    shop = SimpleNamespace(services=FakeServices(refuse=refused), kept={})
    with pytest.raises(UserError) as bad_id:
        sla.put_calendar(shop, ADMIN, {"calendar_id": "quokka cal!", "timezone": "x", "hours-mon": "09:00-17:00"})
    assert bad_id.value.errors["calendar_id"] == [sla.ID_WORDS] and "timezone" in bad_id.value.errors
    with pytest.raises(UserError) as none:
        sla.put_calendar(shop, ADMIN, {"calendar_id": " ", "timezone": "", "hours-mon": "09:00-17:00"})
    assert none.value.errors["calendar_id"] == ["Enter the calendar's id."]
    assert none.value.errors["timezone"] == ["Enter a time zone, like Europe/Madrid or America/New_York."]
    with pytest.raises(UserError) as zone_ok:
        sla.put_calendar(shop, ADMIN, {"calendar_id": "", "timezone": "europe/madrid"})
    assert list(zone_ok.value.errors) == ["calendar_id"]


def test_the_week_grid_runs_from_the_first_opening_to_the_last_closing():
    grid = sla.week_grid({"mon": [["08:00", "12:00"], ["13:00", "17:30"]], "sat": [["10:00", "11:00"]]})
    assert [row["hour"] for row in grid] == [f"{h:02d}:00" for h in range(8, 18)]
    by_hour = {row["hour"]: row["cells"] for row in grid}
    assert by_hour["08:00"] == ["open"] + ["closed"] * 6
    assert by_hour["10:00"] == ["open", "closed", "closed", "closed", "closed", "open", "closed"]
    assert by_hour["12:00"][0] == "closed" and by_hour["17:00"][0] == "part"
    assert len(sla.week_grid({day: [["00:00", "24:00"]] for day, _ in sla.DAYS})) == 24
    assert sla.week_grid({}) == []


def test_setting_the_leads_changes_only_the_members_whose_lead_teams_change():
    members = [
        {"id": "pat", "lead_of": ["printing"]},
        {"id": "quinn", "lead_of": ["other"]},
        {"id": "ro", "lead_of": []},
    ]
    services = FakeServices({("assignment", "GET", "/agents"): {"items": members}})
    people.set_leads(SimpleNamespace(services=services, kept={}), ADMIN, "printing", ["quinn"])
    patches = [(path, body) for _, method, path, body in services.calls if method == "PATCH"]
    assert patches == [("/agents/pat", {"lead_of": []}), ("/agents/quinn", {"lead_of": ["other", "printing"]})]
    with pytest.raises(UserError) as refused:
        people.set_leads(SimpleNamespace(services=services, kept={}), ADMIN, "printing", ["quinn", "stranger"])
    assert "leads" in refused.value.errors


def test_two_leads_of_a_team_are_both_kept_when_its_leads_are_saved_as_shown():
    members = [{"id": "pat", "lead_of": ["printing"]}, {"id": "quinn", "lead_of": ["printing", "other"]}]
    services = FakeServices({("assignment", "GET", "/agents"): {"items": members}})
    people.set_leads(SimpleNamespace(services=services, kept={}), ADMIN, "printing", ["pat", "quinn"])
    assert [call for call in services.calls if call[1] == "PATCH"] == []  # nobody loses the lead
    people.set_leads(SimpleNamespace(services=services, kept={}), ADMIN, "printing", [])
    patches = [(path, body) for _, method, path, body in services.calls if method == "PATCH"]
    assert patches == [("/agents/pat", {"lead_of": []}), ("/agents/quinn", {"lead_of": ["other"]})]


def test_removing_an_agent_from_a_team_keeps_its_other_teams():
    agent = {"id": "cora", "teams": ["network", "desk"], "lead_of": ["desk"]}
    services = FakeServices({("assignment", "GET", "/agents/cora"): agent})
    people.remove_from_team(SimpleNamespace(services=services, kept={}), ADMIN, "cora", "desk")
    assert ("assignment", "PATCH", "/agents/cora", {"teams": ["network"]}) in services.calls


def test_removing_an_agent_from_a_team_counts_its_open_tickets_there_first_and_leaves_their_move_to_assignment():
    """assignment hands them back itself (PATCH /agents): a transfer of each besides would move some again."""
    agent = {"id": "cora", "teams": ["network", "desk"], "lead_of": []}
    held = {"items": [{"ticket_id": "t-1", "number": 101}, {"ticket_id": "t-2", "number": 102}], "next_cursor": None}
    desk = {"items": [{"id": "bo", "teams": ["desk"], "available": True}]}  # someone there takes tickets
    services = FakeServices(
        {
            ("assignment", "GET", "/agents/cora"): agent,
            ("assignment", "GET", "/queue"): held,
            ("assignment", "GET", "/agents"): desk,
        }
    )
    handing_back(services, stays=("t-2",))  # past the change's bound, or changing just then
    outcome = people.remove_from_team(SimpleNamespace(services=services, kept={}), ADMIN, "cora", "desk")
    after = [(method, path, body) for _, method, path, body in services.calls if method != "GET" or path == "/queue"]
    read = ("GET", "/queue", {"agent_id": "cora", "team": "desk", "limit": people.HAND_BACK_MAX})
    assert after == [read, ("PATCH", "/agents/cora", {"teams": ["network"]}), read]  # counted before and after
    assert outcome == {
        "moved": 1, "failed": [], "more": False, "at_least": False, "stayed": [102], "unread": False, "nobody": None
    }  # fmt: skip
    words = people.hand_back_words("Desk", outcome)
    assert words == (
        "1 open ticket of Desk went back to the team: each to another of its agents, or to its queue. 1 still with "
        "the agent for now (#102): assignment hands it back to Desk by itself shortly."
    )
    outcome = {**outcome, "moved": 2, "stayed": []}
    words = people.hand_back_words("Desk", {**outcome, "at_least": True})
    assert words.startswith("More than 2 open tickets of Desk went back to the team")


def test_a_ticket_that_cannot_be_handed_back_is_named_and_the_others_go_on():
    agent = {"id": "cora", "teams": ["network", "desk"], "lead_of": [], "available": False}  # away
    held = {"items": [{"ticket_id": "t-1", "number": 101}, {"ticket_id": "t-2", "number": 102}], "next_cursor": "c"}
    services = FakeServices({("assignment", "GET", "/agents/cora"): agent, ("assignment", "GET", "/queue"): held})
    answer = services.call

    def call(service, method, path, actor, json=None, params=None, **kwargs):
        if path == "/tickets/t-1/assign":
            raise Refused(409, "Conflict", "The ticket is resolved.")
        return answer(service, method, path, actor, json=json, params=params)

    services.call = call
    outcome = people.hand_back(SimpleNamespace(services=services, kept={}), ADMIN, "cora", "desk")
    nobody = "Nobody in desk takes tickets now (it has no agents): the ticket waits in its queue until an agent"
    assert outcome["nobody"].startswith(nobody)  # no agent of desk: where it went, and why it waits there
    assert outcome | {"nobody": None} == {"moved": 1, "failed": [(101, "The ticket is resolved.")], "more": True,
                                         "nobody": None}  # fmt: skip
    assert people.hand_back_words("Desk", outcome).endswith("until an agent there is available.")


def test_tickets_of_a_team_the_agent_left_are_assignment_s_to_hand_back_not_the_button_s():
    """A transfer from the page could pick again a ticket assignment's reconciler has just handed back."""
    agent = {"id": "cora", "teams": ["network"], "lead_of": []}  # out of desk
    services = FakeServices({("assignment", "GET", "/agents/cora"): agent})
    with pytest.raises(UserError, match="assignment hands its tickets there back by itself") as refused:
        people.hand_back(SimpleNamespace(services=services, kept={}), ADMIN, "cora", "desk")
    assert refused.value.status == 409
    assert [call[1] for call in services.calls if call[1] != "GET"] == []


def test_an_empty_id_is_a_field_error_before_any_call():
    services = FakeServices()
    with pytest.raises(UserError) as refused:
        people.put_topic(
            SimpleNamespace(services=services, kept={}), ADMIN, {"topic_id": " ", "topic_name": "Printers"}
        )
    assert refused.value.errors == {"topic_id": ["Enter the topic's id."]} and services.calls == []
    with pytest.raises(UserError) as refused:  # both empty: both said at once
        people.put_topic(SimpleNamespace(services=services, kept={}), ADMIN, {"topic_id": "", "topic_name": " "})
    assert refused.value.errors == {"topic_id": ["Enter the topic's id."], "topic_name": ["Enter the topic's name."]}
    assert services.calls == []


def test_ids_typed_in_a_form_stay_one_path_segment():
    services = FakeServices()
    people.put_topic(SimpleNamespace(services=services, kept={}), ADMIN, {"topic_id": "a?b#c%2F", "topic_name": "X"})
    sent = lambda: [call for call in services.calls if call[1] != "GET"]  # noqa: E731 - the names read first
    assert sent() == [("intake", "PUT", "/topics/a%3Fb%23c%252F", {"name": "X"})]  # intake says what is wrong
    for typed in ("a/../b", "..", "."):  # no path carries these as one part: said here, never sent
        with pytest.raises(UserError) as refused:
            people.put_topic(SimpleNamespace(services=services, kept={}), ADMIN, {"topic_id": typed, "topic_name": "X"})
        assert (
            refused.value.errors == {"topic_id": [refused.value.message]} and "cannot hold “/”" in refused.value.message
        )
    assert len(sent()) == 1


def test_a_what_if_refused_by_sla_shows_its_reasons_under_the_fields():
    draft = {"first_response_minutes": "30", "calendar": "24x7"}
    services = FakeServices(refuse=Refused(422, "Validation failed", "", {"calendar": ["Unknown calendar."]}))
    with pytest.raises(UserError) as refused:
        sla.what_if(SimpleNamespace(services=services, kept={}), ADMIN, "high", draft)
    assert refused.value.errors == {"calendar": ["Unknown calendar."]}


def test_a_what_ifs_changed_tickets_are_named_by_number_and_subject_and_the_newest_hundred_shown():
    def change(n: int) -> dict:
        return {"ticket_id": f"t{n:03}", "clock": "first_response", "instance": 0, "current": {}, "draft": {}}

    class Intake(FakeServices):
        def get(self, service, path, actor, **params):
            if path == "/tickets/t101":  # no longer shown to this admin
                raise Refused(404, "Not Found", "")
            return super().get(service, path, actor, **params)

    answer = {"current": {"items": []}, "draft": {"items": []}, "changed": [change(n) for n in range(103)]}
    services = Intake({("sla", "POST", "/policies/high/what-if"): answer, ("intake", "GET", "/tickets/t102"): {
        "number": 100042, "subject": "VPN drops"}})  # fmt: skip
    shown = sla.what_if(SimpleNamespace(services=services, kept={}), ADMIN, "high", {"calendar": "24x7"})
    assert len(shown["changed"]) == 100 and shown["not_shown"] == 3
    assert shown["changed"][0]["ticket"] == {"number": 100042, "subject": "VPN drops"}
    assert shown["changed"][1]["ticket"] is None and shown["changed"][1]["ticket_id"] == "t101"
    looked_up = [call[2] for call in services.calls if call[0] == "intake"]
    assert len(looked_up) == 99 and "/tickets/t002" not in looked_up  # t101 refused before it was kept


def test_minutes_and_percents_in_words():
    assert [minutes(v) for v in (15, 90, 4320, 0.05, None)] == ["15 min", "90 min (1.5 h)", "4320 min (3 d)",
                                                                 "0.05 min", "—"]  # fmt: skip
    assert [minutes(v) for v in (5_270_400, 0.025, 120.5)] == ["5270400 min (3660 d)", "0.025 min", "120.5 min (2 h)"]
    assert minutes(0.00012) == "0.00012 min"  # a target under a second: never "0 min"
    assert percent(93.333) == "93.3%" and percent(None) == "—"  # as the reports write it


def test_a_topic_two_teams_name_is_shown_going_where_assignment_sends_it():
    teams = [{"id": "qa-team", "name": "QA", "topics": ["network", "qa"]},
             {"id": "network", "name": "Network", "topics": ["network", "vpn"]}]  # fmt: skip
    services = FakeServices({("assignment", "GET", "/teams"): {"items": teams}})
    svc = SimpleNamespace(
        services=services, kept={}, store=SimpleNamespace(list_accounts=lambda: [], disabled_agent_ids=dict)
    )
    found = {team["id"]: team["elsewhere"] for team in people.directory(svc, ADMIN)["teams"]}
    assert found == {"qa-team": {"network": "network"}, "network": {}}  # the first by id takes it


class Checking(FakeServices):
    """assignment as it answers a form with an empty email: refused, with that and the other fields' errors."""

    def call(self, service, method, path, actor, json=None, params=None, **kwargs):
        if method != "GET" and (json or {}).get("email") == "":
            self.calls.append((service, method, path, json))
            errors = {"email": ["Not a valid email address."], **({"capacity": ["Not a valid integer."]} if
                      json.get("capacity") == "lots" else {})}  # fmt: skip
            raise Refused(422, "Validation failed", "The agent has invalid fields.", errors)
        return super().call(service, method, path, actor, json=json, params=params, **kwargs)


def test_an_agent_page_refuses_an_email_another_agent_has_next_to_the_field():
    agents = [{"id": "omar", "name": "Omar", "email": "omar@example.com"}, {"id": "tess", "email": "t@example.com"}]
    services = Checking({("assignment", "GET", "/agents"): {"items": agents}})
    svc = SimpleNamespace(services=services, kept={}, store=SimpleNamespace(accounts_of_agent=lambda agent_id: []))
    form = {"name": "Tess", "email": " Omar@Example.com ", "teams": ["network"], "capacity": "2"}
    with pytest.raises(UserError) as refused:
        people.save_agent(svc, ADMIN, "tess", form)
    assert refused.value.errors == {"email": ["Omar (omar) has this email address: each agent's emails go to its own."]}
    assert [call[3]["email"] for call in services.calls if call[1] == "PATCH"] == [""]  # only asked: nothing changed
    with pytest.raises(UserError) as refused:  # the other fields' problems said with it
        people.save_agent(svc, ADMIN, "tess", {**form, "capacity": "lots"})
    assert refused.value.errors == {
        "capacity": ["Enter a whole number, like 10."],
        "email": ["Omar (omar) has this email address: each agent's emails go to its own."],
    }
    services.calls.clear()
    people.save_agent(svc, ADMIN, "omar", {**form, "name": "Omar"})  # its own
    people.save_agent(svc, ADMIN, "tess", {**form, "email": "tess@example.com"})
    assert [path for _, method, path, _ in services.calls if method == "PATCH"] == ["/agents/omar", "/agents/tess"]


TOPICS = {("intake", "GET", "/topics"): {"items": [{"id": t} for t in ("software", "vpn", "vpn2", "printers", "wifi")]}}


def test_a_topic_another_team_has_is_moved_only_when_asked_whichever_team_comes_first():
    teams = [
        {"id": "general", "topics": ["software"]},
        {"id": "network", "topics": ["vpn"]},
        {"id": "b-team", "topics": ["printers"]},
    ]
    services = FakeServices({("assignment", "GET", "/teams"): {"items": teams}, **TOPICS})
    svc = SimpleNamespace(services=services, kept={})
    with pytest.raises(people.TopicQuestion) as asked:  # a-tester comes before general: software's would move
        people.create_team(svc, ADMIN, {"id": "a-tester", "name": "A", "topics": ["software"]})
    assert asked.value.question[0].startswith("Topic software: its tickets go to general (general) now")
    assert asked.value.errors == {}  # a question, not a mistake in the form: no field is marked wrong
    with pytest.raises(people.TopicQuestion) as later:  # zz comes after network: asked alike, moved alike
        people.create_team(svc, ADMIN, {"id": "zz", "name": "Z", "topics": ["vpn"]})
    assert later.value.question[0].startswith("Topic vpn: its tickets go to network (network) now")
    assert [call for call in services.calls if call[1] == "POST"] == []
    assert asked.value.asked == ["software"]
    yes = {"id": "a-tester", "name": "A", "topics": ["software", "vpn2"], people.MOVE_TOPICS: "software"}
    people.create_team(svc, ADMIN, yes)
    people.create_team(svc, ADMIN, {"id": "zz", "name": "Z", "topics": ["vpn"], people.MOVE_TOPICS: "vpn"})
    people.change_team(svc, ADMIN, "b-team", {"name": "B", "topics": ["printers"]})  # what it has, kept
    sent = [(method, path, body) for _, method, path, body in services.calls if method != "GET"]
    assert sent == [
        ("POST", "/teams", {"id": "a-tester", "name": "A", "topics": ["software", "vpn2"]}),
        ("PATCH", "/teams/general", {"topics": []}),  # moved: general no longer names software
        ("POST", "/teams", {"id": "zz", "name": "Z", "topics": ["vpn"]}),  # meanwhile network, first by id, has it
        ("PATCH", "/teams/network", {"topics": []}),  # then zz alone: never general in between
        ("PATCH", "/teams/b-team", {"name": "B", "topics": ["printers"]}),
    ]


def test_a_topic_two_teams_name_leaves_both_and_a_team_that_would_not_change_is_said():
    teams = [{"id": "alpha", "topics": ["vpn"]}, {"id": "network", "topics": ["vpn", "wifi"]}]
    services = FakeServices({("assignment", "GET", "/teams"): {"items": teams}, **TOPICS})
    svc = SimpleNamespace(services=services, kept={})
    people.create_team(svc, ADMIN, {"id": "zz", "name": "Z", "topics": ["vpn"], people.MOVE_TOPICS: "vpn"})
    sent = [(method, path, body) for _, method, path, body in services.calls if method != "GET"]
    assert sent == [
        ("POST", "/teams", {"id": "zz", "name": "Z", "topics": ["vpn"]}),
        ("PATCH", "/teams/alpha", {"topics": []}),  # both lose it: network, before zz by id, would keep its tickets
        ("PATCH", "/teams/network", {"topics": ["wifi"]}),
    ]

    class RefusingPatches(FakeServices):
        def call(self, service, method, path, actor, json=None, params=None, **kwargs):
            if method == "PATCH":
                raise Unreachable("assignment", "timed out")
            return super().call(service, method, path, actor, json=json, params=params)

    svc = SimpleNamespace(
        services=RefusingPatches({("assignment", "GET", "/teams"): {"items": teams}, **TOPICS}), kept={}
    )
    with pytest.raises(UserError) as said:
        people.create_team(svc, ADMIN, {"id": "zz", "name": "Z", "topics": ["vpn"], people.MOVE_TOPICS: "vpn"})
    assert said.value.message.startswith("Saved, but alpha, network could not be changed")


def test_a_policy_saved_with_its_own_terms_says_nothing_changed():
    services = FakeServices(
        {("sla", "GET", "/policies/low"): {"version": 4}, ("sla", "PUT", "/policies/low"): {"version": 4}}
    )
    form = {"first_response_minutes": "60", "next_response_minutes": "60", "resolution_minutes": "480",
            "warn_at_percent": "80", "calendar": "24x7"}  # fmt: skip
    assert sla.put_policy(SimpleNamespace(services=services, kept={}), ADMIN, "low", form)[1] is False
    services.answers[("sla", "PUT", "/policies/low")] = {"version": 5}
    assert sla.put_policy(SimpleNamespace(services=services, kept={}), ADMIN, "low", form)[1] is True


def test_a_calendar_saved_as_it_is_makes_no_new_version():
    current = {"id": "office", "version": 3, "timezone": "Europe/Berlin", "hours": {"mon": [["09:00", "17:00"]]},
               "holidays": ["2026-12-25"]}  # fmt: skip
    services = FakeServices({("sla", "GET", "/calendars/office"): current})
    form = {"calendar_id": "office", "existing": "1", "timezone": "Europe/Berlin", "hours-mon": "09:00-17:00",
            "holidays": "2026-12-25"}  # fmt: skip
    assert sla.put_calendar(SimpleNamespace(services=services, kept={}), ADMIN, form)["unchanged"] is True
    current["holidays"] = ["2026-12-25", "2027-01-01"]  # sla keeps them sorted, once each
    twice_backwards = {**form, "holidays": "2027-01-01, 2026-12-25\n2027-01-01"}
    assert sla.put_calendar(SimpleNamespace(services=services, kept={}), ADMIN, twice_backwards)["unchanged"] is True
    assert [call for call in services.calls if call[1] == "PUT"] == []
    sla.put_calendar(SimpleNamespace(services=services, kept={}), ADMIN, {**form, "hours-mon": "08:00-17:00"})
    assert [call[2] for call in services.calls if call[1] == "PUT"] == ["/calendars/office"]


def test_the_yes_to_moving_topics_covers_only_the_topics_it_was_asked_about():
    teams = [{"id": "general", "topics": ["software"]}, {"id": "network", "topics": ["printers"]}]
    services = FakeServices({("assignment", "GET", "/teams"): {"items": teams}, **TOPICS})
    form = {"id": "a-team", "name": "A", "topics": ["software", "printers"], people.MOVE_TOPICS: "software"}
    with pytest.raises(people.TopicQuestion) as asked:  # printers was added after the question: asked about too
        people.create_team(SimpleNamespace(services=services, kept={}), ADMIN, form)
    assert asked.value.asked == ["printers", "software"]


def test_a_team_id_taken_is_left_to_assignment_to_say_not_asked_about_topics():
    teams = [{"id": "general", "topics": ["software"]}, {"id": "a-team", "topics": []}]
    services = FakeServices({("assignment", "GET", "/teams"): {"items": teams}, **TOPICS})
    people.create_team(
        SimpleNamespace(services=services, kept={}), ADMIN, {"id": "a-team", "name": "A", "topics": ["software"]}
    )
    assert [path for _, method, path, _ in services.calls if method == "POST"] == ["/teams"]


def test_agents_that_share_an_email_already_may_change_the_rest():
    agents = [{"id": "omar", "name": "Omar", "email": "desk@example.com"}, {"id": "tess", "email": "DESK@example.com"}]
    services = FakeServices({("assignment", "GET", "/agents"): {"items": agents}})
    form = {"name": "Tess", "email": "desk@example.com", "teams": ["network"], "capacity": "3"}
    people.save_agent(SimpleNamespace(services=services, kept={}), ADMIN, "tess", form)  # its email as it was
    assert [path for _, method, path, _ in services.calls if method == "PATCH"] == ["/agents/tess"]


def test_a_team_led_but_not_joined_is_said_by_its_name_with_the_forms_other_problems():
    teams = {"items": [{"id": "t3a", "name": "T3 Printing"}, {"id": "desk", "name": "Desk"}]}
    services = Checking({("assignment", "GET", "/agents"): {"items": []}, ("assignment", "GET", "/teams"): teams})
    svc = SimpleNamespace(
        services=services,
        kept={},
        store=SimpleNamespace(account_by_email=lambda email: None, accounts_of_agent=lambda agent_id: []),
    )
    form = {"id": "pat", "name": "Pat", "email": "", "teams": ["desk"], "lead_of": ["t3a"], "capacity": "lots"}
    with pytest.raises(UserError) as refused:
        people.create_agent(svc, ADMIN, form)
    assert refused.value.errors["lead_of"] == [
        "An agent leads only teams it is in: tick T3 Printing under Teams too, or untick it here."
    ]
    assert {"email", "capacity"} <= set(refused.value.errors)  # the email left empty is said too, by assignment
    assert [c[3]["email"] for c in services.calls if c[1] == "POST"] == [""]  # only asked: nothing is added


def test_a_new_agent_with_another_agent_s_email_is_refused_next_to_the_field():
    agents = [{"id": "omar", "name": "Omar", "email": "omar@example.com"}]
    services = Checking({("assignment", "GET", "/agents"): {"items": agents}})
    svc = SimpleNamespace(
        services=services,
        kept={},
        store=SimpleNamespace(account_by_email=lambda email: None, accounts_of_agent=lambda agent_id: []),
    )
    form = {"id": "tess", "name": "Tess", "email": "omar@example.com", "teams": ["network"], "capacity": "3"}
    with pytest.raises(UserError) as refused:
        people.create_agent(svc, ADMIN, form)
    assert list(refused.value.errors) == ["email"]
    assert [c[3]["email"] for c in services.calls if c[1] == "POST"] == [""]  # only asked, so nothing is added
    with pytest.raises(UserError) as refused:
        people.create_agent(svc, ADMIN, {**form, "capacity": "lots"})
    assert set(refused.value.errors) == {"email", "capacity"}  # said together


class Agents(Checking):
    """assignment with these agents: any other's GET /agents/{id} is a 404."""

    def __init__(self, agents: dict) -> None:
        super().__init__({("assignment", "GET", f"/agents/{i}"): agent for i, agent in agents.items()})

    def call(self, service, method, path, actor, json=None, params=None, **kwargs):
        if method == "GET" and path.startswith("/agents/") and (service, method, path) not in self.answers:
            raise Refused(404, "Not Found", "No such agent.")
        return super().call(service, method, path, actor, json=json, params=params, **kwargs)


def test_a_new_agent_s_id_that_an_account_signs_in_as_is_said_in_the_add_form_s_words():
    """An id an agent has already: choose another. An id whose agent is gone but its account is left: that account
    is named, and what to do with it. Neither says to leave the id empty (that is the Accounts form's advice)."""
    accounts = {"sofia": [{"email": "sofia@example.com"}], "gus": [{"email": "gus@example.com"}]}
    svc = SimpleNamespace(
        services=Agents({"sofia": {"id": "sofia", "name": "Sofia", "teams": []}}),
        kept={},
        store=SimpleNamespace(account_by_email=lambda email: None, accounts_of_agent=lambda i: accounts.get(i, [])),
    )
    form = {"name": "New", "email": "new@example.com", "teams": [], "capacity": "3"}
    for agent_id, said in [
        ("sofia", "An agent with the id sofia exists already: choose another id for the new agent."),
        ("gus", "The account gus@example.com still signs in as gus, an agent deleted since: choose another id, or "
         "disable and delete that account first (Accounts)."),
    ]:  # fmt: skip
        with pytest.raises(UserError) as refused:
            people.create_agent(svc, ADMIN, {**form, "id": agent_id})
        assert refused.value.status == 409 and refused.value.errors == {"id": [said]}
    assert not [call for call in svc.services.calls if call[1] == "POST" and call[3]["email"]]  # nothing added

    class Silent(Agents):  # assignment does not answer the look-up: neither "exists" nor "deleted" is claimed
        def call(self, service, method, path, actor, json=None, params=None, **kwargs):
            if method == "GET" and path.startswith("/agents/"):
                raise Unreachable("assignment", "timed out")
            return super().call(service, method, path, actor, json=json, params=params, **kwargs)

    svc.services = Silent({})
    with pytest.raises(UserError) as refused:
        people.create_agent(svc, ADMIN, {**form, "id": "gus"})
    [said] = refused.value.errors["id"]
    assert said.startswith("The account gus@example.com signs in as the agent gus already") and "deleted" not in said


def test_a_team_s_new_topics_are_help_topics_intake_has_and_what_it_had_stays():
    """The form offers intake's topics only; an edited form's other id is refused next to the list, before
    assignment is asked. A topic the team had (given through the API) is kept on a save. intake not answering:
    not checked."""
    teams = [{"id": "desk", "topics": ["legacy"]}]
    services = FakeServices({("assignment", "GET", "/teams"): {"items": teams}, **TOPICS})
    svc = SimpleNamespace(services=services, kept={})
    for save in (
        lambda: people.create_team(svc, ADMIN, {"id": "qa", "name": "QA", "topics": ["vpn", "nonexistent"]}),
        lambda: people.change_team(svc, ADMIN, "desk", {"name": "Desk", "topics": ["legacy", "nonexistent"]}),
    ):
        with pytest.raises(UserError) as refused:
            save()
        assert refused.value.errors == {
            "topics": ["No help topic has the id nonexistent: choose topics from the list."]
        }
    assert [call for call in services.calls if call[1] != "GET"] == []
    people.change_team(svc, ADMIN, "desk", {"name": "Desk", "topics": ["legacy", "vpn"]})
    assert [call[3] for call in services.calls if call[1] == "PATCH"] == [{"name": "Desk", "topics": ["legacy", "vpn"]}]

    class IntakeAway(FakeServices):
        def call(self, service, method, path, actor, json=None, params=None, **kwargs):
            if service == "intake":
                raise Unreachable("intake", "timed out")
            return super().call(service, method, path, actor, json=json, params=params)

    away = SimpleNamespace(services=IntakeAway({("assignment", "GET", "/teams"): {"items": teams}}), kept={})
    people.create_team(away, ADMIN, {"id": "qa", "name": "QA", "topics": ["anything"]})  # assignment takes any id
    assert [call[2] for call in away.services.calls if call[1] == "POST"] == ["/teams"]


def test_tickets_are_handed_back_only_to_a_team_the_agent_has_left():
    services = FakeServices({("assignment", "GET", "/agents/cora"): {"id": "cora", "teams": ["desk"]}})
    with pytest.raises(UserError):
        people.hand_back(SimpleNamespace(services=services, kept={}), ADMIN, "cora", "desk")
    assert [call for call in services.calls if call[1] != "GET"] == []


def test_unticking_a_team_on_the_agent_page_hands_its_tickets_there_back():
    agents = [{"id": "cora", "name": "Cora", "email": "cora@example.com", "teams": ["network", "desk"]},
              {"id": "bo", "name": "Bo", "email": "bo@example.com", "teams": ["desk"], "available": True}]  # fmt: skip
    held = {"items": [{"ticket_id": "t-1", "number": 101}], "next_cursor": None}
    services = FakeServices(
        {("assignment", "GET", "/agents"): {"items": agents}, ("assignment", "GET", "/queue"): held}
    )
    handing_back(services)
    form = {"name": "Cora", "email": "cora@example.com", "teams": ["network"], "capacity": "3"}
    saved = people.save_agent(SimpleNamespace(services=services, kept={}), ADMIN, "cora", form)
    went = {"moved": 1, "failed": [], "more": False, "at_least": False, "stayed": [], "unread": False, "nobody": None}
    assert saved.handed == {"desk": went} and saved.given == 0
    sent = [(method, path) for _, method, path, _ in services.calls if method != "GET" or path == "/queue"]
    assert sent == [("GET", "/queue"), ("PATCH", "/agents/cora"), ("GET", "/queue")]  # no transfer again


def test_an_empty_add_agent_form_gets_every_fields_error_at_once():
    """No email: the portal's own checks of it wait, so that assignment names every field the form lacks."""
    problems = {"id": ["Missing data for required field."], "name": ["Shorter than minimum length 1."],
                "email": ["Not a valid email address."], "capacity": ["Not a valid integer."]}  # fmt: skip
    services = FakeServices(refuse=Refused(422, "Validation failed", "The agent has invalid fields.", problems))
    svc = SimpleNamespace(
        services=services,
        kept={},
        store=SimpleNamespace(account_by_email=lambda email: None, accounts_of_agent=lambda agent_id: []),
    )
    with pytest.raises(UserError) as refused:
        people.create_agent(svc, ADMIN, {"id": "", "name": "", "email": "", "capacity": ""})
    assert set(refused.value.errors) == {"id", "name", "email", "capacity"}
    assert [call[:3] for call in services.calls] == [("assignment", "POST", "/agents")]
    with pytest.raises(UserError) as refused:  # an email typed: the portal's words for it, with the others' errors
        people.create_agent(svc, ADMIN, {"id": "", "name": "", "email": "not-an-address", "capacity": ""})
    assert set(refused.value.errors) == {"id", "name", "email", "capacity"}
    assert refused.value.errors["email"] != ["Not a valid email address."]  # the portal's own, not assignment's


class Silent(FakeServices):
    """A service that stops answering after `answered` calls of `method`; every call kept."""

    def __init__(self, method: str, answered: int, answers: dict | None = None) -> None:
        super().__init__(answers)
        self.method, self.answered = method, answered

    def call(self, service, method, path, actor, json=None, params=None, **kwargs):
        if method == self.method and len([c for c in self.calls if c[1] == method]) >= self.answered:
            self.calls.append((service, method, path, json if json is not None else params))
            raise Unreachable(service, "timed out")
        return super().call(service, method, path, actor, json, params, **kwargs)


def test_retry_all_stops_at_notify_s_first_silence_and_says_what_was_not_tried():
    services = Silent("POST", answered=1)
    outcome = notify.retry_all(SimpleNamespace(services=services, kept={}), ADMIN, ["n-1", "n-2", "n-3", "n-4"])
    assert outcome == {"retried": 1, "gone": 0, "refused": 0, "unanswered": 1, "not_tried": 2}
    assert [call[2] for call in services.calls] == ["/notifications/n-1/retry", "/notifications/n-2/retry"]
    words = retried_words(outcome)
    assert words.startswith("1 notification is being sent again. notify stopped answering: the last one tried")
    assert words.endswith("2 notifications not tried: Retry all again in a moment.")
    assert retried_words(notify.retry_all(SimpleNamespace(services=FakeServices()), ADMIN, [])) == (
        "Nothing to retry: no failed notification was chosen."
    )


def test_ticket_numbers_are_not_asked_of_intake_after_it_stops_answering():
    items = [{"ticket_id": f"t-{i}"} for i in range(5)]
    services = Silent("GET", answered=1, answers={("intake", "GET", "/tickets/t-0"): {"number": 100}})
    notify.numbered(SimpleNamespace(services=services, kept={}), None, items)
    assert [item["number"] for item in items] == [100, None, None, None, None]
    assert [call[2] for call in services.calls] == ["/tickets/t-0", "/tickets/t-1"]  # then no more waiting


def test_a_webhook_for_a_url_that_has_one_is_refused_next_to_the_url():
    hooks = {"items": [{"id": "w-1", "url": "https://hooks.example.com/ticketflow"}]}
    services = FakeServices({("notify", "GET", "/webhooks"): hooks})
    svc = SimpleNamespace(
        services=services, kept={}, store=SimpleNamespace(form_used=lambda key: False, use_form=print)
    )
    form = {"url": " https://hooks.example.com/ticketflow ", "events": "ticket.*", "form_key": "k"}
    with pytest.raises(UserError) as refused:
        notify.add_webhook(svc, {**ADMIN, "_id": "s-1"}, form)
    assert refused.value.status == 409 and refused.value.errors["url"][0].startswith("A webhook for this URL exists")
    assert [call for call in services.calls if call[1] == "POST"] == []
    notify.add_webhook(svc, {**ADMIN, "_id": "s-1"}, {**form, "url": "https://hooks.example.com/other"})
    assert [call[2] for call in services.calls if call[1] == "POST"] == ["/webhooks"]


def test_an_empty_field_is_told_once_what_it_needs():
    refused = Refused(422, "Validation failed", "The agent has invalid fields.", {
        "name": ["Length must be between 1 and 200.", "Must not be blank."],
        "id": ["Must not be blank."],  # spaces only: long enough, but blank
        "teams.0": ["Unknown team."], "teams.1": ["Unknown team."],
    })  # fmt: skip
    assert refusal(refused).errors == {
        "name": ["Write 1 to 200 characters."],
        "id": ["Must not be blank."],
        "teams": ["Unknown team."],
    }


def test_names_a_service_did_not_give_are_not_kept_and_the_next_page_asks_again():
    svc = SimpleNamespace(services=Silent("GET", answered=0), kept={})
    assert console.team_names(svc, ADMIN) == {}
    assert "teams_names" not in svc.kept and console.names_asked_at(svc, "teams") > float("-inf")
    svc.services = FakeServices({("assignment", "GET", "/teams"): {"items": [{"id": "desk", "name": "Desk"}]}})
    assert console.team_names(svc, ADMIN) == {"desk": "Desk"}  # not a kept failure: asked again
    assert console.team_names(svc, ADMIN) == {"desk": "Desk"} and len(svc.services.calls) == 1  # then kept


def test_a_team_or_topic_added_or_renamed_here_is_asked_for_again_on_the_next_page():
    teams = {"items": [{"id": "general", "topics": []}]}
    services = FakeServices({("assignment", "GET", "/teams"): teams, ("intake", "PUT", "/topics/fax"): {"id": "fax"}})
    svc = SimpleNamespace(services=services, kept={"teams_names": (0.0, {}), "topics_names": (0.0, {})})
    people.create_team(svc, ADMIN, {"id": "desk", "name": "Desk", "topics": []})
    assert "teams_names" not in svc.kept or svc.kept["teams_names"][1] != {}  # forgotten, or read again since
    svc.kept["teams_names"] = (0.0, {"desk": "Old name"})
    people.change_team(svc, ADMIN, "desk", {"name": "Desk", "topics": []})
    assert "teams_names" not in svc.kept
    people.put_topic(svc, ADMIN, {"topic_id": "fax", "topic_name": "Fax"})
    assert "topics_names" not in svc.kept


def test_a_calendar_form_takes_times_and_time_zones_as_people_type_them():
    body = sla.calendar_body({"timezone": " europe/madrid ", "hours-mon": "9-13, 14:00–18:00", "hours-tue": "0930-1200",
                              "hours-wed": "08:00-9:30", "holidays": ""})  # fmt: skip
    assert body["timezone"] == "Europe/Madrid"
    assert body["hours"] == {"mon": [["09:00", "13:00"], ["14:00", "18:00"]], "tue": [["09:30", "12:00"]],
                             "wed": [["08:00", "09:30"]]}  # fmt: skip


def test_a_calendar_period_past_midnight_goes_on_into_the_next_day_and_sunday_s_into_monday():
    body = sla.calendar_body({"timezone": "UTC", "hours-mon": "08:00-12:00", "hours-tue": "22:00-06:00",
                              "hours-sun": "20:00-00:00, 23:00-2:00"})  # fmt: skip
    assert body["hours"] == {
        "mon": [["00:00", "02:00"], ["08:00", "12:00"]],  # Sunday's night
        "tue": [["22:00", "24:00"]],
        "wed": [["00:00", "06:00"]],
        "sun": [["20:00", "24:00"], ["23:00", "24:00"]],  # they overlap: sla says so, as typed
    }


def test_a_period_ending_before_it_starts_is_a_night_only_when_written_with_its_minutes():
    """ "9-5" is office hours written short, not a night from 09:00 to 05:00: sla refuses it next to its day."""
    body = sla.calendar_body(
        {
            "timezone": "UTC",
            "hours-mon": "9-5",
            "hours-tue": "8-4:30",
            "hours-wed": "17:00-9:00",
            "hours-fri": "10:00-09:00",
        }
    )
    assert body["hours"] == {"mon": [["09:00", "05:00"]], "tue": [["08:00", "04:30"]], "wed": [["17:00", "24:00"]],
                             "thu": [["00:00", "09:00"]], "fri": [["10:00", "09:00"]]}  # fmt: skip
    # Friday's starts in the morning: a slip, not a night


@pytest.mark.parametrize("typed", ["25:00-06:00", "9:60-10:00", "x", "９:00-10:00", "Mars/Base", "123-200"])
def test_what_is_not_a_time_or_a_zone_goes_to_sla_as_typed_for_it_to_refuse(typed):
    body = sla.calendar_body({"timezone": typed, "hours-mon": typed})
    assert body["timezone"] == typed
    assert body["hours"]["mon"] in ([[typed]], [typed.split("-")])


@pytest.mark.parametrize(
    ("said", "shown"),
    [
        ('Period 0: must be two "HH:MM" strings.', "Period 1: write a start and an end, like 09:00-17:00 (periods "
         "apart by commas)."),
        ('Period 1: times must be "HH:MM" from 00:00 to 23:59 (24:00 may end a period).', "Period 2: write times "
         "like 09:00 or 9:30, from 00:00 to 24:00, and the periods of a day apart by commas, like 09:00-13:00, "
         "14:00-18:00."),
        ("Period 0: 09:00-05:00 must start before it ends (24:00 is midnight).", "Period 1: 09:00-05:00 ends before it "
         "starts. Write the afternoon as 17:00, or a night with its minutes, like 22:00-06:00."),
        ("Unknown time zone: ''.", "Enter a time zone, like Europe/Madrid or America/New_York."),
        ("Unknown time zone: 'Mars/Base'.", "Unknown time zone: 'Mars/Base'."),
    ],
)  # fmt: skip
def test_sla_s_words_for_a_calendar_are_said_as_a_person_types_it(said, shown):
    assert in_words(said) == shown


def test_an_agent_given_waiting_tickets_by_its_change_is_said_so():
    """A new team (or more capacity) makes assignment give the agent what waited in its queues at once: the page
    says how many, counted from the agent's open tickets before and after (the tickets handed back left)."""
    agents = [{"id": "tom", "name": "Tom", "email": "tom@example.com", "teams": ["general"], "open_tickets": 2}]
    held = {"items": [{"ticket_id": "t-1", "number": 101}, {"ticket_id": "t-2", "number": 102}], "next_cursor": None}
    services = FakeServices(
        {
            ("assignment", "GET", "/agents"): {"items": agents},
            ("assignment", "GET", "/queue"): held,
            ("assignment", "PATCH", "/agents/tom"): {**agents[0], "teams": ["hardware"], "open_tickets": 3},
        }
    )
    handing_back(services)
    form = {"name": "Tom", "email": "tom@example.com", "teams": ["hardware"], "capacity": "4"}
    saved = people.save_agent(SimpleNamespace(services=services, kept={}), ADMIN, "tom", form)
    assert saved.handed["general"]["moved"] == 2 and saved.given == 3  # 2 - 2 handed back + 3 given = 3 open
    assert people.given_words(saved.given) == "3 waiting tickets of their teams went to them."
    assert people.given_words(0) == ""
