"""bench/mql_latency.py's argument parsing and pure helpers (no servers, no database)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import loadgen  # noqa: E402
import mql_latency as ml  # noqa: E402


def test_numeric_and_max_rates_keep_their_order() -> None:
    assert ml.parse_rates("0,50, 100,max") == (["0", "50", "100", "max"], "")
    assert ml.parse_rates("2.5") == (["2.5"], "")


def test_percent_rates_move_or_add_the_max_phase_first() -> None:
    assert ml.parse_rates("max,0,25%") == (["max", "0", "25%"], "")
    labels, note = ml.parse_rates("0,25%,max")
    assert labels == ["max", "0", "25%"] and "moved" in note
    labels, note = ml.parse_rates("10%,12.5%")
    assert labels == ["max", "10%", "12.5%"] and "added" in note


@pytest.mark.parametrize("text", ["", ",", "fast", "-5", "25%%", "%", "0%", "1e3", "max%"])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        ml.parse_rates(text)


def test_parse_args_defaults_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    args = ml.parse_args([])
    assert args.labels == ["max", "0", "10%", "25%", "40%", "60%"] and args.rates_note == ""
    assert args.push is True and args.members == 50 and args.open_connections == 0
    assert ml.parse_args(["--no-push", "--rates", "0,50"]).push is False
    assert ml.parse_args(["--rates", "0,25%"]).labels == ["max", "0", "25%"]
    for bad in (["--rates", "x"], ["--members", "0"], ["--open-connections", "600"]):
        with pytest.raises(SystemExit):
            ml.parse_args(bad)
    assert "--rates" in capsys.readouterr().err


def test_resolve_rate() -> None:
    assert ml.resolve_rate("max", None) is None
    assert ml.resolve_rate("50", None) == 50.0
    assert ml.resolve_rate("25%", 2000.0) == 500.0
    with pytest.raises(RuntimeError):
        ml.resolve_rate("25%", None)
    with pytest.raises(RuntimeError):
        ml.resolve_rate("25%", 0.0)


def test_backlog_is_one_seconds_worth_of_arrivals() -> None:
    # 200 msgs/s background + 50 probes over 10 s: 205 rows may be pending at the end
    assert ml.backlog_allowed(200.0, 50, 10.0) == 205.0
    assert ml.backlog_verdict(205, 200.0, 50, 10.0) == "ok"
    assert ml.backlog_verdict(206, 200.0, 50, 10.0) == "GROWING"
    assert ml.backlog_verdict(5, 0.0, 50, 10.0) == "ok"
    assert ml.backlog_verdict(6, 0.0, 50, 10.0) == "GROWING"


def test_open_connections_and_short_load() -> None:
    assert ml.open_connections(0.0, 0) == 8 and ml.open_connections(483.0, 0) == 25
    assert ml.open_connections(1e6, 0) == loadgen.MAX_CONNECTIONS and ml.open_connections(483.0, 4) == 4
    assert ml.short_of(500.0, 440.0) and not ml.short_of(500.0, 460.0)
    assert not ml.short_of(None, 0.0) and not ml.short_of(0.0, 0.0)
    assert math.isnan(ml.share_of_ceiling(10.0, None)) and ml.share_of_ceiling(250.0, 1000.0) == 0.25


def test_probe_stage_latencies_and_waiting() -> None:
    p = ml.Probe("o", 1, answered=10.0, answered_wall=1000.0)
    assert p.waiting(10.1, 30.0) and p.waiting(10.1, 30.0, push=True)
    p.observed = 10.2
    assert not p.waiting(10.3, 30.0) and p.waiting(10.3, 30.0, push=True)
    p.routed, p.pushed_wall = 10.25, 1000.4
    assert not p.waiting(10.5, 30.0, push=True)
    assert [round(p.stage_latency(s), 3) for s in ml.STAGES] == [0.2, 0.25, 0.4]
    late = ml.Probe("o", 2, answered=10.0, answered_wall=1000.0)
    assert not late.waiting(41.0, 30.0, push=True) and late.stage_latency("pushed") == ml.INF


def _phase(label: str, rate: float | None, answered: float, pending: int, latency: float) -> ml.Phase:
    probes = [ml.Probe("o", i, answered=0.0, answered_wall=0.0, observed=latency, routed=latency,
                       pushed_wall=latency) for i in range(10)]
    phase = ml.Phase(label, probes, rate=rate, push=True, pending_end=pending, processed=100)
    phase.load = loadgen.Result(ok=int(answered * 10), start_ns=0, last_answer_ns=10 * 10 ** 9)
    return phase


def test_summary_ceiling_holds_and_first_break() -> None:
    args = argparse.Namespace(connections=32, seconds=10.0, probe_timeout=30.0, push=True)
    phases = [_phase("max", None, 2000.0, 20_000, 0.5), _phase("10%", 200.0, 200.0, 3, 0.1),
              _phase("25%", 500.0, 500.0, 10, 0.3), _phase("40%", 800.0, 790.0, 5_000, 0.4),
              _phase("60%", 1200.0, 800.0, 0, 0.2)]
    assert ml.ceiling_of(phases) == 2000.0
    lines = "\n".join(ml.summary(phases, args))
    assert "2,000 msgs/s" in lines
    assert "up to 25% (500 msgs/s) = 25% of the ceiling" in lines
    assert "first break: 40% (800 msgs/s): backlog growing: 5,000 pending" in lines
