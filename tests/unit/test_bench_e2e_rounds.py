"""benchmarks/e2e.py --rounds: each round's ratios, ticketflow against the bare pipeline run beside it, and medians."""

from __future__ import annotations

import pytest

from benchmarks.e2e import OTHER, Phase, Result, report_rounds


def _result(system: str, phase: str, cpu: float, capacity: float = 0.0, latency_ms: list[float] | None = None):
    return Result(
        phase=Phase(phase, system),
        completed=100,
        throughput=capacity,
        everything=100,
        capacity=capacity,
        post_ms=[],
        latency_ms=latency_ms or [],
        drain_s=0.0,
        all_done_s=0.0,
        failed_checks=0,
        cpu_ms={"ferretdb": cpu / 2, "workers": cpu / 2, OTHER: 500.0},  # others' CPU is never counted
        other_cores=0.5,
        consumers={},
        hops={},
        store_calls={},
        drained=True,
        rss_mb={},
    )


def _round(tf_steady: float, bare_steady: float, tf_max: float, bare_max: float, tf_rate: float, bare_rate: float):
    return [
        _result("ticketflow", "steady", tf_steady, latency_ms=[30.0, 40.0, 50.0]),
        _result("ticketflow", "max", tf_max, capacity=tf_rate),
        _result("bare", "steady", bare_steady),
        _result("bare", "max", bare_max, capacity=bare_rate),
    ]


class Args:
    rate = 20.0


def test_each_round_is_a_pair_and_the_medians_are_of_the_pairs(capsys: pytest.CaptureFixture[str]) -> None:
    rounds = [
        _round(80, 50, 70, 50, 24, 30),  # 1.60x, 1.40x, 0.80
        _round(60, 50, 66, 60, 27, 30),  # 1.20x, 1.10x, 0.90
        _round(90, 60, 75, 50, 21, 30),  # 1.50x, 1.50x, 0.70
    ]
    report_rounds(rounds, Args())
    out = capsys.readouterr().out
    assert "80.0 / 50.0 = 1.60x" in out and "60.0 / 50.0 = 1.20x" in out and "90.0 / 60.0 = 1.50x" in out
    assert "24.0 / 30.0 = 0.80" in out and "40.0 ms" in out
    assert "CPU a ticket 1.50x (from 1.20 to 1.60) at 20/s, 1.40x (from 1.10 to 1.50) as fast as it goes" in out
    assert "all done 0.80 (from 0.70 to 0.90)" in out
    assert "email p50 40.00 ms (from 40.00 to 40.00)" in out


def test_a_round_without_its_bare_run_has_no_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    rounds = [_round(80, 50, 70, 50, 24, 30), [_result("ticketflow", "steady", 70), _result("ticketflow", "max", 70)]]
    report_rounds(rounds, Args())
    out = capsys.readouterr().out
    assert "n/a" in out
    assert "CPU a ticket 1.60x (from 1.60 to 1.60) at 20/s" in out
