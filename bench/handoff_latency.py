"""bench/handoff.py latency: MQL -> template card at the fake WeCom API, under the callback benchmark's load.

The server runs live against the fake (a thread of this process, wall clock): the outbox sends for real. Probe
leads are bench/mql_latency.py's (nurture until one "想了解一下价格"); a probe's latency is the fake's receipt
of the card whose link names the probe's lead minus the 200 answer of the probe's callback.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import random
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import callback as cb
import mql_latency as ml

NAN, INF = float("nan"), float("inf")
AGENT_ID, CORP_SECRET = 1000002, "bench-app-secret"
TARGET_P99_S = 2.0


class FakeThread:
    """The fake WeChat / WeCom API on its own event loop in a thread of this process."""

    def __init__(self, app_id: str) -> None:
        from tests.support.fakes.wechat_server import FakeWeChatServer
        from tests.support.fakes.wechat_state import FakeWeChatState

        self.state = FakeWeChatState(oa_apps={app_id: "bench-oa-secret"}, corp_id="ww-bench-corp", agent_id=AGENT_ID,
                                     wecom_secrets={CORP_SECRET: frozenset({"app", "contact"})}, lenient=True)
        self.server = FakeWeChatServer(self.state)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="fake-wechat", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.start())
        self.ready.set()
        self.loop.run_forever()

    def start(self) -> str:
        self.thread.start()
        if not self.ready.wait(10):
            raise cb.SetupError("the fake WeChat server did not start")
        return self.server.base_url

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def card_times(self) -> dict[int, float]:
        """lead id -> when the first card (template card or textcard) linking to it arrived."""
        out: dict[int, float] = {}
        for req in list(self.state.requests):
            body = req.json if isinstance(req.json, dict) else {}
            card = body.get("template_card") or body.get("textcard") or {}
            url = (card.get("card_action") or {}).get("url") or card.get("url") or ""
            if req.path == "/cgi-bin/message/send" and "/m/leads/" in url:
                lead = url.rsplit("/m/leads/", 1)[1].split("?", 1)[0]
                if lead.isdigit():
                    out.setdefault(int(lead), req.at)
        return out


def write_config(path: Path, creds: cb.Credentials, port: int, db_url: str, redis_url: str, prefix: str,
                 fake_url: str) -> dict[str, str]:
    """mql_latency's config plus live WeChat, WeCom and one routing rule; the environment it needs."""
    ml.write_full_config(path, creds, port, db_url, redis_url, prefix)
    with path.open("a", encoding="utf-8") as f:
        f.write(f"""
[wecom]
corp_id = "ww-bench-corp"
agent_id = {AGENT_ID}
secret = "{CORP_SECRET}"
contact_secret = "{CORP_SECRET}"
token = "bench-wecom-token"
encoding_aes_key = "Q2FsbGJhY2tLZXlGb3JMZWFkUmVsYXlEZW1vT25seTE"
api_base_url = "{fake_url}"

[routing]
default_owner = "bench_sales_1"

[[routing.rules]]
team = "bench_team"
name = "全部线索"
""")
    return {"LEADRELAY_WECHAT__MODE": "live", "LEADRELAY_WECHAT__APP_SECRET": "bench-oa-secret",
            "LEADRELAY_WECHAT__API_BASE_URL": fake_url, "LEADRELAY_SERVER__SECRET_KEY": secrets.token_urlsafe(48)}


async def seed_team(dsn: str, members: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO users (username, display_name, role, password_hash, wecom_userid, card_style, created_at) "
            "SELECT 'bench_sales_' || n, '销售' || n, 'sales', '!', 'bench_sales_' || n, 'template_card', now() "
            "FROM generate_series(1, $1) n", members)
        team = await conn.fetchval("INSERT INTO teams (name) VALUES ('bench_team') RETURNING id")
        await conn.execute("INSERT INTO team_members (team_id, user_id, away, capacity, monthly_cap, weight, "
                           "virtual_time) SELECT $1, id, false, 0, 0, 1, 0 FROM users "
                           "WHERE username LIKE 'bench_sales_%'", team)
    finally:
        await conn.close()


def _probe_times(rate_per_min: float, seconds: float) -> list[float]:
    """Evenly spread send offsets: rate a minute over the measured seconds (at least 10 probes)."""
    count = max(10, round(rate_per_min * seconds / 60))
    return [(i + 0.5) * seconds / count for i in range(count)]


async def _send_probes(port: int, creds: cb.Credentials, probes: list[ml.Probe], offsets: list[float],
                       msg_id: int, start_wall: float) -> None:
    sends = []
    for i, (probe, offset) in enumerate(zip(probes, offsets, strict=True)):
        await asyncio.sleep(max(0.0, start_wall + offset - time.time()))
        sends.append(asyncio.create_task(ml.send_probe(port, creds, probe, msg_id + i)))
    await asyncio.gather(*sends)


def run_phase(rate: float, with_load: bool, probes: list[ml.Probe], fake: FakeThread, port: int, creds: cb.Credentials,
              ids: cb.MsgIds, args: argparse.Namespace) -> list[float]:
    offsets = _probe_times(rate, args.seconds)
    probes = probes[:len(offsets)]
    child, parent_end, start_wall = None, None, time.time() + 1.5
    if with_load:
        total, rng, t, bg = args.warmup + args.seconds, random.Random(rate), 0.0, []
        while (t := t + rng.expovariate(args.bg_rate)) < total:
            bg.append(int(t * 1e9))
        requests, _ = cb.build_requests(creds, ids, len(bg), 2)
        ctx = multiprocessing.get_context("spawn")  # not fork: this process runs the fake in a thread
        parent_end, child_end = ctx.Pipe(duplex=False)
        load_args = argparse.Namespace(warmup=args.warmup, seconds=args.seconds, connections=args.open_connections,
                                       open_connections=args.open_connections)
        child = ctx.Process(target=ml._load_child, args=(child_end, port, requests, bg, load_args, start_wall))
        child.start()
        child_end.close()
    asyncio.run(_send_probes(port, creds, probes, offsets, ids.take(len(probes)), start_wall + args.warmup))
    deadline = time.time() + args.probe_timeout
    while time.time() < deadline:
        seen = fake.card_times()
        if all(p.lead_id in seen or p.error for p in probes):
            break
        time.sleep(0.2)
    if child is not None and parent_end is not None:
        status, result = parent_end.recv() if parent_end.poll(120) else ("error", "load client did not report")
        child.join(10)
        if status != "ok":
            raise RuntimeError(f"background load failed: {result}")
        first = f" (first: {result.first_error})" if result.error_count else ""
        print(f"    background: {result.rate():,.0f} msgs/s, {result.error_count} errors{first}", flush=True)
    seen = fake.card_times()
    return [seen[p.lead_id] - p.answered_wall if p.lead_id in seen else INF for p in probes if not p.error]


def _q(values: list[float], q: float) -> float:
    return sorted(values)[max(0, math.ceil(q * len(values)) - 1)] if values else NAN


def _ms(v: float) -> str:
    return "miss" if v == INF else "-" if math.isnan(v) else f"{v * 1000:,.0f} ms"


def run(args: argparse.Namespace) -> int:
    run_id, creds, ids = secrets.token_hex(4), cb.random_credentials(), cb.MsgIds()
    db_url = args.database_url or cb.DEFAULT_DB.format(run=run_id)
    prefix, tmp = f"leadrelay_bench_{run_id}:", Path(tempfile.mkdtemp(prefix="leadrelay-handoff-"))
    log, port, created, rows = (args.logs or tmp) / "leadrelay.log", cb.free_port(), False, []
    fake = FakeThread(creds.app_id)
    try:
        fake_url = fake.start()
        cb.create_database(db_url, False)
        created = True
        config = tmp / "leadrelay.toml"
        env = cb.server_env(write_config(config, creds, port, db_url, args.redis_url, prefix, fake_url))
        up = subprocess.run([*cb.leadrelay_cmd(), "db", "upgrade", "--config", str(config)], cwd=cb.REPO, env=env,
                            capture_output=True, text=True, timeout=180)
        if up.returncode != 0:
            raise cb.SetupError(f"leadrelay db upgrade failed:\n{up.stdout}\n{up.stderr}")
        asyncio.run(seed_team(cb._asyncpg_dsn(db_url), args.members))
        counts = [len(_probe_times(r, args.seconds)) for r in args.labels]
        openids = [f"oHand{n:02d}{run_id}{i:010d}" for n, c in enumerate(counts) for i in range(c)]
        lead_ids = asyncio.run(ml.seed_probes(config, openids))
        print(f"seeded {len(lead_ids):,} probe leads and a team of {args.members} salespeople", flush=True)
        with cb.server([*cb.leadrelay_cmd(), "serve", "--config", str(config)], env, port, log):
            first = 0
            for n, rate in enumerate(args.labels):
                probes = [ml.Probe(openids[k], lead_ids[k]) for k in range(first, first + counts[n])]
                first += counts[n]
                lat = run_phase(rate, n > 0, probes, fake, port, creds, ids, args)
                rows.append((rate, n > 0, lat))
                print(f"  {rate:g} MQLs/min: p50 {_ms(_q(lat, 0.5))}, p99 {_ms(_q(lat, 0.99))}", flush=True)
    except cb.SetupError as exc:
        print(f"setup failed: {exc}\n{cb._tail(log)}")
        return 2
    finally:
        fake.stop()
        if created and not args.keep_database:
            cb.drop_database(db_url)
        cb.clean_redis(args.redis_url, prefix)
        shutil.rmtree(tmp, ignore_errors=True)
    base = _q(rows[0][2], 0.99) if rows else NAN
    print(f"\nMQL -> card request at the fake; {args.members} salespeople; background {args.bg_rate:g} callback "
          f"msgs/s (Poisson) in all but the first phase; {args.seconds:g} s per phase")
    print("MQLs/min  load  probes   p50       p95       p99       max       misses  p99 vs first  p99<=2s")
    status = 0
    for rate, load, lat in rows:
        p99 = _q(lat, 0.99)
        status |= p99 > TARGET_P99_S and rate <= 100
        print(f"{rate:>8g}  {'yes' if load else 'no':>4}  {len(lat):>6}  " + "  ".join(
            f"{_ms(_q(lat, q)):>8}" for q in (0.5, 0.95, 0.99, 1.0)) + f"  {lat.count(INF):>6}  "
            f"{p99 / base if base > 0 and p99 != INF else NAN:>11.2f}x  {'met' if p99 <= TARGET_P99_S else 'NOT met'}")
    return int(status)
