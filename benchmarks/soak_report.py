"""The soak's figures: stage latencies per minute, the printed summary and the figure (benchmarks/soak.py).

    .venv/bin/python benchmarks/soak_report.py [docs/soak.json]

redraws the figure (the .png beside the .json) and prints the summary from a soak's data alone.
Needs matplotlib for the figure: `pip install -e '.[bench]'`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.e2e import OTHER, percentile  # noqa: E402

# (action, the email it causes, what the stage is called); the recipient the email must go to
STAGES = [
    ("create", "receipt", "POST /tickets -> receipt email"),
    ("create", "assigned", "POST /tickets -> assignment email"),
    ("reply", "replied", "agent reply -> email to requester"),
    ("message", "message", "requester message -> email to agent"),
    ("resolve", "resolved", "resolve -> email to requester"),
    ("reopen", "reopened", "reopen -> email to agent"),
]
TO_REQUESTER = {"receipt", "replied", "resolved"}
NOT_SERVICES = ("ferretdb", "rabbitmq")


def _figures(values: list[float]) -> dict:
    return {"n": len(values), "p50": round(percentile(values, 50), 1), "p95": round(percentile(values, 95), 1),
            "p99": round(percentile(values, 99), 1)} if values else {"n": 0}  # fmt: skip


def minute_stages(tickets: list, emails: list, answers: list, emails_of: dict) -> tuple[list[dict], dict]:
    """Per minute (of the action), API answer times and each stage's latency in ms; totals and checks.

    tickets: (number, requester, agent, [(action, at)]); emails: (number, to, kind, at); answers: (action,
    at, ms, ok); times in seconds from the start. The n-th action that causes an email kind on a ticket is
    paired with the n-th email of that kind: unpaired actions are missing emails, unpaired emails extra ones.
    """
    by_ticket: dict[int, dict[str, list[tuple[float, str]]]] = {}
    for number, to, kind, at in emails:
        by_ticket.setdefault(number, {}).setdefault(kind, []).append((at, to))
    names = {(action, kind): name for action, kind, name in STAGES}
    stages: dict[int, dict[str, list[float]]] = {}
    missing: dict[str, int] = {}
    extra: dict[str, int] = {}
    wrong_recipient = 0
    for number, requester, agent, actions in tickets:
        received = by_ticket.get(number, {})
        kinds = {kind for action, _ in actions for kind in emails_of.get(action, ())}
        for kind in kinds:
            causes = sorted((at, action) for action, at in actions if kind in emails_of.get(action, ()))
            arrived = sorted(received.get(kind, []))
            if len(arrived) > len(causes):
                extra[kind] = extra.get(kind, 0) + len(arrived) - len(causes)
            for (at, action), (arrival, to) in zip(causes, arrived, strict=False):
                wrong_recipient += to != (requester if kind in TO_REQUESTER else f"{agent}@example.com")
                if (action, kind) in names:
                    stages.setdefault(int(at // 60), {}).setdefault(names[(action, kind)], []).append(
                        1000 * (arrival - at)
                    )
            for _, action in causes[len(arrived) :]:
                key = names.get((action, kind), f"{action} -> {kind} email")
                missing[key] = missing.get(key, 0) + 1
    apis: dict[int, dict[str, list]] = {}
    for action, at, ms, good in answers:
        apis.setdefault(int(at // 60), {}).setdefault(action, []).append((ms, good))
    minutes = []
    for minute in sorted(set(stages) | set(apis)):
        api = {action: {**_figures([ms for ms, good in found if good]), "errors": sum(not g for _, g in found)}
               for action, found in sorted(apis.get(minute, {}).items())}  # fmt: skip
        found = stages.get(minute, {})
        minutes.append({"minute": minute, "api": api, "stages": {name: _figures(v) for name, v in found.items()}})
    overall = {name: _figures([v for m in stages.values() for v in m.get(name, [])]) for _, _, name in STAGES}
    api_overall = {action: _figures([ms for m in apis.values() for ms, good in m.get(action, []) if good])
                   for action in emails_of}  # fmt: skip
    checks = {"missing_emails": missing, "extra_emails": extra, "wrong_recipient": wrong_recipient,
              "stages": overall, "api": api_overall}  # fmt: skip
    return minutes, checks


# --- the summary ------------------------------------------------------------------------------------


def _at(samples: list[dict], seconds: float) -> dict:
    """The sample nearest to `seconds` after the start."""
    return min(samples, key=lambda sample: abs(sample["t"] - seconds))


def summarize(data: dict) -> str:
    run, checks, samples = data["run"], data["checks"], data["samples"]
    loads = [s["load"][0] for s in samples]
    lines = [
        f"soak: {run['rate']:g} tickets/s for {run['minutes']:g} min on {run['cores']} cores; {run['tickets']} "
        f"tickets, {run['emails']} emails; load average {min(loads):.1f} .. {max(loads):.1f}",
    ]
    first, last = _at(samples, 60), samples[-1]
    lines.append(f"RSS, MB: after minute 1 ({first['t'] / 60:.1f} min) -> at the end ({last['t'] / 60:.1f} min); peak")
    after = [s for s in samples if s["t"] >= first["t"]]
    for name in sorted(last["rss_mb"], key=lambda n: (n in NOT_SERVICES, n)):
        start, end = first["rss_mb"].get(name, 0.0), last["rss_mb"][name]
        change = f"{100 * (end - start) / start:+6.1f} %" if start else "   n/a"
        peak = max(s["rss_mb"].get(name, 0.0) for s in after)
        note = "  (the whole broker: other namespaces too)" if name == "rabbitmq" else ""
        lines.append(
            f"  {name:<18} {start:7.1f} -> {end:7.1f}  {end - start:+6.1f} MB {change}  peak {peak:7.1f}{note}"
        )
    services = [n for n in last["rss_mb"] if n not in NOT_SERVICES]
    total_start = sum(first["rss_mb"].get(n, 0.0) for n in services)
    total_end = sum(last["rss_mb"][n] for n in services)
    lines.append(
        f"  {'all services':<18} {total_start:7.1f} -> {total_end:7.1f}  {total_end - total_start:+6.1f} MB "
        f"{100 * (total_end - total_start) / max(total_start, 1e-9):+6.1f} %"
    )
    lines.append(
        "queues: max ready (every 10 s), max ready + unacked (each minute), max retrying, dead letters at the end"
    )
    for service in last["queues"]:
        ready = max(s["queues"][service]["ready"] or 0 for s in samples)
        both = [
            (q["ready"] or 0) + q["unacked"] for s in samples if (q := s["queues"][service]).get("unacked") is not None
        ]
        retrying = max(s["queues"][service]["retrying"] or 0 for s in samples)
        dead = last["queues"][service]["dead"]
        lines.append(
            f"  {service:<12} ready {ready:5d}  ready + unacked {max(both) if both else 'n/a':>5}  "
            f"retrying {retrying:4d}  dead {dead}"
        )
    dead = sum(q["dead"] or 0 for q in last["queues"].values())
    lines.append(f"dead-lettered: {dead} ({'as it must be' if dead == 0 else 'MUST BE 0'})")
    lines.append("latency, ms: p50 / p95 / p99 over the run; p95's range over the minutes")
    for action, figures in checks["api"].items():
        if figures["n"]:
            lines.append(f"  {'answer to ' + action:<40} {figures['p50']:8.1f} / {figures['p95']:8.1f} / "
                         f"{figures['p99']:8.1f}  (n {figures['n']})")  # fmt: skip
    for _, _, name in STAGES:
        figures = checks["stages"][name]
        if figures["n"]:
            per_minute = [m["stages"][name]["p95"] for m in data["minutes"] if m["stages"].get(name, {}).get("n")]
            lines.append(
                f"  {name:<40} {figures['p50']:8.1f} / {figures['p95']:8.1f} / {figures['p99']:8.1f}  "
                f"(n {figures['n']}; p95 by minute {min(per_minute):.0f} .. {max(per_minute):.0f})"
            )
    if cpu := data.get("cpu"):
        used, tickets = cpu["seconds"], max(run["tickets"], 1)
        mine = {name: seconds for name, seconds in used.items() if name != OTHER}
        parts = ", ".join(f"{name} {1000 * s / tickets:.0f}" for name, s in sorted(mine.items(), key=lambda kv: -kv[1]))
        total, others = 1000 * sum(mine.values()) / tickets, used.get(OTHER, 0) / cpu["wall_s"]
        lines.append(
            f"CPU, ms per ticket (from the start to the end of the drain, {cpu['wall_s']:.0f} s): {total:.0f} in all: "
            f"{parts}; other processes on the machine meanwhile: {others:.2f} cores"
        )
    errors = {kind: found["count"] for kind, found in checks["errors"].items()}
    lines.append(
        f"checks: errors {errors or 0}; missing emails {checks['missing_emails'] or 0}; extra emails "
        f"{checks['extra_emails'] or 0}; wrong recipient {checks['wrong_recipient']}; notes sent out "
        f"{checks['leaked_notes']}; unrecognised emails {checks['unrecognised_emails']}; actions that waited for "
        f"the assignment {checks['deferred']}, gave up {checks['given_up']}; tickets not posted in time (the "
        f"generator fell behind) {checks.get('unsent', 0)}; steps dropped at the end of the run "
        f"{checks.get('dropped', 0)}"
    )
    for kind, found in checks["errors"].items():
        lines.append(f"  first {kind} error: {found['first']}")
    return "\n".join(lines)


# --- the figure -------------------------------------------------------------------------------------


def draw(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples, run = data["samples"], data["run"]
    minutes = [s["t"] / 60 for s in samples]
    fig, axes = plt.subplots(4, 1, figsize=(11, 15), sharex=True, constrained_layout=True)
    fig.suptitle(
        f"ticketflow soak: {run['rate']:g} tickets/s for {run['minutes']:g} min, one process of each "
        f"({run['tickets']} tickets, {run['emails']} emails; {run['cores']} cores)"
    )
    names = sorted(samples[-1]["rss_mb"])
    colours = plt.get_cmap("tab20").colors
    ax = axes[0]
    services = sorted({name.split()[0] for name in names if name not in NOT_SERVICES})
    for name in (n for n in names if n not in NOT_SERVICES):
        style = "-" if name.endswith("api") else "--" if name.endswith("worker") else ":"
        colour = plt.get_cmap("tab10").colors[services.index(name.split()[0]) % 10]  # one colour a service
        ax.plot(minutes, [s["rss_mb"].get(name, 0) for s in samples], style, color=colour, label=name)
    ax.set_ylabel("RSS, MB")
    ax.set_title("memory of each service process (api, solid: gunicorn master + 2 workers; worker, dashed)")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    ax.set_ylim(bottom=0)
    ax = axes[1]
    for name, colour in zip(NOT_SERVICES, ("tab:brown", "tab:gray"), strict=True):
        if name in names:
            label = f"{name} (whole broker)" if name == "rabbitmq" else name
            ax.plot(minutes, [s["rss_mb"].get(name, 0) for s in samples], color=colour, label=label)
    ax.set_ylabel("RSS, MB")
    ax.set_title("memory of the stores")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    ax.set_ylim(bottom=0)
    ax = axes[2]
    for i, service in enumerate(samples[-1]["queues"]):
        colour = colours[2 * i]
        ax.plot(minutes, [s["queues"][service]["ready"] or 0 for s in samples], color=colour, label=f"{service} ready")
        marked = [(s["t"] / 60, (q["ready"] or 0) + q["unacked"]) for s in samples
                  if (q := s["queues"][service]).get("unacked") is not None]  # fmt: skip
        if marked:
            ax.plot(*zip(*marked, strict=True), "o", color=colour, label=f"{service} ready + unacked", markersize=4)
    ax.plot(minutes, [sum(q["dead"] or 0 for q in s["queues"].values()) for s in samples], "k--", label="dead letters")
    ax.set_ylabel("messages")
    ax.set_title("queue depths (lines every 10 s; dots each minute, with the unacked)")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    ax.set_ylim(bottom=0)
    ax = axes[3]
    stage_names = ["answer to create", *[name for _, _, name in STAGES]]
    for i, name in enumerate(stage_names):
        points = []
        for minute in data["minutes"]:
            found = minute["api"].get("create") if name == "answer to create" else minute["stages"].get(name)
            if found and found.get("n"):
                points.append((minute["minute"] + 0.5, found["p50"], found["p95"]))
        if points:
            x, p50, p95 = zip(*points, strict=True)
            label = "POST /tickets answered" if name == "answer to create" else name
            ax.plot(x, p50, "-o", color=colours[2 * i], label=f"{label}, p50", markersize=3)
            ax.plot(x, p95, "--", color=colours[2 * i + 1], label="p95")
    ax.set_yscale("log")
    ax.set_ylabel("ms (log)")
    ax.set_xlabel("minutes since the first ticket")
    ax.set_title("latency per minute of the action: p50 (solid) and p95 (dashed)")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    for ax in axes:
        ax.axvline(run["minutes"], color="k", linestyle=":", linewidth=0.8)
        ax.grid(True, alpha=0.3)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "soak.json")
    data = json.loads(path.read_text())
    draw(data, path.with_suffix(".png"))
    print(summarize(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
