"""What assignment's worker runs on a clock: keeping each agent's count of open tickets exact."""

from __future__ import annotations

from services.assignment.handlers import Assignment


class Reconciler:
    """Compares each agent's count and counted tickets with the tickets; fixes a difference seen twice in a row.

    A difference seen once may be an assignment in flight (the slot is reserved before the ticket
    is saved); one that lasts across two runs is what a process that died in between left.
    """

    def __init__(self, svc: Assignment) -> None:
        self.svc, self.suspects = svc, {}

    def run(self) -> int:
        fixed, seen = 0, {}
        owned, held = self.svc.tickets.open_by_agent(), self.svc.agents.held()
        for agent in self.svc.agents.all():
            truth, counted = owned.get(agent["id"], []), held.get(agent["id"], [])
            if counted == truth and agent["open_tickets"] == len(truth):
                continue
            key = (tuple(counted), agent["open_tickets"], tuple(truth))
            if self.suspects.get(agent["id"]) == key and self.svc.agents.set_open(agent, counted, truth):
                fixed += 1
            else:
                seen[agent["id"]] = key
        self.suspects = seen
        return fixed
