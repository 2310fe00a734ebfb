"""What the benchmarks measure besides time: the store's commands per phase, and every process's RSS.

Store calls: `serverStatus`'s `metrics.commands` (each command by name, counted by the server as it
receives it), read at a phase's start and end. FerretDB and MongoDB both answer it, so the embedded store
and a MONGO_URL are counted the same way, by the server, whatever client sent the command (no listener
in the services). The count is server-wide: on a MongoDB that others use, their commands count too.
Connection upkeep (hello, ping, the reads of serverStatus themselves...) is counted apart from the data
commands, since it grows with processes and seconds rather than with tickets.

RSS: VmRSS from /proc/<pid>/status of every process of each kind, every second while the phase runs;
the peak of the largest process of each kind.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable

LIMIT_MB = 100.0  # issue 16: every api and worker process stays under it
UPKEEP = frozenset(
    {"hello", "ismaster", "ping", "buildinfo", "endsessions", "serverstatus", "saslstart", "saslcontinue"}
)  # lower case: FerretDB counts `ismaster`, MongoDB `isMaster`


# --- the store's commands ---------------------------------------------------------------------------


def command_totals(server_status: dict) -> dict[str, int]:
    """Command name -> calls so far, from a serverStatus answer (MongoDB nests extra counters beside `total`)."""
    commands = (server_status.get("metrics") or {}).get("commands") or {}
    return {
        name: int(entry["total"]) for name, entry in commands.items() if isinstance(entry, dict) and "total" in entry
    }


def command_deltas(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Calls made between two readings, by command name; the names no call was made with left out."""
    return {name: count - before.get(name, 0) for name, count in after.items() if count > before.get(name, 0)}


def is_upkeep(command: str) -> bool:
    return command.lower() in UPKEEP


class StoreCommands:
    """Reads the store's command counters (one client of its own, closed by close())."""

    def __init__(self, mongo_url: str) -> None:
        from pymongo import MongoClient

        self.client = MongoClient(mongo_url, serverSelectionTimeoutMS=10000)
        self.label = "FerretDB" if "ferretdbVersion" in self.client.admin.command("serverStatus") else "MongoDB"

    def read(self) -> dict[str, int]:
        return command_totals(self.client.admin.command("serverStatus"))

    def close(self) -> None:
        self.client.close()


def print_store_calls(title: str, columns: dict[str, tuple[dict[str, int], int]], unit: str = "ticket") -> None:
    """One table: a row per data command, a column per (system, phase): calls per unit; totals below."""
    if not columns:
        return
    names = sorted(
        {name for calls, _ in columns.values() for name in calls if not is_upkeep(name)},
        key=lambda name: -max(calls.get(name, 0) / max(units, 1) for calls, units in columns.values()),
    )
    width = max(12, *(len(column) for column in columns))
    print()
    print(title)
    print(f"  {'command':<20}" + "".join(f" {column:>{width}}" for column in columns))

    def row(label: str, value: Callable[[dict[str, int], int], str]) -> None:
        print(f"  {label:<20}" + "".join(f" {value(calls, units):>{width}}" for calls, units in columns.values()))

    for name in names:
        row(name, lambda calls, units, name=name: f"{calls.get(name, 0) / max(units, 1):.2f}")
    row(f"total per {unit}", lambda calls, units: f"{data_calls(calls) / max(units, 1):.2f}")
    row("total calls", lambda calls, units: str(data_calls(calls)))
    row(f"{unit}s", lambda calls, units: str(units))
    row("upkeep calls", lambda calls, units: str(sum(n for name, n in calls.items() if is_upkeep(name))))


def data_calls(calls: dict[str, int]) -> int:
    """The calls of data commands (upkeep left out)."""
    return sum(count for name, count in calls.items() if not is_upkeep(name))


# --- the broker's queues: has the work of a phase ended? -------------------------------------------


def unacked_counts(namespace: str) -> dict[str, tuple[int, int]] | None:
    """Queue name -> (ready, unacked) of the namespace's queues from rabbitmqctl; None where it cannot run."""
    try:
        out = subprocess.run(
            ["rabbitmqctl", "-q", "list_queues", "name", "messages_ready", "messages_unacknowledged"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(f"{namespace}.") and parts[1].isdigit() and parts[2].isdigit():
            found[parts[0]] = (int(parts[1]), int(parts[2]))
    return found


def wait_queues_idle(namespace: str, until: float) -> bool | None:
    """Until `until`: wait for every queue of the namespace (dead letters aside) to be empty with nothing in
    hand, twice in a row (a publish may follow the email that completed a ticket). None: rabbitmqctl cannot
    run here (another machine's broker), so nothing was waited for."""
    quiet = 0
    while True:
        counts = unacked_counts(namespace)
        if counts is None:
            return None
        busy = any(ready or unacked for name, (ready, unacked) in counts.items() if not name.endswith(".dead"))
        quiet = 0 if busy else quiet + 1
        if quiet == 2:
            return True
        if time.time() >= until:
            return False
        time.sleep(0.5)


# --- processes: their CPU and memory ---------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads); 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (VmRSS); 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _parents() -> dict[int, int]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    found[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    return found


def process_tree(pids: list[int]) -> list[int]:
    """The processes and all their descendants (a gunicorn master and its workers)."""
    parents = _parents()
    found, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += [child for child, parent in parents.items() if parent == pid]
    return found


def kinds_of(roots: dict[str, list[int]]) -> dict[str, list[int]]:
    """Kind -> pids: a root process with children (a gunicorn master) is `<kind> master`, its children
    `<kind> workers`; a root without children keeps its kind."""
    kinds: dict[str, list[int]] = {}
    for kind, pids in roots.items():
        children = [pid for pid in process_tree(pids) if pid not in pids]
        if children:
            kinds.setdefault(f"{kind} master", []).extend(pids)
            kinds.setdefault(f"{kind} workers", []).extend(children)
        else:
            kinds.setdefault(kind, []).extend(pids)
    return kinds


class RssPeaks:
    """Every `every` s until stop(): the RSS of each process that `kinds()` names; the peak per kind."""

    def __init__(self, kinds: Callable[[], dict[str, list[int]]], every: float = 1.0) -> None:
        self.kinds, self.every = kinds, every
        self.peaks: dict[str, float] = {}
        self.samples = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> RssPeaks:
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> dict[str, float]:
        self._done.set()
        self._thread.join()
        self._sample()
        return dict(self.peaks)

    def _run(self) -> None:
        while not self._done.wait(self.every):
            self._sample()

    def _sample(self) -> None:
        try:
            kinds = self.kinds()
        except Exception:  # noqa: BLE001 - a process that went away mid-listing: the next second's sample
            return
        for kind, pids in kinds.items():
            largest = max((rss_mb(pid) for pid in pids), default=0.0)
            self.peaks[kind] = max(self.peaks.get(kind, 0.0), largest)
        self.samples += 1


def print_rss(title: str, columns: dict[str, dict[str, float]], limited: Callable[[str], bool]) -> bool:
    """A row per process kind, a column per phase: peak MB; PASS/FAIL against LIMIT_MB where `limited`.

    Returns whether every limited kind stayed under the limit."""
    kinds = sorted({kind for peaks in columns.values() for kind in peaks})
    if not kinds:
        return True
    width = max(10, *(len(column) for column in columns))
    header = "process (the largest of its kind)"
    label = max(len(header), *(len(kind) for kind in kinds))
    print()
    print(title)
    print(f"  {header:<{label}}" + "".join(f" {column:>{width}}" for column in columns) + "  verdict")
    passed = True
    for kind in kinds:
        values = [peaks.get(kind) for peaks in columns.values()]
        peak = max(value for value in values if value is not None)
        verdict = ""
        if limited(kind):
            verdict = "PASS" if peak < LIMIT_MB else "FAIL"
            passed = passed and peak < LIMIT_MB
        cells = "".join(f" {'' if value is None else f'{value:.1f}':>{width}}" for value in values)
        print(f"  {kind:<{label}}{cells}  {verdict}")
    print(f"  every limited process under {LIMIT_MB:.0f} MB: {'PASS' if passed else 'FAIL'}")
    return passed


def finish(cleanup: Callable[[], None], procs: list, log) -> None:
    """A benchmark's end, whatever happened: its topology and databases removed (`cleanup`), then its own
    processes stopped and its log closed even when that failed (a broker that does not answer would otherwise
    leave its FerretDB running)."""
    try:
        cleanup()
    finally:
        for proc in procs:
            proc.terminate()
        log.close()
