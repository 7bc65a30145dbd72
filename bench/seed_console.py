"""Seed a PostgreSQL database for bench/console.py: the scoring seed plus the console's columns.

    python bench/seed_console.py [--leads 1000000] [--touchpoints 20000000] [--database-url URL]

The same rows as bench/seed_scoring.py (one seeder: this only turns on its ``console`` part, see
bench/console_data.py). Without ``--database-url`` a new database ``leadrelay_bench_console_<random>`` is created
and kept: pass its printed URL to ``bench/console.py --database-url URL`` to measure it as often as needed.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
for _path in (str(BENCH_DIR.parent), str(BENCH_DIR)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import seed_scoring  # noqa: E402

DEFAULT_DB = "postgresql+asyncpg://postgres@127.0.0.1:5432/leadrelay_bench_console_{run}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--leads", type=int, default=1_000_000)
    p.add_argument("--touchpoints", type=int, default=20_000_000)
    p.add_argument("--database-url", help="postgresql+asyncpg URL (created when missing); default: a new database")
    p.add_argument("--procs", type=int, default=2, help="processes generating and copying touchpoints")
    args = p.parse_args(argv)
    url = args.database_url or DEFAULT_DB.format(run=secrets.token_hex(4))
    print(f"seeding {args.leads:,} leads and {args.touchpoints:,} touchpoints (console columns) into {url}", flush=True)
    times = seed_scoring.seed(url, leads=args.leads, touchpoints=args.touchpoints, procs=args.procs, console=True)
    print("  ".join(f"{name} {seconds:.1f} s" for name, seconds in times.items()))
    print(f"database: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
