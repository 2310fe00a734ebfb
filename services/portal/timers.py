"""What the portal's worker runs on a clock: check-status links, welcome emails, links to choose a new password and
notices about passwords, forgetting what expired."""

from __future__ import annotations

from datetime import timedelta

from services.portal import domain, mailing, passwords
from services.portal.admin.welcome import send_welcome
from services.portal.handlers import Portal, answer_status_request
from shared.clock import now

MAIL_INTERVAL = 1.0  # seconds between looks for emails to send


def answer_requests(svc: Portal) -> int:
    return mailing.work(svc, "status_requests", answer_status_request)


def send_welcomes(svc: Portal) -> int:
    return mailing.work(svc, "welcome_emails", send_welcome)


def send_resets(svc: Portal) -> int:
    return mailing.work(svc, "password_resets", passwords.send_reset)


def send_account_notices(svc: Portal) -> int:
    return mailing.work(svc, "account_notices", passwords.send_notice)


def purge(svc: Portal) -> None:
    """Expired sessions, links and rate windows, stale presence, jobs done a day ago."""
    svc.store.purge(
        now(),
        presence_before=now() - timedelta(seconds=domain.PRESENCE_SECONDS * 10),
        requests_before=now() - timedelta(days=1),
    )
