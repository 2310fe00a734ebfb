"""intake's `mail` process: an SMTP listener that an MTA relays to, and an IMAP poller when TICKETFLOW_IMAP_URL is set.

Both hand each mail to `inbox.receive`, which stores its effect through the outbox like every other write. The
listener answers 250 only once that returns; 451 when the store cannot be reached (the sending MTA keeps the mail
and tries again); 552 for a mail too big; 550 for an address this help desk does not take mail for. The poller marks
a mail seen only once it is stored.

Several mail processes may run at once, on several hosts or on one port of one host (SO_REUSEPORT): `receive`
gives one mail one effect however many of them see it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import parseaddr

from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session
from bson.errors import InvalidDocument
from pymongo.errors import PyMongoError

from services.intake import handlers, inbox
from services.intake.handlers import Intake
from shared.config import Settings, load_settings
from shared.runtime import configure_logging, wait_for

log = logging.getLogger(__name__)
STORE_TIMEOUT = "451 4.3.0 The help desk cannot store mail right now; please try again later"
RECEIVERS = 4  # mails stored at once by one process (each waits mostly on the database)
STOP_SECONDS = 50  # on SIGTERM, how long the mails being stored may take to be answered (k8s grace: 60 s)
GIVE_UP_AFTER = 5  # a polled mail's failed rounds, for a fault of its own, before it is left (and ...)
GIVE_UP_HOURS = 1.0  # ... the time since its first (IDLE's rounds may follow each other within seconds)


class LeanSMTP(SMTP):
    """aiosmtpd's SMTP with a mail's DATA gathered into one buffer, its lines counted.

    aiosmtpd (1.4.6) keeps each line of a mail as a bytearray of its own until the end of DATA: some 90 bytes a
    line whatever its length, so a mail within the size limit made of 11 million short lines took 1.9 GB before
    anything looked at it (a security review's find), and the stdlib's parser would then keep as much again. Here
    a line costs its bytes, and a mail of more than inbox.RAW_MAX_LINES lines is refused with 552 as a mail too
    large is (its data read to the end and dropped, as aiosmtpd does). Dot-stuffing, the size limit and the
    answers are aiosmtpd's own; then its DATA hook (the handler's handle_DATA) as aiosmtpd calls it.
    """

    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802 - aiosmtpd's name for the command's handler
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        data, problem = await self._read_data()
        if problem is not None:
            await self.push(problem)
            self._set_post_data_state()
            return
        self.envelope.content = self.envelope.original_content = bytes(data)
        del data[:]
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    async def _read_data(self) -> tuple[bytearray, str | None]:
        """The mail's bytes, dot-stuffing undone, up to the line of a lone dot; or the answer that refuses it."""
        data = bytearray()
        size = lines = line_length = 0
        problem = None
        at_line_start = True
        while self.transport is not None:
            try:
                line = await self._reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError as overrun:  # a line longer than the stream's limit: drained, dropped
                problem = problem or "500 Line too long (see RFC5321 4.5.3.1.6)"
                del data[:]
                line = await self._reader.read(overrun.consumed)
            if at_line_start and line == b".\r\n":
                break
            size += len(line)
            line_length += len(line)
            ends = line.endswith(b"\r\n")
            lines += ends
            if problem is None and self.data_size_limit and size > self.data_size_limit:
                problem = "552 Error: Too much mail data"
            elif problem is None and lines > inbox.RAW_MAX_LINES:
                problem = f"552 5.3.4 The mail has more than {inbox.RAW_MAX_LINES:,} lines"
            elif problem is None and line_length > self.line_length_limit:
                problem = "500 Line too long (see RFC5321 4.5.3.1.6)"
            if problem is not None:
                del data[:]
            else:
                data += line[1:] if at_line_start and line.startswith(b".") else line
            at_line_start = ends
            line_length = 0 if ends else line_length
        return data, problem


class InboundHandler:
    """aiosmtpd's handler: recipients checked as they come, each mail stored before it is answered."""

    def __init__(self, svc: Intake, executor: ThreadPoolExecutor) -> None:
        self.svc, self.executor = svc, executor
        self.in_flight = 0  # mails being stored, not yet answered

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, options) -> str:  # noqa: N802
        if not inbox.accepts(self.svc, address):
            return "550 5.1.1 This help desk takes no mail for that address"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.in_flight += 1
        try:
            return await self._store(envelope)
        finally:
            self.in_flight -= 1

    async def _store(self, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        sender = _address(envelope.mail_from or "")
        loop = asyncio.get_running_loop()
        try:
            outcome = await loop.run_in_executor(
                self.executor, inbox.receive, self.svc, raw, sender, list(envelope.rcpt_tos)
            )
        except inbox.MailRefused as refused:
            return f"{refused.code} 5.3.4 {refused.reason}"
        except PyMongoError as exc:
            log.warning("could not store a mail from %s: %r", sender or "<>", exc)
            return STORE_TIMEOUT
        except Exception:  # a fault of ours: the MTA keeps the mail, and the log says why
            log.exception("could not take a mail from %s", sender or "<>")
            return STORE_TIMEOUT
        return f"250 2.0.0 Stored: {outcome.kind}" + (f" #{outcome.number}" if outcome.number else "")


def _address(mail_from: str) -> str:
    """MAIL FROM's address; "" for the null sender `<>` of bounces."""
    return parseaddr(mail_from)[1].strip().lower() if mail_from.strip() not in ("", "<>") else ""


def imap_deliverer(svc: Intake, give_up_after: int = GIVE_UP_AFTER, give_up_hours: float = GIVE_UP_HOURS):
    """The poller's `deliver`: a mail refused for good is PermanentFailure (seen and flagged, not fetched again).

    So is a mail that failed every round for `give_up_hours` and at least `give_up_after` rounds, for a fault of its
    own: a record the store cannot take (bson's InvalidDocument, DocumentTooLarge) or a fault of ours on that mail
    (any error that is not the database's). Tried again every round, it would be read, parsed and logged for ever.
    It is recorded as refused on the admins' "Mail in" page, with the error's type, and left flagged in the
    mailbox; the log has the whole error. Such a record is not "received before": marked unseen again (once the
    fault is mended), the mail is taken as new. Any other database error (it cannot be reached, it refuses every
    write: credentials, a full disk) leaves the mail unseen however long it lasts.
    """
    from services.intake.imap import PermanentFailure

    failed: dict[str, tuple[int, float]] = {}  # a mail's SHA-256 -> (its failed rounds in a row, the first's time)

    def deliver(raw: bytes, envelope_sender: str) -> None:
        try:
            inbox.receive(svc, raw, envelope_sender, [])
        except inbox.MailRefused as refused:
            inbox.record_refused(svc, raw, envelope_sender, refused.reason)
            raise PermanentFailure(refused.reason) from None
        except Exception as exc:
            if not _the_mails_own(exc):
                raise
            key = hashlib.sha256(raw).hexdigest()
            if len(failed) >= 1000 and key not in failed:
                failed.clear()  # a bound: mails that failed and then went from the mailbox are counted no longer
            rounds, first = failed.get(key, (0, time.monotonic()))
            failed[key] = rounds + 1, first
            if rounds + 1 < give_up_after or time.monotonic() - first < give_up_hours * 3600:
                raise
            del failed[key]
            reason = f"It could not be stored in {rounds + 1} tries ({type(exc).__name__}; the log says more)."
            log.error("a polled mail from %s failed %d times: left flagged", envelope_sender or "<>", rounds + 1)
            try:
                inbox.record_refused(svc, raw, envelope_sender, reason, given_up=True)
            except Exception:  # its record too: the log and the flag in the mailbox are what is left
                log.exception("could not record the mail from %s as refused", envelope_sender or "<>")
            raise PermanentFailure(reason) from exc
        if failed:
            failed.pop(hashlib.sha256(raw).hexdigest(), None)

    return deliver


def _the_mails_own(exc: BaseException) -> bool:
    """A fault of this one mail (a record the store cannot take, a fault of ours on it), not of the database or the
    network, which the same mail would get through once mended."""
    if isinstance(exc, InvalidDocument):
        return True
    return not isinstance(exc, PyMongoError | OSError)


async def serve(svc: Intake, settings: Settings, stop: asyncio.Event) -> None:
    """Listen on TICKETFLOW_INBOUND_SMTP until `stop` is set; then finish the mails being stored."""
    host, _, port = settings.inbound_smtp.rpartition(":")
    executor = ThreadPoolExecutor(RECEIVERS, thread_name_prefix="mail-in")
    handler = InboundHandler(svc, executor)
    loop = asyncio.get_running_loop()

    def protocol() -> SMTP:
        return LeanSMTP(
            handler, data_size_limit=inbox.RAW_MAX_BYTES, enable_SMTPUTF8=True, decode_data=False,
            hostname="ticketflow", ident="ticketflow intake", loop=loop,
        )  # fmt: skip

    server = await loop.create_server(protocol, host=host.strip("[]"), port=int(port), reuse_port=True)
    log.info("mail in: listening for SMTP on %s", settings.inbound_smtp)
    try:
        await stop.wait()
    finally:
        server.close()  # no new connections; the mails being stored are stored and answered before the end
        deadline = loop.time() + STOP_SECONDS
        while handler.in_flight and loop.time() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)  # their answers written out
        await asyncio.to_thread(executor.shutdown, True)


def main() -> None:
    settings = load_settings()
    configure_logging(settings)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's: every SMTP command at INFO
    svc = handlers.bootstrap(settings)
    wait_for(svc.ensure_storage, "MongoDB")
    stopping = threading.Event()
    poller = None
    if settings.imap_url:
        from services.intake.imap import ImapPoller

        poller = ImapPoller(settings.imap_url, imap_deliverer(svc), poll_seconds=settings.imap_poll_seconds)
        threading.Thread(target=poller.run, args=(stopping,), name="imap-poller", daemon=True).start()

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await serve(svc, settings, stop)

    try:
        asyncio.run(run())
    finally:
        stopping.set()
        svc.flusher.drain(5.0)
        log.info("mail in: stopped")


if __name__ == "__main__":
    main()
