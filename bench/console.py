"""Console benchmarks (issue 12): the lead list, its search, the lead 360 and the CSV export on 1M leads / 20M
touchpoints, each against the same request on an (almost) empty database in the same run.

    python bench/console.py                                   # seeds a new 1M/20M database, drops it at the end
    python bench/console.py --keep-database                   # ... keeps it (its URL is printed)
    python bench/seed_console.py                              # or seed once ...
    python bench/console.py --database-url URL                # ... and measure it as often as needed
    python bench/console.py --database-url URL --explain 'stage=mql&q=星辰'   # the list's SQL, EXPLAIN ANALYZE

Two ``leadrelay serve`` processes (sandbox, PostgreSQL, Redis, no background jobs, rate limits off) run side by
side: one on the seeded database, one on a fresh "baseline" database holding only the bench's users and the
measured 360 leads (one touchpoint each). One client in this process sends one request at a time over one
keep-alive connection to 127.0.0.1, so a request's time is the server's time plus a loopback round trip and
the client's parsing (both well under a millisecond). Per case: ``--warmup`` unmeasured requests, then
``--requests`` measured ones cycling through the case's variants (bench/console_cases.py). Baseline and seeded
are measured alternately, case by case.

The export: ``/api/leads/export.csv`` of ~100,000 leads (18 days of creation dates), rows/s over the whole
response, with the server's resident memory sampled every 20 ms (a 10,000-row export beside it: flat memory
means the 100,000-row export does not grow the process more than the small one). Its baseline is reading the
same leads' columns straight from PostgreSQL (asyncpg, no server) in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shlex
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
for _path in (str(REPO), str(BENCH_DIR)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import callback  # noqa: E402
import console_cases as cases  # noqa: E402
import console_data  # noqa: E402
import seed_console  # noqa: E402
import seed_scoring  # noqa: E402

ADMIN, PASSWORD = "bench_admin", "bench console 密码 2026"
BASELINE_DB = "postgresql+asyncpg://postgres@127.0.0.1:5432/leadrelay_bench_console_base_{run}"


# ------------------------------------------------------------------------------------------ databases

async def _conn(url: str):  # noqa: ANN202
    import asyncpg

    return await asyncpg.connect(seed_scoring.dsn(url))


async def seeded_facts(url: str) -> tuple[int, int, list[int], list[str], list[str]]:
    """Leads, touchpoints (estimates), the 360 leads (exactly 2,000 touchpoints), sample phones and emails."""
    conn = await _conn(url)
    try:
        if not await conn.fetchval("SELECT count(*) FROM users WHERE username = 'bench_sales_01'"):
            raise SystemExit(f"{url} was not seeded by bench/seed_console.py")
        leads = await conn.fetchval("SELECT reltuples::bigint FROM pg_class WHERE relname = 'leads'")
        touchpoints = await conn.fetchval("SELECT reltuples::bigint FROM pg_class WHERE relname = 'touchpoints'")
        heavy = [r[0] for r in await conn.fetch(
            "SELECT l.id FROM leads l WHERE l.stage = 'lead' AND l.id % 997 = 0 ORDER BY l.id LIMIT $1",
            seed_scoring.HEAVY_LEADS)]
        heavy = [i for i in heavy if await conn.fetchval(
            "SELECT count(*) FROM touchpoints WHERE lead_id = $1", i) == seed_scoring.HEAVY_TOUCHPOINTS]
        sample = "SELECT value FROM identities TABLESAMPLE BERNOULLI (2) REPEATABLE (7) WHERE kind = $1 LIMIT 20"
        phones = [r[0] for r in await conn.fetch(sample, "phone")]
        emails = [r[0] for r in await conn.fetch(sample, "email")]
        return leads, touchpoints, heavy, phones, emails
    finally:
        await conn.close()


async def make_baseline(url: str, lead_ids: list[int]) -> None:
    """A migrated database with the bench's users and teams and the 360 leads, one touchpoint each."""
    await seed_scoring.prepare(url, replace=False)
    await seed_scoring.console_users(url)
    conn = await _conn(url)
    try:
        now = datetime.now(UTC)
        for lead_id in lead_ids:
            await conn.execute("INSERT INTO leads (id, display_name, stage, consent, profile, created_at, "
                               "last_activity_at) VALUES ($1, '张伟', 'lead', 'unknown', '{}', $2, $2)", lead_id, now)
            await conn.execute("INSERT INTO touchpoints (lead_id, kind, scene, channel, occurred_at, detail) "
                               "VALUES ($1, 'content_view', 'content', 'wechat_oa', $2, '{}')", lead_id, now)
        await conn.execute("SELECT setval(pg_get_serial_sequence('leads', 'id'), (SELECT max(id) FROM leads))")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def admin_token(url: str) -> str:
    """The bench's admin user (created once per database, password reset each run) and a new API token."""
    from bot.people.passwords import hash_password
    from storage.db import create_engine, session_factory
    from storage.repos.api_tokens import issue_token, revoke_all
    from storage.repos.users import add_user, set_password, user_by_name
    from storage.settings import DatabaseConfig

    engine = create_engine(DatabaseConfig(url=url))
    try:
        async with session_factory(engine)() as session, session.begin():
            user = await user_by_name(session, ADMIN)
            if user is None:
                user = await add_user(session, username=ADMIN, role="admin", password_hash=hash_password(PASSWORD))
            else:
                await set_password(session, user, hash_password(PASSWORD))
                await revoke_all(session, user.id)  # an earlier run's token
            token, _ = await issue_token(session, user.id, "bench/console.py")
            return token
    finally:
        await engine.dispose()


# ---------------------------------------------------------------------------------------------- server

def write_config(path: Path, port: int, db_url: str, redis_url: str, prefix: str) -> None:
    creds = callback.random_credentials()
    callback.write_config(path, creds, port, db_url, redis_url, prefix)
    with path.open("a", encoding="utf-8") as out:
        out.write("\n[jobs]\nenabled = []\n\n[rate_limits]\nenabled = false\n")


@dataclass
class Target:
    label: str
    url: str
    port: int = 0
    pid: int = 0
    token: str = ""


class Client:
    """One keep-alive connection, one request at a time; signed in to the console for the HTML page."""

    def __init__(self, target: Target) -> None:
        import aiohttp

        self.target = target
        self.http = aiohttp.ClientSession(
            f"http://127.0.0.1:{target.port}", connector=aiohttp.TCPConnector(limit=1),
            cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"Authorization": f"Bearer {target.token}"})

    async def sign_in(self) -> None:
        import re

        async with self.http.get("/console/login") as resp:
            match = re.search(r'name="csrf_token" value="([^"]+)"', await resp.text())
        assert match, "no sign-in form"
        async with self.http.post("/console/login", allow_redirects=False, data={
                "username": ADMIN, "password": PASSWORD, "csrf_token": match[1]}) as resp:
            if resp.status not in (302, 303):
                raise SystemExit(f"{self.target.label}: console sign-in answered {resp.status}")

    async def get(self, path: str) -> tuple[float, int, bytes]:
        start = time.perf_counter()
        # The page is read with the console session only (a browser sends no bearer token).
        headers = {"Authorization": ""} if path.startswith("/console/") else None
        async with self.http.get(path, headers=headers, allow_redirects=False) as resp:
            body = await resp.read()
        return (time.perf_counter() - start) * 1000, resp.status, body

    async def close(self) -> None:
        await self.http.close()


# --------------------------------------------------------------------------------------------- measuring

def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass
class Timing:
    p50: float
    p95: float
    errors: int
    sample: str = ""  # the first error's status and path
    measured: int = 0


MIN_MEASURED = 20  # a case slower than its time budget still gets this many measured requests


async def run_case(client: Client, case: cases.Case, warmup: int, requests: int, budget_s: float) -> Timing:
    times, errors, sample, began = [], 0, "", time.perf_counter()
    for i in range(warmup + requests):
        if len(times) >= MIN_MEASURED and time.perf_counter() - began > budget_s:
            break  # p95 of a case this slow is far above its target anyway
        path = case.paths[i % len(case.paths)]
        ms, status, _ = await client.get(path)
        if status != 200:
            errors += 1
            sample = sample or f"{status} {path}"
        if i >= warmup:
            times.append(ms)
    return Timing(statistics.median(times), pct(times, 0.95), errors, sample, len(times))


class MachineBusy:
    """The whole machine's CPU use since creation, % of all cores: this bench (client, one busy server,
    PostgreSQL; requests one at a time) keeps it near one core, so far above 1/cores means other load."""

    def __init__(self) -> None:
        self.start = callback._machine_busy()

    def percent(self) -> float:
        busy, total = callback._machine_busy()
        return 100 * (busy - self.start[0]) / max(1e-9, total - self.start[1])


class RssSampler:
    """The server's resident memory every 20 ms, from /proc (KiB)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self.start_kib = self.read()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def read(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.read())
            time.sleep(0.02)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Export:
    rows: int
    seconds: float
    growth_mib: float  # peak resident memory during the export minus before it


async def run_export(client: Client, path: str) -> Export:
    with RssSampler(client.target.pid) as rss:
        ms, status, body = await client.get(path)
    if status != 200:
        raise SystemExit(f"{client.target.label}: {path} answered {status}: {body[:300]!r}")
    rows = body.count(b"\r\n") - 1  # minus the header line
    return Export(rows, ms / 1000, (rss.peak - rss.start_kib) / 1024)


async def raw_read(url: str, path: str) -> tuple[int, float]:
    """The export's baseline: the same leads' own columns read straight from PostgreSQL, no server."""
    from urllib.parse import parse_qs, urlsplit

    from leads.lead_filters import day_after, day_start

    query = parse_qs(urlsplit(path).query)
    start = day_start(datetime.fromisoformat(query["created_from"][0]).date())
    end = day_after(datetime.fromisoformat(query["created_to"][0]).date())
    conn, rows, began = await _conn(url), 0, time.perf_counter()
    try:
        async with conn.transaction():
            async for _ in conn.cursor(
                    "SELECT id, display_name, profile ->> 'company', stage, consent, created_at, last_activity_at "
                    "FROM leads WHERE created_at >= $1 AND created_at < $2 AND merged_into_id IS NULL "
                    "ORDER BY last_activity_at DESC, id DESC", start, end, prefetch=2000):
                rows += 1
    finally:
        await conn.close()
    return rows, time.perf_counter() - began


# ---------------------------------------------------------------------------------------------- report

def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


async def measure(base: Target, seeded: Target, args: argparse.Namespace, heavy: list[int], phones: list[str],
                  emails: list[str]) -> int:
    today = datetime.now(UTC).date()
    clients = {t.label: Client(t) for t in (base, seeded)}
    failed = 0
    try:
        for client in clients.values():
            await client.sign_in()
        all_cases = (cases.list_cases(today)
                     + cases.search_cases(console_data.fragments(11, 24), phones, emails)
                     + cases.lead_cases(heavy))
        print(f"\n{'case':46} {'variants':>8}  {'baseline p50/p95 ms':>20}  {'1M p50/p95 ms':>16}  "
              f"{'p95 ratio':>9}  {'machine':>7}  target", flush=True)
        for case in all_cases:
            timings, busy = {}, MachineBusy()
            for label, client in clients.items():
                timings[label] = await run_case(client, case, args.warmup, args.requests, args.case_budget)
            b, s = timings[base.label], timings[seeded.label]
            ok = s.p95 <= case.target_ms and not s.errors and not b.errors
            failed += not ok
            errors = "".join(f"  {label} errors {t.errors} (e.g. {t.sample})" for label, t in timings.items()
                             if t.errors)
            errors += f"  (1M: {s.measured} measured, time budget)" if s.measured < args.requests else ""
            print(f"{case.group + ': ' + case.name:46} {len(case.paths):>8}  {b.p50:>9.1f} / {b.p95:>7.1f}  "
                  f"{s.p50:>7.1f} / {s.p95:>6.1f}  {s.p95 / b.p95:>8.1f}x  {busy.percent():>6.0f}%  "
                  f"p95 <= {case.target_ms:.0f} ms: "
                  f"{_verdict(ok)}{errors}", flush=True)
        failed += await measure_export(clients[base.label], clients[seeded.label], seeded.url, today)
    finally:
        for client in clients.values():
            await client.close()
    return failed


async def measure_export(base: Client, seeded: Client, url: str, today: object) -> int:
    big, small = cases.export_path(today, 18), cases.export_path(today, 2)  # type: ignore[arg-type]
    busy = MachineBusy()
    empty = await run_export(base, big)
    await run_export(seeded, small)  # warm-up
    small_runs = [await run_export(seeded, small) for _ in range(2)]
    runs = [await run_export(seeded, big) for _ in range(2)]
    raw_rows, raw_s = await raw_read(url, big)
    best = min(runs, key=lambda e: e.seconds)
    rate, raw_rate = best.rows / best.seconds, raw_rows / raw_s
    growth_small, growth_big = max(e.growth_mib for e in small_runs), max(e.growth_mib for e in runs)
    flat = growth_big <= max(2 * growth_small, growth_small + 16)
    ok = rate >= cases.EXPORT_ROWS_PER_S and flat and best.rows == raw_rows
    print(f"\nexport {big}")
    print(f"    baseline database (0 rows)  {empty.seconds * 1000:8.1f} ms")
    for e in runs:
        print(f"    1M: {e.rows:,} rows in {e.seconds:.2f} s = {e.rows / e.seconds:,.0f} rows/s, "
              f"server memory +{e.growth_mib:.1f} MiB at peak")
    for e in small_runs:
        print(f"    1M, 2 days: {e.rows:,} rows in {e.seconds:.2f} s, server memory +{e.growth_mib:.1f} MiB at peak")
    print(f"    PostgreSQL read of the same {raw_rows:,} leads (asyncpg, no server): {raw_s:.2f} s = "
          f"{raw_rate:,.0f} rows/s; export = {rate / raw_rate:.2f}x that")
    print(f"    machine CPU use during the export phase: {busy.percent():.0f}% of {os.cpu_count()} cores")
    print(f"    target >= {cases.EXPORT_ROWS_PER_S:,} rows/s with flat memory: {_verdict(ok)}"
          f"{'' if best.rows == raw_rows else f' (rows differ: {best.rows:,} vs {raw_rows:,})'}")
    return int(not ok)


# ------------------------------------------------------------------------------------------------ main

async def explain(url: str, query_string: str) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the list's page and count queries for these query parameters."""
    from urllib.parse import parse_qsl

    from sqlalchemy import func, select, text

    from leads.lead_filters import COUNT_CAP
    from sdr_console.api.lead_list import query_from
    from storage.db import create_engine, session_factory
    from storage.models import Lead
    from storage.repos.lead_search import filtered, ordered
    from storage.settings import DatabaseConfig

    params: dict[str, list[str]] = {}
    for key, value in parse_qsl(query_string):
        params.setdefault(key, []).append(value)
    query = query_from(params)
    f = query.to_filter()
    engine = create_engine(DatabaseConfig(url=url))
    try:
        async with session_factory(engine)() as session:
            page = ordered(await filtered(session, select(Lead), f, None), f)
            page = page.limit(query.limit + 1).offset(query.offset)
            inner = (await filtered(session, select(Lead.id), f, None)).limit(COUNT_CAP + 1).subquery()
            count = select(func.count()).select_from(inner)
            for label, stmt in (("page", page), ("count", count)):
                sql = str(stmt.compile(session.bind, compile_kwargs={"literal_binds": True}))
                plan = (await session.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql))).scalars()
                print(f"-- {label}\n{sql}\n" + "\n".join(plan) + "\n")
    finally:
        await engine.dispose()


def command_line() -> str:
    return " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable), *sys.argv])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", help="a database seeded by bench/seed_console.py (kept)")
    p.add_argument("--leads", type=int, default=1_000_000)
    p.add_argument("--touchpoints", type=int, default=20_000_000)
    p.add_argument("--keep-database", action="store_true", help="keep the database this run seeds")
    p.add_argument("--requests", type=int, default=100, help="measured requests per case and database")
    p.add_argument("--warmup", type=int, default=10, help="unmeasured requests per case and database first")
    p.add_argument("--case-budget", type=float, default=60.0,
                   help=f"seconds per case and database after which measuring stops (at least {MIN_MEASURED})")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--explain", metavar="QUERY_STRING", help="only print the list's SQL plans for these filters")
    p.add_argument("--logs", type=Path, help="keep the servers' logs here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.explain is not None:
        if not args.database_url:
            raise SystemExit("--explain needs --database-url")
        asyncio.run(explain(args.database_url, args.explain))
        return 0
    print(f"command: {command_line()}", flush=True)
    url, created = args.database_url, False
    if not url:
        url, created = seed_console.DEFAULT_DB.format(run=secrets.token_hex(4)), True
        print(f"seeding {args.leads:,} leads and {args.touchpoints:,} touchpoints into {url}", flush=True)
        times = seed_scoring.seed(url, leads=args.leads, touchpoints=args.touchpoints, console=True)
        print("    seeded in " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()), flush=True)
    base_url = BASELINE_DB.format(run=secrets.token_hex(4))
    prefix = f"benchconsole:{secrets.token_hex(4)}:"
    try:
        leads, touchpoints, heavy, phones, emails = asyncio.run(seeded_facts(url))
        print(f"database {callback.db_name(url)}: ~{leads:,} leads, ~{touchpoints:,} touchpoints; "
              f"360 leads {len(heavy)} x {seed_scoring.HEAVY_TOUCHPOINTS:,} touchpoints; "
              f"baseline database {callback.db_name(base_url)}", flush=True)
        asyncio.run(make_baseline(base_url, heavy))
        base, seeded = Target("baseline", base_url), Target("1M", url)
        logs = args.logs or Path(tempfile.mkdtemp(prefix="bench-console-"))
        logs.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:
            for target in (base, seeded):
                target.token = asyncio.run(admin_token(target.url))
                target.port = callback.free_port()
                config = logs / f"{target.label}.toml"
                write_config(config, target.port, target.url, args.redis_url, prefix + target.label + ":")
                proc = stack.enter_context(callback.server(
                    [*callback.leadrelay_cmd(), "serve", "--config", str(config)], callback.server_env({}),
                    target.port, logs / f"{target.label}.log"))
                target.pid = proc.pid
            print(f"servers: leadrelay serve on 127.0.0.1:{base.port} (baseline) and :{seeded.port} (1M), "
                  f"client in this process; {args.warmup} warm-up + {args.requests} measured requests per case "
                  f"and database", flush=True)
            failed = asyncio.run(measure(base, seeded, args, heavy, phones, emails))
        print(f"\n{'all targets met' if not failed else f'{failed} case(s) missed their target'}")
        print(f"command: {command_line()}")
        return 1 if failed else 0
    finally:
        asyncio.run(seed_scoring.drop(base_url))
        callback.clean_redis(args.redis_url, prefix)
        if created and not args.keep_database:
            asyncio.run(seed_scoring.drop(url))
        elif created:
            print(f"database kept: {url}")


if __name__ == "__main__":
    sys.exit(main())
