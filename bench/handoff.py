"""The hand-off benchmark: how fast an MQL reaches the salesperson's phone, how fast routing is, how fast the
mobile inbox lists.

    python bench/handoff.py latency [--rates 20,100,1000] [--bg-rate 100] [--seconds 60]
    python bench/handoff.py routing [--leads 20000] [--workers 8] [--teams 1,5]
    python bench/handoff.py inbox --database-url URL   # a database seeded by bench/seed_console.py (1 M leads)

latency: one ``leadrelay serve`` in live mode against the fake WeChat / WeCom API (running in a thread of this
process, its clock the wall clock), a team of 50 salespeople and one routing rule. Probe leads are seeded as in
bench/mql_latency.py (nurture); one "想了解一下价格" makes each an MQL, which is routed and pushed as a template
card. Latency = the moment the fake receives the card that links to the probe's lead - the moment the probe's
callback got its 200 answer. Per phase, probes become MQLs at the given rate (per minute) while the callback
benchmark's traffic runs at --bg-rate messages a second (none in the first phase: the baseline).

routing: route_lead (storage/repos/routing.py) in one transaction per MQL, as the BecameMQL subscriber does, from
--workers concurrent sessions on PostgreSQL; assignments a minute, with all MQLs in one team (every routing
takes the same member row locks) and spread over several.

inbox: GET /m/?tab=pending|accepted|returned for salespeople of the seeded database (assignments are added for
their owned leads first), signed in with `leadrelay user login-link`; server time p50/p95 per tab.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
for _p in (str(BENCH_DIR.parent), str(BENCH_DIR)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import callback as cb  # noqa: E402
import handoff_inbox  # noqa: E402
import handoff_latency  # noqa: E402
import handoff_routing  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="part", required=True)
    lat = sub.add_parser("latency", help="MQL -> card at the fake, under callback load")
    lat.add_argument("--rates", default="20,100,1000", help="MQLs a minute per phase; the first runs without load")
    lat.add_argument("--bg-rate", type=float, default=100.0, help="callback msgs/s during the other phases")
    lat.add_argument("--seconds", type=float, default=60.0, help="measured seconds per phase")
    lat.add_argument("--warmup", type=float, default=3.0)
    lat.add_argument("--members", type=int, default=50, help="salespeople in the routed team")
    lat.add_argument("--probe-timeout", type=float, default=30.0)
    lat.add_argument("--open-connections", type=int, default=8)
    lat.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    lat.add_argument("--logs", type=Path, metavar="DIR", help="keep the server log in DIR")
    rt = sub.add_parser("routing", help="route_lead throughput on PostgreSQL")
    rt.add_argument("--leads", type=int, default=20_000, help="MQLs routed per layout")
    rt.add_argument("--workers", type=int, default=8, help="concurrent sessions")
    rt.add_argument("--teams", default="1,5", help="layouts: the MQLs spread over this many teams")
    rt.add_argument("--members", type=int, default=10, help="members per team")
    rt.add_argument("--batch", type=int, default=1, help="MQLs per transaction (an inbox batch's MQLs share one)")
    inbox = sub.add_parser("inbox", help="the mobile inbox list on a seeded database")
    inbox.add_argument("--database-url", required=True, help="seeded by bench/seed_console.py")
    inbox.add_argument("--requests", type=int, default=300, help="requests per tab")
    inbox.add_argument("--users", type=int, default=5, help="salespeople signed in (requests go round them)")
    inbox.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    for part in (lat, rt):
        part.add_argument("--database-url", help=f"database to create (default {cb.DEFAULT_DB.format(run='<random>')})")
        part.add_argument("--keep-database", action="store_true")
    args = p.parse_args(argv)
    if args.part == "latency":
        args.labels = [float(r) for r in args.rates.split(",") if r.strip()]
        if not args.labels or any(r <= 0 for r in args.labels):
            p.error("--rates: positive MQLs a minute, comma-separated")
        if not 1 <= args.seconds + args.warmup <= cb.MAX_SECONDS:
            p.error(f"--warmup + --seconds must be 1..{cb.MAX_SECONDS} (message timestamps must stay fresh)")
    if getattr(args, "logs", None):
        args.logs.mkdir(parents=True, exist_ok=True)
    if args.part == "routing":
        args.layouts = [int(t) for t in args.teams.split(",") if t.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"command: {cb.command_line()}", flush=True)
    run = {"latency": handoff_latency.run, "routing": handoff_routing.run, "inbox": handoff_inbox.run}[args.part]
    status = run(args)
    print(f"\ncommand: {cb.command_line()}")
    return status


if __name__ == "__main__":
    sys.exit(main())
