"""The dispatcher's wake-ups: a finished send starts a pass only when a notification waited for a sender."""

from __future__ import annotations

import threading

import pytest

from services.notify.timers import Dispatcher


def _dispatcher() -> tuple[Dispatcher, threading.Event]:
    wakeup = threading.Event()
    return Dispatcher(None, wakeup, senders=1), wakeup


def test_a_finished_send_that_nothing_waited_for_wakes_no_pass():
    dispatcher, wakeup = _dispatcher()
    try:
        assert dispatcher._may_start("a", "smtp")
        dispatcher._finished("a", "smtp")
        assert not wakeup.is_set()  # the next pass comes when a notification is recorded or falls due
    finally:
        dispatcher.close()


def test_a_finished_send_wakes_a_pass_once_for_what_waited_for_a_sender():
    dispatcher, wakeup = _dispatcher()
    try:
        assert dispatcher._may_start("a", "smtp")
        assert not dispatcher._may_start("b", "smtp")  # the only sender is busy: b waits
        dispatcher._finished("a", "smtp")
        assert wakeup.is_set()
        wakeup.clear()
        assert dispatcher._may_start("b", "smtp")
        dispatcher._finished("b", "smtp")
        assert not wakeup.is_set()  # nothing waited this time
    finally:
        dispatcher.close()


@pytest.mark.parametrize(("waited", "jumps_ahead"), [(10.0, False), (1.0, True)], ids=["overdue", "just-due"])
def test_a_new_notification_waits_behind_one_overdue_for_a_sender(waited, jumps_ahead):
    """One due for longer than OVERDUE (5 s) and left waiting by a pass goes first; one just due does not stop
    the hand-off (its pass takes it at the next free sender)."""
    from datetime import timedelta
    from types import SimpleNamespace

    from services.notify.domain import Notification
    from shared.clock import now
    from shared.config import load_settings

    def record(ticket: str, waited: float = 10.0) -> Notification:
        at = now() - timedelta(seconds=waited)
        return Notification(f"n-{ticket}", f"e-{ticket}", "ticket.created", ticket, "email", f"{ticket}@example.com",
                            "s", "b", at, next_attempt_at=at)  # fmt: skip

    old = record("t-old", waited)
    due = [old]
    svc = SimpleNamespace(settings=load_settings({"TICKETFLOW_NAMESPACE": "unit"}),
                          notifications=SimpleNamespace(due=lambda until, limit: list(due)))  # fmt: skip
    wakeup = threading.Event()
    dispatcher = Dispatcher(svc, wakeup, senders=1)
    try:
        assert dispatcher._may_start("busy", "smtp")  # the only sender is busy
        dispatcher.run_once()  # the old one stays due, waiting for it
        dispatcher._finished("busy", "smtp")  # the sender is free: the old one's pass is woken...
        assert wakeup.is_set()
        newer = record("t-newer", 0.0)
        assert dispatcher.take(newer) is jumps_ahead  # overdue: a new one is stored due behind it
        if jumps_ahead:
            dispatcher.taken(newer, stored=False)
        due.clear()  # a later pass took the old one (here: found none due)
        dispatcher.run_once()
        new = record("t-new")
        assert dispatcher.take(new) and new.next_attempt_at > now()  # claimed for the free sender
        dispatcher.taken(new, stored=False)  # (stored already: let be) the sender is free again
        assert dispatcher._may_start("next", "smtp")
    finally:
        dispatcher.close()


def test_a_pass_whose_send_is_over_before_the_pass_is_goes_on():
    """A sender may finish (next_attempt_at None: sent) before the pass that started it has looked at the rest."""
    from datetime import timedelta
    from types import SimpleNamespace

    from services.notify.domain import Notification
    from shared.clock import now

    at = now() - timedelta(seconds=1)
    due = [Notification(f"n{i}", f"e{i}", "ticket.created", "t", "email", "a@example.com", "s", "b", at,
                        next_attempt_at=at + timedelta(seconds=2 * i)) for i in range(2)]  # fmt: skip
    svc = SimpleNamespace(notifications=SimpleNamespace(due=lambda until, limit: list(due)))

    class SentAtOnce(Dispatcher):
        def _start(self, record: Notification) -> None:
            record.next_attempt_at = None  # claimed, sent and stored by the sender already
            self._finished(record.id, record.endpoint)

    dispatcher = SentAtOnce(svc, threading.Event(), senders=1)
    try:
        assert dispatcher.run_once() > 0  # the seconds until the second one falls due (about one)
        assert due[0].next_attempt_at is None
    finally:
        dispatcher.close()


def test_emails_are_sent_while_a_dead_webhook_s_backlog_fills_the_soonest_due(monkeypatch):
    """The fault tester's find: a webhook whose host never answers had 32 notifications due before any email; its
    senders were busy (half of them at most work for one endpoint), so a pass started nothing and the emails
    waited 19 minutes. The pass now reads again for each other endpoint, the SMTP server's first."""
    from datetime import timedelta
    from types import SimpleNamespace

    from services.notify import timers
    from services.notify.domain import Notification
    from shared.clock import now
    from shared.config import load_settings

    def record(n: int, endpoint: str) -> Notification:
        at = now() - timedelta(seconds=60 - n)
        channel = "email" if endpoint == "smtp" else "webhook"
        return Notification(f"n-{n}", f"e-{n}", "ticket.created", f"t-{n}", channel, "someone", "s", "b", at,
                            endpoint=endpoint, next_attempt_at=at)  # fmt: skip

    pending = [record(n, "dead.example") for n in range(20)] + [record(30, "smtp"), record(31, "ok.example")]

    def due(until, limit, endpoint=None):
        found = [r for r in pending if r.next_attempt_at <= until and endpoint in (None, r.endpoint)]
        return sorted(found, key=lambda r: r.next_attempt_at)[:limit]

    webhooks = [{"url": "https://dead.example/hook"}, {"url": "https://ok.example/hook"}]
    svc = SimpleNamespace(
        settings=load_settings({"TICKETFLOW_NAMESPACE": "unit"}),
        notifications=SimpleNamespace(due=due),
        webhooks=SimpleNamespace(all=lambda: webhooks),
    )
    sent, release = [], threading.Event()
    monkeypatch.setattr(timers, "claim", lambda svc, notification_id, record: record)
    monkeypatch.setattr(timers, "send", lambda svc, record: (sent.append(record.id), release.wait(5)))
    dispatcher = Dispatcher(svc, threading.Event(), senders=4)  # 2 at most for one endpoint
    try:
        dispatcher.run_once()
        deadline = now() + timedelta(seconds=5)
        while len(sent) < 4 and now() < deadline:
            threading.Event().wait(0.01)
        assert sorted(sent) == ["n-0", "n-1", "n-30", "n-31"]  # two for the dead host, and the others' at once
        assert dispatcher.take(record(40, "smtp")) is False  # every sender busy
        assert "smtp" not in dispatcher._waiting and "dead.example" in dispatcher._waiting
    finally:
        release.set()
        dispatcher.close()
