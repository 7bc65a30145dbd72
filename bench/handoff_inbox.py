"""bench/handoff.py inbox: the mobile inbox list (GET /m/?tab=...) on a database of 1 M leads.

The database comes from bench/seed_console.py (kept between runs). The first run gives every lead owned by a
salesperson an assignment (7 in 10 accepted, 2 pending, 1 returned, at the lead's creation time): about 400,000
assignments over 33 salespeople. Then one ``leadrelay serve`` (sandbox) on it; salespeople sign in with
`leadrelay user login-link` and the tabs are requested in turn. Latency is measured by this client on the same
machine (server time plus a loopback round trip); the baseline is /healthz over the same connections.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import callback as cb

TABS = ("pending", "accepted", "returned")
TARGET_P95_S = 0.100
_ASSIGN = """
INSERT INTO assignments (lead_id, user_id, team_id, rule, reason, status, assigned_at, sla_step)
SELECT l.id, l.owner_user_id, NULL, 'bench', '',
       CASE WHEN l.id % 10 < 7 THEN 'accepted' WHEN l.id % 10 < 9 THEN 'pending' ELSE 'returned' END,
       l.created_at, 0
FROM leads l JOIN users u ON u.id = l.owner_user_id
WHERE u.role = 'sales' AND l.merged_into_id IS NULL AND l.erased_at IS NULL
"""


async def prepare(dsn: str, users: int) -> list[str]:
    """Assignments (once), and the salespeople with the most pending ones."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM assignments)"):
            started = time.perf_counter()
            await conn.execute(_ASSIGN)
            await conn.execute("ANALYZE assignments")
            print(f"  assignments added in {time.perf_counter() - started:.1f} s", flush=True)
        total = await conn.fetchval("SELECT count(*) FROM assignments")
        leads = await conn.fetchval("SELECT count(*) FROM leads")
        rows = await conn.fetch("SELECT u.username, count(*) AS n FROM assignments a JOIN users u ON u.id = a.user_id "
                                "WHERE a.status = 'pending' GROUP BY 1 ORDER BY 2 DESC LIMIT $1", users)
        print(f"  {leads:,} leads, {total:,} assignments; signed in: "
              + ", ".join(f"{r['username']} ({r['n']:,} pending)" for r in rows), flush=True)
        return [r["username"] for r in rows]
    finally:
        await conn.close()


def login_link(config: Path, env: dict[str, str], username: str) -> str:
    out = subprocess.run([*cb.leadrelay_cmd(), "user", "login-link", username, "--config", str(config)], cwd=cb.REPO,
                         env=env, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise cb.SetupError(f"login-link {username} failed: {out.stderr.strip()}")
    return out.stdout.strip().splitlines()[-1]


async def measure(port: int, links: list[str], requests: int) -> dict[str, list[float]]:
    import aiohttp

    sessions = []
    try:
        for link in links:
            session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
            sessions.append(session)
            async with session.get(link.replace(link.split("/m/", 1)[0], f"http://127.0.0.1:{port}")) as resp:
                if resp.status != 200 or "/m/" not in str(resp.url):
                    raise cb.SetupError(f"sign-in with the login link failed: HTTP {resp.status} at {resp.url}")
        out: dict[str, list[float]] = {}
        for name, path in [("healthz", "/healthz"), *((tab, f"/m/?tab={tab}") for tab in TABS)]:
            times = []
            for i in range(requests + 10):  # the first 10 warm up
                started = time.perf_counter()
                async with sessions[i % len(sessions)].get(f"http://127.0.0.1:{port}{path}") as resp:
                    body = await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"{path}: HTTP {resp.status} {body[:200]!r}")
                if i >= 10:
                    times.append(time.perf_counter() - started)
            out[name] = times
        return out
    finally:
        for session in sessions:
            await session.close()


def _q(values: list[float], q: float) -> float:
    return sorted(values)[max(0, math.ceil(q * len(values)) - 1)] if values else float("nan")


def run(args: argparse.Namespace) -> int:
    run_id, port, tmp = secrets.token_hex(4), cb.free_port(), Path(tempfile.mkdtemp(prefix="leadrelay-inbox-"))
    prefix, log, creds = f"leadrelay_bench_{run_id}:", tmp / "leadrelay.log", cb.random_credentials()
    try:
        users = asyncio.run(prepare(cb._asyncpg_dsn(args.database_url), args.users))
        config = tmp / "leadrelay.toml"
        cb.write_config(config, creds, port, args.database_url, args.redis_url, prefix)
        env = cb.server_env({"LEADRELAY_SERVER__SECRET_KEY": secrets.token_urlsafe(48)})
        links = [login_link(config, env, name) for name in users]
        with cb.server([*cb.leadrelay_cmd(), "serve", "--config", str(config)], env, port, log):
            times = asyncio.run(measure(port, links, args.requests))
    except cb.SetupError as exc:
        print(f"setup failed: {exc}\n{cb._tail(log)}")
        return 2
    finally:
        cb.clean_redis(args.redis_url, prefix)
        shutil.rmtree(tmp, ignore_errors=True)
    base = _q(times["healthz"], 0.95)
    print(f"\nGET /m/?tab=... as {len(users)} salespeople in turn, {args.requests} requests each, one at a time "
          "(client-measured on this machine); baseline: /healthz")
    print("page      p50       p95       p99       p95 vs healthz  p95<=100ms")
    status = 0
    for name, values in times.items():
        p95 = _q(values, 0.95)
        ok = p95 <= TARGET_P95_S
        status |= name != "healthz" and not ok
        print(f"{name:<8}  " + "  ".join(f"{_q(values, q) * 1000:>6.1f} ms" for q in (0.5, 0.95, 0.99))
              + f"  {p95 / base:>13.1f}x  {'met' if ok else 'NOT met'}")
    return int(status)
