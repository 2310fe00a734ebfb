"""Files on tickets, through intake: what a form's file field brought, sending it, listing and passing one on.

Files go to intake (`POST /tickets/{id}/attachments`) once the ticket or message they come with exists, with
the acting person's token; a download streams from intake with intake's own safe headers kept (always an
attachment, a type checked against the bytes, a sandbox CSP). Refusals come back as the client's `Refused`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO

import requests

from services.portal import domain
from services.portal.client import Actor, Services, path_id
from shared.schemas import named_files

# intake's headers a download keeps on its way through the portal
PASSED_ON = (
    "Content-Type",
    "Content-Length",
    "Content-Disposition",
    "Content-Security-Policy",
    "X-Content-Type-Options",
    "Cache-Control",
)


@dataclass(frozen=True)
class Chosen:
    """A file a person chose in a form: its name and type as the browser gave them, its bytes (not read yet)."""

    name: str
    content_type: str
    stream: IO[bytes]
    size: int


def chosen(parts: list) -> list[Chosen]:
    """The files of a form's file field (werkzeug FileStorage parts); an empty field sends one part without a name."""
    files = []
    for part in parts:
        if not part.filename:
            continue
        part.stream.seek(0, 2)  # to the end: the size without reading the file into memory
        size = part.stream.tell()
        part.stream.seek(0)
        files.append(Chosen(part.filename, part.mimetype or "application/octet-stream", part.stream, size))
    return files


def named(files: list[Chosen]) -> list[str]:
    """The names the files will be stored under, for the message or reply they go with (its emails name them)."""
    return named_files(file.name for file in files)


def problems(files: list[Chosen]) -> dict[str, list[str]]:
    """Field errors for the file field (empty: the files will do)."""
    found = domain.file_problems([(file.name, file.size) for file in files])
    return {"files": found} if found else {}


def send(
    services: Services,
    actor: Actor,
    ticket_id: str,
    files: list[Chosen],
    message_id: str | None,
    key: str,
    request_id: str | None,
) -> list[dict]:
    """Attach the files to the ticket (with message_id, to that message); the same key again stores nothing new."""
    if not files:
        return []
    parts = [("file", (file.name, file.stream, file.content_type)) for file in files]
    answer = services.call(
        "intake",
        "POST",
        f"/tickets/{path_id(ticket_id)}/attachments",
        actor,
        files=parts,
        data={"message_id": message_id} if message_id else None,
        headers={"Idempotency-Key": key},
        request_id=request_id,
    )
    return answer["items"]


def listed(services: Services, actor: Actor, ticket_id: str) -> list[dict]:
    return services.get("intake", f"/tickets/{path_id(ticket_id)}/attachments", actor)["items"]


def fetch(
    services: Services, actor: Actor, ticket_id: str, attachment_id: str, request_id: str | None
) -> requests.Response:
    """intake's answer for the file, its bytes not read yet (the caller streams them on, then closes it)."""
    path = f"/tickets/{path_id(ticket_id)}/attachments/{path_id(attachment_id)}"
    return services.stream("intake", path, actor, request_id=request_id)
