"""Attachments: intake's blob and attachment stores on the real wire server, and its API for them (in-process,
and one real gunicorn for what only a real server shows: a huge body refused before it is read)."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import time
import uuid
from urllib.parse import quote

import pytest
import requests
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from services.intake import domain, handlers
from services.intake.store import AttachmentIdTaken, AttachmentStore, BlobDamaged, BlobStore
from tests.harness import auth_header, requester_header
from tests.integration.conftest import event_from

PROBLEM_JSON = "application/problem+json"
MIB = 1024 * 1024
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


# --- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def intake(intake_app) -> handlers.Intake:
    return intake_app.extensions["ticketflow.intake"]


@pytest.fixture
def blobs(intake) -> BlobStore:
    return intake.blobs


@pytest.fixture
def attachments(intake) -> AttachmentStore:
    return intake.attachments


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.headers["Content-Type"] == PROBLEM_JSON
    body = response.get_json(force=True)
    assert body["status"] == status and body["detail"], body
    return body


def as_requester(ticket: dict) -> dict[str, str]:
    return requester_header(ticket["requester"]["email"], ticket["id"])


def upload(client, ticket: dict, files: list[tuple[str, bytes, str]], headers=None, **fields):
    """POST the files ((name, bytes, content type) each, in `file` parts) as the ticket's requester."""
    values = {"file": [FileStorage(io.BytesIO(body), name, content_type=kind) for name, body, kind in files], **fields}
    boundary, body = encode_multipart(values)  # in memory: the test client would spool a large body to a file
    return client.post(
        f"/tickets/{ticket['id']}/attachments",
        data=body,
        headers=headers or as_requester(ticket),
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def attach_one(client, ticket: dict, name: str, body: bytes, kind: str) -> dict:
    response = upload(client, ticket, [(name, body, kind)])
    assert response.status_code == 201, response.get_json()
    return response.get_json()["items"][0]


def download(client, ticket: dict, item: dict, headers=None):
    return client.get(f"/tickets/{ticket['id']}/attachments/{item['id']}", headers=headers or as_requester(ticket))


def learn(app, envelope: dict) -> None:
    handlers.HANDLERS[envelope["type"]](app.extensions["ticketflow.intake"], envelope)


def agent_of(app, teams: list[str]) -> str:
    agent_id = unique("agent")
    data = {"agent_id": agent_id, "name": "Agent", "email": f"{agent_id}@example.com", "teams": teams,
            "lead_of": [], "available": True}  # fmt: skip
    learn(app, event_from("assignment", "agent.updated", agent_id, data))
    return agent_id


def queue_in(app, ticket: dict, team: str, agent_id: str | None = None) -> None:
    data = {"agent_id": agent_id, "agent_name": agent_id and "Agent", "agent_email": agent_id and f"{agent_id}@x.org",
            "team": team, "team_lead_email": None, "previous_agent_id": None, "reason": "auto"}  # fmt: skip
    learn(app, event_from("assignment", "ticket.assigned", ticket["id"], data))


def reply_on(app, ticket: dict) -> str:
    """An agent's reply in the ticket's thread (as intake learns it from assignment); its id."""
    reply = {"reply_id": unique("reply"), "agent_id": "jane", "agent_name": "Jane", "body": "Hi.",
             "first_response": True}  # fmt: skip
    learn(app, event_from("assignment", "ticket.replied", ticket["id"], reply))
    return reply["reply_id"]


# --- BlobStore --------------------------------------------------------------------------------


def test_a_blob_of_10_mib_comes_back_byte_for_byte_in_chunks_of_at_most_255_kib(blobs):
    data, blob_id = os.urandom(domain.ATTACHMENT_MAX_BYTES), unique("blob")

    blobs.put(blob_id, data, {"kind": "test"})

    assert blobs.read(blob_id) == data
    meta = blobs.meta(blob_id)
    assert meta["kind"] == "test" and meta["length"] == len(data)
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    sizes = [len(chunk["data"]) for chunk in blobs.chunks.find({"_id": {"$regex": f"^{blob_id}:"}}, {"data": 1})]
    assert len(sizes) == 41 and max(sizes) == 255 * 1024 and sum(sizes) == len(data)


def test_putting_a_blob_again_stores_nothing_new(blobs):
    blob_id, data = unique("blob"), os.urandom(600 * 1024)
    blobs.put(blob_id, data, {"n": 1})
    stored = blobs.meta(blob_id)

    blobs.put(blob_id, data, {"n": 2})
    blobs.put(blob_id, b"other bytes", {"n": 3})  # an id names its bytes: the first put stands

    assert blobs.read(blob_id) == data and blobs.meta(blob_id) == stored
    assert blobs.blobs.count_documents({"_id": blob_id}) == 1
    assert blobs.chunks.count_documents({"blob_id": blob_id}) == 3


def test_a_half_written_blob_is_not_there_and_the_next_put_completes_it(blobs):
    blob_id, data = unique("blob"), os.urandom(700 * 1024)
    # a put that died after two chunks, one of them torn (not what the bytes say)
    blobs.chunks.insert_one({"_id": f"{blob_id}:0", "blob_id": blob_id, "n": 0, "data": b"torn"})
    blobs.chunks.insert_one({"_id": f"{blob_id}:1", "blob_id": blob_id, "n": 1, "data": data[255 * 1024 : 510 * 1024]})

    assert blobs.read(blob_id) is None and blobs.meta(blob_id) is None

    blobs.put(blob_id, data, {})
    assert blobs.read(blob_id) == data
    assert blobs.chunks.count_documents({"blob_id": blob_id}) == 3


def test_an_empty_blob_is_a_blob(blobs):
    blob_id = unique("blob")
    blobs.put(blob_id, b"", {})
    assert blobs.read(blob_id) == b"" and blobs.meta(blob_id)["length"] == 0
    assert blobs.read(unique("none")) is None and blobs.meta(unique("none")) is None


def test_a_damaged_chunk_is_reported_not_served(blobs):
    blob_id, data = unique("blob"), os.urandom(300 * 1024)
    blobs.put(blob_id, data, {})
    blobs.chunks.update_one({"_id": f"{blob_id}:1"}, {"$set": {"data": b"x" * len(data[255 * 1024 :])}})
    with pytest.raises(BlobDamaged):
        blobs.read(blob_id)
    blobs.chunks.delete_one({"_id": f"{blob_id}:1"})
    with pytest.raises(BlobDamaged):
        blobs.read(blob_id)


# --- AttachmentStore --------------------------------------------------------------------------


def test_an_attachment_put_again_is_the_same_one(attachments):
    ticket_id, attachment_id = unique("ticket"), unique("att")
    first = attachments.put(ticket_id, attachment_id, "a.pdf", "application/pdf", PDF, None, "email")

    again = attachments.put(ticket_id, attachment_id, "b.txt", "text/plain", b"other", "m1", "email")

    assert again == first
    assert set(first) == {"id", "filename", "content_type", "size", "message_id", "created_at"}
    assert first["id"] == attachment_id and first["size"] == len(PDF) and first["message_id"] is None
    assert attachments.get(ticket_id, attachment_id) == (first, PDF)
    assert attachments.collection.count_documents({"_id": attachment_id}) == 1
    with pytest.raises(AttachmentIdTaken):
        attachments.put(unique("ticket"), attachment_id, "a.pdf", "application/pdf", PDF, None, "email")


def test_a_tickets_attachments_are_listed_oldest_first_and_only_its_own(attachments):
    ticket_id, other = unique("ticket"), unique("ticket")
    ids = [unique("att") for _ in range(3)]
    for n, attachment_id in enumerate(ids):
        attachments.put(ticket_id, attachment_id, f"{n}.txt", "text/plain", b"x" * (n + 1), None, "web")
    attachments.put(other, unique("att"), "x.txt", "text/plain", b"x", None, "web")

    listed = attachments.list(ticket_id)

    assert [item["id"] for item in listed] == ids
    assert [item["size"] for item in listed] == [1, 2, 3]
    assert attachments.get(other, ids[0]) is None and attachments.list(unique("ticket")) == []


# --- the API: list, download, rights -------------------------------------------------------------


def test_a_requester_attaches_files_and_lists_and_downloads_them(client, make_ticket):
    ticket = make_ticket()
    response = upload(client, ticket, [("report.pdf", PDF, "application/pdf"), ("notes.txt", b"hello", "text/plain")])
    assert response.status_code == 201, response.get_json()
    items = response.get_json()["items"]
    assert [(i["filename"], i["content_type"], i["size"], i["message_id"]) for i in items] == [
        ("report.pdf", "application/pdf", len(PDF), None),
        ("notes.txt", "text/plain", 5, None),
    ]

    listed = client.get(f"/tickets/{ticket['id']}/attachments", headers=as_requester(ticket)).get_json()

    assert listed == {"items": items, "next_cursor": None}
    assert all(set(item) == {"id", "filename", "content_type", "size", "message_id", "created_at"} for item in items)
    got = download(client, ticket, items[0])
    assert got.status_code == 200 and got.data == PDF and got.headers["Content-Type"] == "application/pdf"


def test_who_may_see_a_tickets_attachments(client, make_ticket, intake_app):
    ticket, others = make_ticket(), make_ticket()
    queue_in(intake_app, ticket, "network")
    item = attach_one(client, ticket, "a.pdf", PDF, "application/pdf")
    in_team, elsewhere = agent_of(intake_app, ["network"]), agent_of(intake_app, ["hardware"])
    readers = [as_requester(ticket), requester_header(ticket["requester"]["email"]), auth_header("admin"),
               auth_header("portal"), auth_header("agent", in_team)]  # fmt: skip
    strangers = [as_requester(others), requester_header(others["requester"]["email"]),
                 requester_header(ticket["requester"]["email"], others["id"]), auth_header("agent", elsewhere),
                 auth_header("agent", unique("unknown"))]  # fmt: skip
    listing, file = f"/tickets/{ticket['id']}/attachments", f"/tickets/{ticket['id']}/attachments/{item['id']}"

    for headers in readers:
        assert client.get(listing, headers=headers).get_json()["items"] == [item]
        assert client.get(file, headers=headers).data == PDF
    for headers in strangers:  # 404, as for the ticket itself: its id is not even confirmed
        problem(client.get(listing, headers=headers), 404)
        problem(client.get(file, headers=headers), 404)
        problem(upload(client, ticket, [("b.txt", b"hi", "text/plain")], headers=headers), 404)
    problem(client.get(listing), 401)
    problem(client.get(file), 401)
    assert client.get(listing, headers=as_requester(ticket)).get_json()["items"] == [item]  # nothing added


def test_one_of_the_desks_own_emails_stored_as_a_file_before_is_kept_from_agents(client, make_ticket, intake_app):
    """Mail in stored the mail a reply answered, attached whole, as a ticket file: the desk's receipt, with the
    requester's link in it, for every agent to download (a tester opened the requester's page with it). None is
    stored since; those stored before are kept from agents. The requester and admins still have them."""
    ticket = make_ticket()
    queue_in(intake_app, ticket, "network")
    intake = intake_app.extensions["ticketflow.intake"]
    receipt = (f"From: {intake.settings.notify_from}\r\nTo: {ticket['requester']['email']}\r\n"
               f"Message-ID: <n1+{ticket['id']}@ticketflow>\r\nSubject: [#{ticket['number']}] VPN\r\n\r\n"
               "See your request: http://127.0.0.1:8000/t/eyJ.a.b\r\n").encode()  # fmt: skip
    vendor = b"From: rma@vendor.example.com\r\nMessage-ID: <77@vendor.example.com>\r\nSubject: RMA\r\n\r\nOK.\r\n"
    ours = intake.attachments.put(ticket["id"], unique("a"), "VPN.eml", "message/rfc822", receipt, None, "email")
    theirs = intake.attachments.put(ticket["id"], unique("a"), "RMA.eml", "message/rfc822", vendor, None, "email")
    listing = f"/tickets/{ticket['id']}/attachments"
    agent = auth_header("agent", agent_of(intake_app, ["network"]))

    assert [item["id"] for item in client.get(listing, headers=agent).get_json()["items"]] == [theirs["id"]]
    problem(client.get(f"{listing}/{ours['id']}", headers=agent), 404)
    assert client.get(f"{listing}/{theirs['id']}", headers=agent).status_code == 200
    for headers in (auth_header("admin"), as_requester(ticket)):
        assert {item["id"] for item in client.get(listing, headers=headers).get_json()["items"]} == {
            ours["id"], theirs["id"]}  # fmt: skip
        assert client.get(f"{listing}/{ours['id']}", headers=headers).status_code == 200


def test_unknown_tickets_and_files_are_404(client, make_ticket):
    ticket, other = make_ticket(), make_ticket()
    item = attach_one(client, other, "a.pdf", PDF, "application/pdf")
    problem(client.get(f"/tickets/{unique('t')}/attachments", headers=auth_header("admin")), 404)
    problem(client.get(f"/tickets/{ticket['id']}/attachments/{unique('a')}", headers=auth_header("admin")), 404)
    # another ticket's file is not this ticket's, even for an admin
    problem(client.get(f"/tickets/{ticket['id']}/attachments/{item['id']}", headers=auth_header("admin")), 404)


def test_agents_and_admins_may_attach_but_not_the_portals_own_token(client, make_ticket, intake_app):
    ticket = make_ticket()
    queue_in(intake_app, ticket, "network")
    agent = agent_of(intake_app, ["network"])
    reply_id = reply_on(intake_app, ticket)
    for headers in (auth_header("admin"), auth_header("agent", agent)):
        file = [("log.txt", b"log", "text/plain")]
        assert upload(client, ticket, file, headers=headers, message_id=reply_id).status_code == 201
        # with no reply named they would go with the requester's opening words, and read as the requester's
        assert "message_id" in problem(upload(client, ticket, file, headers=headers), 422)["errors"]
    body = problem(upload(client, ticket, [("log.txt", b"log", "text/plain")], headers=auth_header("portal")), 403)
    assert "requester" in body["detail"]
    assert (
        len(client.get(f"/tickets/{ticket['id']}/attachments", headers=auth_header("admin")).get_json()["items"]) == 2
    )


def test_only_the_agents_who_may_reply_on_a_ticket_add_files_to_it(client, make_ticket, intake_app):
    """The requester reads every file: a teammate or a lead who sees a ticket another agent holds adds none (as
    they write no reply on it); its agent does, and so does every agent of its team while it waits unassigned."""
    ticket = make_ticket()
    holder, teammate = agent_of(intake_app, ["network"]), agent_of(intake_app, ["network"])
    queue_in(intake_app, ticket, "network")
    file, reply = [("log.txt", b"log", "text/plain")], {"message_id": reply_on(intake_app, ticket)}
    assert upload(client, ticket, file, auth_header("agent", teammate), **reply).status_code == 201  # unassigned
    queue_in(intake_app, ticket, "network", agent_id=holder)
    refused = problem(upload(client, ticket, file, auth_header("agent", teammate), **reply), 403)
    assert "Only the ticket's agent" in refused["detail"]
    assert upload(client, ticket, file, auth_header("agent", holder), **reply).status_code == 201
    assert upload(client, ticket, file, auth_header("admin"), **reply).status_code == 201
    listed = client.get(f"/tickets/{ticket['id']}/attachments", headers=as_requester(ticket)).get_json()["items"]
    assert len(listed) == 3


def test_agents_and_admins_never_file_a_file_under_the_requesters_message(client, make_ticket, intake_app):
    """It would read as the requester's: the pages say who sent each file by the message it came with."""
    ticket = make_ticket()
    holder = agent_of(intake_app, ["network"])
    queue_in(intake_app, ticket, "network", agent_id=holder)
    message = client.post(f"/tickets/{ticket['id']}/messages", json={"body": "Here."}, headers=as_requester(ticket))
    message_id = message.get_json()["id"]
    for headers in (auth_header("agent", holder), auth_header("admin")):
        refused = upload(
            client, ticket, [("invoice.pdf.exe", b"MZ", "application/pdf")], headers, message_id=message_id
        )
        assert problem(refused, 422)["errors"]["message_id"] == [f"The ticket has no agent's reply {message_id!r}."]
    assert client.get(f"/tickets/{ticket['id']}/attachments", headers=as_requester(ticket)).get_json()["items"] == []


# --- the API: what an upload may be ------------------------------------------------------------


def test_a_file_of_10_mib_is_taken_and_one_byte_more_is_413_naming_it(client, make_ticket):
    ticket = make_ticket()
    exact = os.urandom(domain.ATTACHMENT_MAX_BYTES)
    assert upload(client, ticket, [("exact.bin", exact, "application/octet-stream")]).status_code == 201

    body = problem(upload(client, ticket, [("big one.bin", exact + b"!", "application/octet-stream")]), 413)

    assert "big one.bin" in body["detail"] and "10 MiB" in body["detail"]
    assert body["errors"]["file"]
    assert (
        len(client.get(f"/tickets/{ticket['id']}/attachments", headers=as_requester(ticket)).get_json()["items"]) == 1
    )


def test_files_over_25_mib_together_are_413_naming_the_one_that_tips_it_and_nothing_is_kept(client, make_ticket):
    ticket = make_ticket()
    part = os.urandom(8 * MIB + 512 * 1024)  # three of them: 25.5 MiB

    body = problem(upload(client, ticket, [(f"{n}.bin", part, "application/octet-stream") for n in "abc"]), 413)

    assert "c.bin" in body["detail"] and "25 MiB" in body["detail"]
    assert client.get(f"/tickets/{ticket['id']}/attachments", headers=as_requester(ticket)).get_json()["items"] == []


def test_a_body_over_the_upload_limit_is_413_before_it_is_read(client, make_ticket):
    ticket = make_ticket()
    response = client.post(
        f"/tickets/{ticket['id']}/attachments",
        data=b"x" * (27 * MIB),
        headers={**as_requester(ticket), "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert "26 MiB" in problem(response, 413)["detail"]
    # and the 1 MiB of every other route stays
    assert "1 MiB" in problem(client.post("/tickets", data=b"{" * (MIB + 1), headers=auth_header("portal"),
                                          content_type="application/json"), 413)["detail"]  # fmt: skip


def test_no_file_an_empty_file_and_unknown_parts_are_422(client, make_ticket):
    ticket = make_ticket()
    path = f"/tickets/{ticket['id']}/attachments"
    multipart = {"headers": as_requester(ticket), "content_type": "multipart/form-data"}

    assert "file" in problem(client.post(path, data={}, **multipart), 422)["errors"]
    assert "file" in problem(upload(client, ticket, [("empty.txt", b"", "text/plain")]), 422)["errors"]
    assert "file" in problem(client.post(path, data={"file": "not a file"}, **multipart), 422)["errors"]
    other = {"file": (io.BytesIO(b"x"), "a.txt"), "colour": "red"}
    assert "colour" in problem(client.post(path, data=other, **multipart), 422)["errors"]
    unknown = upload(client, ticket, [("a.txt", b"x", "text/plain")], message_id=unique("message"))
    assert "message_id" in problem(unknown, 422)["errors"]
    problem(client.post(path, json={"file": "x"}, headers=as_requester(ticket)), 400)
    for content_type in ("multipart/form-data", "multipart/form-data; boundary=x"):  # no boundary; another one
        garbled = client.post(
            path, data=b"garbage\x00\xff", headers={**as_requester(ticket), "Content-Type": content_type}
        )
        assert "file" in problem(garbled, 422)["errors"]
    assert client.get(path, headers=as_requester(ticket)).get_json()["items"] == []


def test_files_go_with_a_message_of_the_requester_and_not_with_an_agents_reply(client, make_ticket, intake_app):
    ticket = make_ticket()
    message = client.post(f"/tickets/{ticket['id']}/messages", json={"body": "Here."}, headers=as_requester(ticket))
    message_id = message.get_json()["id"]
    reply = {"reply_id": unique("reply"), "agent_id": "jane", "agent_name": "Jane", "body": "Hi.",
             "first_response": True}  # fmt: skip
    learn(intake_app, event_from("assignment", "ticket.replied", ticket["id"], reply))

    item = upload(client, ticket, [("a.png", PNG, "image/png")], message_id=message_id).get_json()["items"][0]
    to_reply = upload(client, ticket, [("a.png", PNG, "image/png")], message_id=reply["reply_id"])

    assert item["message_id"] == message_id
    assert "message_id" in problem(to_reply, 422)["errors"]
    by_admin = upload(client, ticket, [("b.png", PNG, "image/png")], auth_header("admin"), message_id=reply["reply_id"])
    assert by_admin.get_json()["items"][0]["message_id"] == reply["reply_id"]


# werkzeug stops reading at the 1,001st part and leaves the parts read so far to the garbage collector
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_more_parts_than_a_form_is_read_with_are_said_to_be_too_many_not_too_large(client, make_ticket):
    ticket = make_ticket()
    answer = upload(client, ticket, [(f"{n}.txt", b"x", "text/plain") for n in range(1001)])
    assert "more than 1,000 parts" in problem(answer, 413)["detail"]
    assert client.get(f"/tickets/{ticket['id']}/attachments", headers=as_requester(ticket)).get_json()["items"] == []


def test_a_closed_ticket_takes_no_files(client, make_ticket):
    ticket = make_ticket()
    client.post(f"/tickets/{ticket['id']}/close", headers=as_requester(ticket))
    problem(upload(client, ticket, [("a.txt", b"late", "text/plain")]), 409)


def test_the_same_idempotency_key_stores_the_files_once(client, make_ticket):
    ticket, key = make_ticket(), uuid.uuid4().hex
    files = [("a.txt", b"one", "text/plain"), ("b.txt", b"two", "text/plain")]
    headers = {**as_requester(ticket), "Idempotency-Key": key}

    first = upload(client, ticket, files, headers=headers)
    again = upload(client, ticket, files, headers=headers)

    assert (first.status_code, again.status_code) == (201, 200)  # a repeat, as POST /tickets answers one
    assert again.get_json() == first.get_json()
    listed = client.get(f"/tickets/{ticket['id']}/attachments", headers=as_requester(ticket)).get_json()["items"]
    assert listed == first.get_json()["items"]


@pytest.mark.parametrize(
    "other",
    [
        [("a.txt", b"one", "text/plain"), ("b.txt", b"TWO", "text/plain")],  # other bytes
        [("a.txt", b"one", "text/plain"), ("c.txt", b"two", "text/plain")],  # another name
        [("a.txt", b"one", "text/plain")],  # fewer files
        [("a.txt", b"one", "text/plain"), ("b.txt", b"two", "text/plain"), ("c.txt", b"3", "text/plain")],  # more
    ],
    ids=["bytes", "name", "fewer", "more"],
)
def test_the_same_idempotency_key_with_other_files_is_refused_never_dropped(client, make_ticket, other):
    ticket, key = make_ticket(), uuid.uuid4().hex
    headers = {**as_requester(ticket), "Idempotency-Key": key}
    first = upload(client, ticket, [("a.txt", b"one", "text/plain"), ("b.txt", b"two", "text/plain")], headers=headers)

    assert "other files" in problem(upload(client, ticket, other, headers=headers), 409)["detail"]
    listed = client.get(f"/tickets/{ticket['id']}/attachments", headers=as_requester(ticket)).get_json()["items"]
    assert listed == first.get_json()["items"]  # nothing of the refused upload stored
    fresh = upload(client, ticket, other, headers={**as_requester(ticket), "Idempotency-Key": uuid.uuid4().hex})
    assert fresh.status_code == 201  # sent again with a key of its own, they are stored


def test_an_upload_key_is_its_callers_own(client, make_ticket, intake_app):
    """The portal sends a requester's files under their message's id, which agents read in the thread: an agent who
    used that key first, with other files, must not make the requester's upload a 409."""
    ticket = make_ticket()
    holder = agent_of(intake_app, ["network"])
    queue_in(intake_app, ticket, "network", agent_id=holder)
    message = client.post(f"/tickets/{ticket['id']}/messages", json={"body": "Here."}, headers=as_requester(ticket))
    key, reply = message.get_json()["id"], {"message_id": reply_on(intake_app, ticket)}
    agents = {**auth_header("agent", holder), "Idempotency-Key": key}
    assert upload(client, ticket, [("x.txt", b"agent's", "text/plain")], agents, **reply).status_code == 201

    own = {**as_requester(ticket), "Idempotency-Key": key}
    mine = upload(client, ticket, [("log.txt", b"mine", "text/plain")], own, message_id=key)
    assert mine.status_code == 201, mine.get_json()
    again = upload(client, ticket, [("log.txt", b"mine", "text/plain")], own, message_id=key)
    assert again.status_code == 200 and again.get_json()["items"] == mine.get_json()["items"]  # the owner's repeat


# --- the API: downloads that cannot run in a browser ---------------------------------------------


def test_a_download_is_always_an_attachment_with_safe_headers(client, make_ticket):
    ticket = make_ticket()
    item = attach_one(client, ticket, "Résumé «final».pdf", PDF, "application/pdf")

    response = download(client, ticket, item)

    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "inline" not in disposition
    assert 'filename="Resume final.pdf"' in disposition  # the ASCII fallback
    assert f"filename*=UTF-8''{quote('Résumé «final».pdf', safe='')}" in disposition
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert "no-store" in response.headers["Cache-Control"]
    assert response.data == PDF


@pytest.mark.parametrize(
    ("name", "body", "declared", "served"),
    [
        ("pixel.png", PNG, "image/png", "image/png"),
        ("pixel.png", PNG, "text/html", "application/octet-stream"),  # a PNG declared as HTML
        ("page.html", HTML, "text/html", "application/octet-stream"),
        ("page.png", HTML, "image/png", "application/octet-stream"),  # HTML declared as a PNG
        ("page.txt", HTML, "text/plain", "text/plain; charset=utf-8"),  # shown as text, never as a page
        ("drawing.svg", SVG, "image/svg+xml", "application/octet-stream"),
        ("data.xml", b"<?xml version='1.0'?><a/>", "application/xml", "application/octet-stream"),
        ("run.js", b"alert(1)", "text/javascript", "application/octet-stream"),
        ("doc.pdf", PDF, "application/pdf", "application/pdf"),
        ("doc.pdf", b"not a pdf", "application/pdf", "application/octet-stream"),
        ("photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpg", "image/jpeg"),
        ("sheet.xlsx", b"PK\x03\x04" + b"\x00" * 26, "application/vnd.openxmlformats-officedocument.spreadsheetml"
         ".sheet", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("binary.txt", b"\x00\x01\x02", "text/plain", "application/octet-stream"),
    ],
)  # fmt: skip
def test_the_content_type_served_is_the_declared_one_only_when_the_bytes_agree(
    client, make_ticket, name, body, declared, served
):
    ticket = make_ticket()
    item = attach_one(client, ticket, name, body, declared)

    response = download(client, ticket, item)

    assert response.headers["Content-Type"] == served
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.data == body


def test_names_lose_their_folders_and_control_characters(client, make_ticket):
    ticket = make_ticket()
    item = attach_one(client, ticket, "../../evil\u202egnp.exe", PNG, "image/png")
    assert item["filename"] == "evilgnp.exe"
    assert 'filename="evilgnp.exe"' in download(client, ticket, item).headers["Content-Disposition"]


# --- a real server ----------------------------------------------------------------------------


@pytest.mark.slow
def test_under_gunicorn_a_huge_upload_is_refused_early_with_problem_json(spawn_api, intake_app, client, make_ticket):
    api = spawn_api("intake")
    ticket = make_ticket()
    url = f"{api.url}/tickets/{ticket['id']}/attachments"
    huge = b"x" * (40 * MIB)

    with_length = requests.post(url, files={"file": ("huge.bin", huge)}, headers=as_requester(ticket), timeout=30)

    def chunks():  # no Content-Length: the server stops reading at the limit
        for start in range(0, len(huge), MIB):
            yield huge[start : start + MIB]

    multipart = {**as_requester(ticket), "Content-Type": "multipart/form-data; boundary=b"}
    chunked = requests.post(url, data=chunks(), headers=multipart, timeout=30)
    for response in (with_length, chunked):
        assert response.status_code == 413, response.text[:300]
        assert response.headers["Content-Type"] == PROBLEM_JSON
    small = requests.post(url, files={"file": ("ok.txt", b"fine", "text/plain")}, headers=as_requester(ticket),
                          timeout=30)  # fmt: skip
    assert small.status_code == 201, small.text


@pytest.mark.slow
def test_under_gunicorn_a_client_reading_slowly_gets_the_whole_file(spawn_api, make_ticket):
    """The read limit of the api's connections (GUNICORN_READ_TIMEOUT, 1 s here) is on reading the request: the
    answer is written as slowly as the client reads it (a phone on a slow line took 8.2 of 9.4 MB, then nothing)."""
    api = spawn_api("intake", env={"WEB_CONCURRENCY": "1", "GUNICORN_READ_TIMEOUT": "1"})
    ticket = make_ticket()
    data = os.urandom(8 * MIB)
    url = f"{api.url}/tickets/{ticket['id']}/attachments"
    sent = requests.post(url, files={"file": ("big.bin", data)}, headers=as_requester(ticket), timeout=60)
    assert sent.status_code == 201, sent.text[:300]

    got = bytearray()
    item = sent.json()["items"][0]
    with requests.get(f"{url}/{item['id']}", headers=as_requester(ticket), stream=True, timeout=60) as answer:
        for n, chunk in enumerate(answer.iter_content(256 * 1024)):
            got += chunk
            if n % 4 == 0:
                time.sleep(0.5)  # about 2 MB a second: the server's writes wait on the client for seconds
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()


@pytest.mark.slow
def test_under_gunicorn_a_connection_that_sends_nothing_is_closed_quietly(spawn_api):
    """A browser's preconnect, a load balancer's TCP check: closed once GUNICORN_READ_TIMEOUT passes, without an
    error in the log; the next client is served."""
    api = spawn_api("intake", env={"WEB_CONCURRENCY": "1", "GUNICORN_READ_TIMEOUT": "1"})
    idle = socket.create_connection(("127.0.0.1", int(api.url.rsplit(":", 1)[1])), timeout=60)
    assert idle.recv(1) == b""  # closed by the server, however long the machine takes
    idle.close()
    assert requests.get(f"{api.url}/healthz", timeout=60).status_code == 200
    assert "Socket error" not in api.log_path.read_text() and "Traceback" not in api.log_path.read_text()
