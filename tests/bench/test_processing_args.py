"""bench/processing.py's argument parsing and pure helpers (no servers, no database)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import processing as pr  # noqa: E402


def test_layouts_parse_in_order() -> None:
    assert pr.parse_layouts("1, 2,4,ingest+2") == [pr.Layout(1), pr.Layout(2), pr.Layout(4), pr.Layout(2, True)]
    assert [lay.name for lay in pr.parse_layouts("ingest+1,3")] == ["ingest+1", "3"]


@pytest.mark.parametrize("text", ["", "0", "17", "x", "ingest+", "ingest+0", "2,2", "ingest2", "-1"])
def test_bad_layouts_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        pr.parse_layouts(text)


def test_defaults() -> None:
    args = pr.parse_args([])
    assert args.events == 30_000 and args.mix == "intents" and args.window is None and args.feed_seconds == 20
    assert args.layout_list == [pr.Layout(1), pr.Layout(2), pr.Layout(4), pr.Layout(2, True)]
    assert args.baseline_checkout is None and args.feed_rate is None


@pytest.mark.parametrize("argv", [["--events", "10"], ["--layouts", "2,ingest+2"], ["--mix", "other"],
                                  ["--window", "0"], ["--feed-seconds", "500"], ["--baseline-checkout", "/nonexistent"],
                                  ["--poll", "0"]])
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        pr.parse_args(argv)
    assert exc.value.code == 2


def test_ingest_layout_without_layout_1_needs_a_feed_rate() -> None:
    assert pr.parse_args(["--layouts", "2,ingest+2", "--feed-rate", "300"]).feed_rate == 300


def test_baseline_checkout_must_be_another_checkout(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        pr.parse_args(["--baseline-checkout", str(pr.REPO)])
    (tmp_path / "bot").mkdir()
    (tmp_path / "bot" / "cli.py").write_text("")
    assert pr.parse_args(["--baseline-checkout", str(tmp_path)]).baseline_checkout == tmp_path.resolve()


def _snaps(*pairs: tuple[float, int]) -> list[pr.Snap]:
    return [pr.Snap(t, pending) for t, pending in pairs]


def test_drain_window_from_last_full_poll_to_first_empty() -> None:
    snaps = _snaps((0, 100), (0.25, 100), (0.5, 90), (0.75, 40), (1.0, 0), (1.25, 0))
    assert pr.drain_window(snaps) == (1, 4)


def test_drain_window_fixed_length_and_none_without_a_drop() -> None:
    snaps = _snaps((0, 100), (1, 80), (2, 60), (3, 40), (4, 20))
    assert pr.drain_window(snaps, window_s=2) == (0, 2)
    assert pr.drain_window(snaps) == (0, 4)  # not drained: up to the last poll
    assert pr.drain_window(_snaps((0, 5), (1, 5))) is None


def test_verdicts_and_feed_rate() -> None:
    assert pr.backlog_verdict(100, 100.0) == "ok"
    assert pr.backlog_verdict(101, 100.0) == "GROWING"
    assert pr.ratio_verdict(400, 100) == "met" and pr.ratio_verdict(399, 100) == "NOT met"
    assert pr.ratio_verdict(1, 0) == "NOT met"
    assert pr.pick_feed_rate(None, 601.0) == 300 and pr.pick_feed_rate(50.0, 601.0) == 50
    with pytest.raises(pr.cb.SetupError):
        pr.pick_feed_rate(None, None)


def test_row_rates() -> None:
    row = pr.Row("current", pr.Layout(1), events=1000, seconds=2.0, server_cpu_s=1.5)
    assert row.rate == 500 and row.pct(row.server_cpu_s) == 75 and row.per_event_ms(row.server_cpu_s) == 1.5
    assert pr.Row("x", pr.Layout(1)).rate != pr.Row("x", pr.Layout(1)).rate  # nan: nothing measured
