"""What assignment's worker runs on a clock: keeping each agent's count of open tickets exact, and handing back
the tickets an agent still holds in a team it left (what its change could not: more than its bound, a ticket
changing too fast, a fault, a process that died)."""

from __future__ import annotations

from services.assignment.handlers import Assignment, hand_back

HAND_BACK_PER_RUN = 200  # tickets a run hands back from agents who left their teams (the rest: the next runs)


class Reconciler:
    """Compares each agent's count and counted tickets with the tickets; fixes a difference seen twice in a row.
    First hands back the open tickets an agent holds in teams it is not in (`hand_back`), up to HAND_BACK_PER_RUN
    a run (agents in id order); an agent that handed some back has its count checked from the next run on.

    A difference seen once may be an assignment in flight (the slot is reserved before the ticket
    is saved); one that lasts across two runs is what a process that died in between left.
    """

    def __init__(self, svc: Assignment) -> None:
        self.svc, self.suspects = svc, {}

    def run(self) -> int:
        fixed, seen = 0, {}
        owned, held = self.svc.tickets.open_by_agent(), self.svc.agents.held()
        left = HAND_BACK_PER_RUN
        for agent in self.svc.agents.all():
            tickets = owned.get(agent["id"], {})
            if left > 0 and any(team not in agent["teams"] for team in tickets.values()):
                moved = hand_back(self.svc, agent["id"], left)
                left -= moved
                if moved:
                    continue  # its count is checked at the next run, against what is left with it
            truth, counted = sorted(tickets), held.get(agent["id"], [])
            if counted == truth and agent["open_tickets"] == len(truth):
                continue
            key = (tuple(counted), agent["open_tickets"], tuple(truth))
            if self.suspects.get(agent["id"]) == key and self.svc.agents.set_open(agent, counted, truth):
                fixed += 1
            else:
                seen[agent["id"]] = key
        self.suspects = seen
        return fixed
