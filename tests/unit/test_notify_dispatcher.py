"""The dispatcher's wake-ups: a finished send starts a pass only when a notification waited for a sender."""

from __future__ import annotations

import threading

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
