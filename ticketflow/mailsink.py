"""A local SMTP sink for `ticketflow run`: every message lands in a folder as an .eml file.

`ticketflow mailsink` runs the server (one line printed per message); `ticketflow mail` reads the
latest messages back. Nothing is relayed anywhere: it is for trying the system on one machine.
"""

from __future__ import annotations

import email
import email.policy
import itertools
import signal
import threading
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller

from ticketflow import local

DEFAULT_DIR = local.REPO_ROOT / ".run" / "mail"
DEFAULT_PORT = 8025


class MailFolder:
    """aiosmtpd handler: writes each message as `<UTC timestamp>-<n>.eml` and prints one line."""

    def __init__(self, folder: Path, echo=print) -> None:
        self.folder, self.echo = Path(folder), echo
        self.folder.mkdir(parents=True, exist_ok=True)
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        with self._lock:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
            path = self.folder / f"{stamp}-{next(self._numbers)}.eml"
        path.write_bytes(envelope.content)
        message = _parse(envelope.content)
        recipients = ", ".join(envelope.rcpt_tos) or str(message["To"])
        self.echo(f"mail to {recipients}: {message['Subject'] or '(no subject)'}  [{path.name}]", flush=True)
        return "250 OK"


def start(host: str, port: int, folder: Path, echo=print) -> Controller:
    """The sink, listening in a background thread; call .stop() on the answer to end it."""
    controller = Controller(MailFolder(folder, echo), hostname=host, port=port)
    controller.start()
    return controller


def serve(host: str, port: int, folder: Path) -> int:
    """Run until SIGINT or SIGTERM (`ticketflow run` stops its processes with SIGTERM)."""
    if local.port_answers(host, port):
        print(f"ticketflow mailsink: {host}:{port} is taken; stop what listens there or pick --port", flush=True)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    controller = start(host, port, folder)
    print(f"SMTP sink on smtp://{host}:{port}; every message is saved in {folder}/*.eml", flush=True)
    try:
        stop.wait()
    finally:
        controller.stop()
    return 0


def latest(folder: Path, count: int) -> list[Path]:
    """The newest `count` .eml files, oldest first (names start with their UTC time)."""
    return sorted(Path(folder).glob("*.eml"), key=_order)[-count:] if count > 0 else []


def describe(path: Path) -> str:
    """From, To, Date, Subject and the plain-text body of one saved message."""
    message = _parse(path.read_bytes())
    lines = [f"== {path.name}"]
    lines += [f"{name}: {message[name]}" for name in ("From", "To", "Date", "Subject") if message[name]]
    part = message.get_body(preferencelist=("plain", "html"))
    lines += ["", part.get_content().rstrip() if part is not None else "(no text body)", ""]
    return "\n".join(lines)


def print_latest(folder: Path, count: int) -> int:
    paths = latest(folder, count)
    if not paths:
        print(f"no mail in {folder} yet (`make run` starts the sink; notify mails it as tickets move)")
        return 0
    for path in paths:
        print(describe(path))
    return 0


def _parse(content: bytes) -> EmailMessage:
    return email.message_from_bytes(content, policy=email.policy.default)


def _order(path: Path) -> tuple[str, int]:
    stamp, _, number = path.stem.rpartition("-")
    return (stamp, int(number)) if number.isdigit() else (path.stem, 0)
