"""Who consumes what: every service's queue and the event types bound to it.

Publishers declare the whole topology when they connect, so an event is never published before
the queues of the services that consume it exist (the mandatory flag alone only proves that some
queue took it). Each service's worker binds exactly the types it has handlers for; a unit test
keeps the two in step.
"""

from __future__ import annotations

from shared.events import EVENT_TYPES

SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    "intake": EVENT_TYPES,  # every event of every ticket goes on its timeline
}
