"""MQL latency: a lead crossing the MQL threshold must be an MQL within 1 s (p99) of its callback's answer.

    python bench/mql_latency.py --rates 0,50,100,200,max --seconds 20

One ``leadrelay serve`` (bench/callback.py's temporary config plus config.example.toml's intents and content,
so "价格" scores visit_pricing) on a fresh PostgreSQL database. Probe leads are seeded through LeadRepository
(ability 40, motivation 31: nurture); one "想了解一下价格" (+20) makes them sales_ready, whose action is
stage:mql. Per phase: drain the inbox, run the callback benchmark's traffic at the rate (Poisson open loop,
or ``max``: its closed loop) and send each probe once at evenly spread moments. A separate asyncpg connection
polls stage_transitions; latency = first poll seeing the probe's mql row - arrival of its 200 answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
for _p in (str(REPO), str(BENCH_DIR)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import callback as cb  # noqa: E402 - bench/callback.py: database, config, server and request helpers
import loadgen  # noqa: E402
from callback import CpuSampler, Credentials, MsgIds, SetupError  # noqa: E402

PROBE_TEXT = "想了解一下价格"
PROBE_PROFILE = {"job_title": "vp_plus", "department": "hr", "company_size": "500_999", "company_type": "b2b"}
# The webinar gives 10 + 20 = 30; an email open adds 1 because with the default 30-day half-life 30 points
# an hour old plus the pricing 20 come to 49.99, never the threshold of 50.
SEED_TOUCHES = (("webinar_register", "webinar", "livestream", {"content_id": "bench-webinar"}),
                ("webinar_attend", "webinar", "livestream", {"content_id": "bench-webinar"}),
                ("email_open", "email", "campaign", {}))
TARGET_S, INF, NAN = 1.0, float("inf"), float("nan")


@dataclass
class Probe:
    openid: str
    lead_id: int
    answered: float = NAN  # perf_counter when the 200 answer was complete
    answered_wall: float = NAN
    observed: float = NAN  # perf_counter when the poll that first saw the mql row was issued
    occurred_at: float = NAN  # that row's occurred_at (POSIX)
    error: str = ""

    def waiting(self, now: float, timeout_s: float) -> bool:
        return not self.error and math.isnan(self.observed) and not now > self.answered + timeout_s

    @property
    def latency(self) -> float:
        return INF if math.isnan(self.observed) else self.observed - self.answered


@dataclass
class Phase:
    label: str
    probes: list[Probe]
    drain_s: float = 0.0
    drain_left: int = 0
    load: loadgen.Result | None = None
    processed: int = 0  # inbox rows handled after the ack during the measured seconds
    ingested: int = 0
    pending_end: int = 0
    cpu: CpuSampler = field(default_factory=lambda: CpuSampler(None))

    def latencies(self) -> list[float]:
        return [p.latency for p in self.probes if not p.error]


class Sampler(CpuSampler):
    """callback.CpuSampler, but PostgreSQL's CPU includes backends that exited meanwhile (the server's pool
    closes overflow connections): the postmaster's cutime/cstime hold what its reaped children used."""

    @staticmethod
    def pg_cpu() -> float:
        total = 0.0
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    total += sum(map(int, (entry / "stat").read_text().rsplit(")", 1)[1].split()[11:15])) / cb._TICK
            except (OSError, ValueError):
                continue
        return total

    def start(self) -> None:
        self.pg0 = self.pg_cpu()
        super().start()

    def end(self) -> None:
        super().end()
        self.pg = (self.pg_cpu() - self.pg0) / max(time.monotonic() - self._t0, 1e-9) * 100


# ------------------------------------------------------------------------------ open-loop background load

class _OpenShared(loadgen._Shared):
    __slots__ = ("due", "idle")


class _OpenConnection(loadgen._Connection):
    """After an answer, take a due request or wait idle (loadgen's closed loop sends the next one at once)."""

    __slots__ = ()

    def send_next(self) -> None:
        if self.shared.due > 0:
            self.shared.due -= 1
            super().send_next()
        else:
            self.shared.idle.append(self)


async def drive_open(port: int, requests: list[bytes], offsets_ns: list[int], connections: int, start_wall: float,
                     seconds: float) -> loadgen.Result:
    """Request i is due at start + offsets_ns[i] and goes out on the next idle connection."""
    loop, result = asyncio.get_running_loop(), loadgen.Result()
    s = _OpenShared(requests, 0, 5_000_000_000, result, False)
    conns = [(await loop.create_connection(lambda: _OpenConnection(s), "127.0.0.1", port))[1]
             for _ in range(connections)]
    s.due, s.idle, s.open, s.all_done = 0, list(conns), len(conns), loop.create_future()
    await asyncio.sleep(max(0.0, start_wall - time.time()))
    cpu0, i = loadgen._cpu_s(), 0
    start = result.start_ns = result.last_answer_ns = time.perf_counter_ns()
    s.deadline_ns = start + int(seconds * 1e9)
    while (now := time.perf_counter_ns()) < s.deadline_ns:
        while i < len(offsets_ns) and start + offsets_ns[i] <= now:
            s.due, i = s.due + 1, i + 1
        while s.due and s.idle:
            s.due -= 1
            loadgen._Connection.send_next(s.idle.pop())
        for conn in conns:
            conn.check_timeout(now)
        wake = min(start + offsets_ns[i] if i < len(offsets_ns) else s.deadline_ns, s.deadline_ns, now + 50_000_000)
        await asyncio.sleep(max(0, wake - time.perf_counter_ns()) / 1e9)
    for conn in s.idle:
        conn.finish()
    while not s.all_done.done():
        await asyncio.wait([s.all_done], timeout=0.1)
        for conn in conns:
            conn.check_timeout(time.perf_counter_ns())
    result.cpu_s = loadgen._cpu_s() - cpu0
    for conn in conns:
        conn.transport.close()
    return result


def _load_child(out: multiprocessing.connection.Connection, port: int, requests: list[bytes],
                offsets: list[int] | None, args: argparse.Namespace, start_wall: float) -> None:
    total = args.warmup + args.seconds
    try:
        if offsets is None:  # max: the callback benchmark's closed loop (loadgen starts 0.5 s + 2 ms/conn later)
            time.sleep(max(0.0, start_wall - 0.5 - 0.002 * args.connections - time.time()))
            result = loadgen.run("127.0.0.1", port, requests, connections=args.connections, seconds=total)
        else:
            loop = loadgen._new_loop()
            result = loop.run_until_complete(drive_open(port, requests, offsets, args.open_connections, start_wall,
                                                        total))
            loop.close()
        out.send(("ok", result))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        out.send(("error", f"{type(exc).__name__}: {exc}"))


# ---------------------------------------------------------------------------------------------- setup

def write_full_config(path: Path, creds: Credentials, port: int, db_url: str, redis_url: str, prefix: str) -> None:
    """bench/callback.py's config, plus config.example.toml's intents and content library."""
    cb.write_config(path, creds, port, db_url, redis_url, prefix)
    example = tomllib.loads((REPO / "config.example.toml").read_text(encoding="utf-8"))
    lines = []
    for header, tables in (("intents", example["intents"]), ("content.items", example["content"]["items"])):
        for table in tables:
            lines += ["", f"[[{header}]]", *(f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in table.items())]
    with path.open("a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


async def seed_probes(config_path: Path, openids: list[str]) -> list[int]:
    """Probe leads through LeadRepository with the server's scoring model; checks they are nurture / lead."""
    from bot.config.core import load_config
    from leads.identity import OA_OPENID, IdentityKey
    from leads.scoring import ScoreModel
    from leads.sources import Source
    from storage.db import create_engine, session_factory
    from storage.repos.leads import LeadRepository

    cfg = load_config(config_path, cb.server_env({}))
    engine = create_engine(cfg.database)
    sessions, model, at = session_factory(engine), ScoreModel(cfg.scoring.rules), datetime.now(UTC) - timedelta(hours=1)
    ids = []
    try:
        for openid in openids:
            async with sessions() as session, session.begin():
                repo = LeadRepository(session, model)
                lead = await repo.resolve([IdentityKey(OA_OPENID, cfg.wechat.app_id, openid)], now=at, inbox_id=None)
                await repo.merge_profile(lead, PROBE_PROFILE)
                for kind, channel, scene, detail in SEED_TOUCHES:
                    await repo.add_touchpoint(lead, kind=kind, source=Source(channel, scene), occurred_at=at,
                                              inbox_id=None, detail=detail)
                ids.append(lead.id)
        async with engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            states = [tuple(r) for r in await raw.fetch(
                "SELECT s.quadrant, l.stage, count(*) FROM lead_scores s JOIN leads l ON l.id = s.lead_id "
                "WHERE s.lead_id = ANY($1::bigint[]) GROUP BY 1, 2", ids)]
    finally:
        await engine.dispose()
    if states != [("nurture", "lead", len(ids))]:
        raise SetupError(f"seeded probes are not all nurture / lead: {states}")
    return ids


async def wait_drained(dsn: str, limit_s: float) -> tuple[float, int]:
    """Until no inbox row is pending (or limit_s): each phase starts from an empty backlog."""
    import asyncpg

    conn, started = await asyncpg.connect(dsn), time.monotonic()
    try:
        while True:
            left = await conn.fetchval("SELECT count(*) FROM inbox WHERE status = 'pending'")
            if not left or time.monotonic() - started > limit_s:
                return time.monotonic() - started, left
            await asyncio.sleep(0.25)
    finally:
        await conn.close()


# --------------------------------------------------------------------------------------------- probes

async def send_probe(port: int, creds: Credentials, probe: Probe, msg_id: int) -> None:
    from bot.ingress.simulate import OASimulator, oa_text

    signed = OASimulator(creds.token, creds.app_id, creds.aes_key).post(oa_text(probe.openid, PROBE_TEXT, msg_id))
    try:
        async with asyncio.timeout(5):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(loadgen.http_request(f"{cb.PATH}?{signed.query}", signed.body))
            head = (await reader.readuntil(b"\r\n\r\n")).lower()
            body = await reader.readexactly(int(head.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0]))
            probe.answered, probe.answered_wall = time.perf_counter(), time.time()
            writer.close()
    except (OSError, TimeoutError, IndexError, ValueError, asyncio.IncompleteReadError) as exc:
        probe.error = f"{type(exc).__name__}: {exc}"
        return
    if head[9:12] != b"200" or not (body == b"success" or body.startswith(b"<xml>")):
        probe.error = f"HTTP {head[9:12].decode()} {body[:60]!r}"


async def measure(phase: Phase, port: int, dsn: str, creds: Credentials, first_msg_id: int, start_wall: float,
                  args: argparse.Namespace, server_pid: int) -> None:
    """Probes during the measured seconds; stage_transitions polled until each is an MQL or timed out."""
    import asyncpg

    poll, aux = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    probes, by_lead, sending = phase.probes, {p.lead_id: p for p in phase.probes}, [True]

    async def poller() -> None:
        while sending[0] or any(p.waiting(time.perf_counter(), args.probe_timeout) for p in probes):
            began = time.perf_counter()
            ids = [p.lead_id for p in probes if not math.isnan(p.answered) and p.waiting(began, args.probe_timeout)]
            for lead_id, at in await poll.fetch("SELECT lead_id, min(occurred_at) FROM stage_transitions WHERE "
                                                "to_stage = 'mql' AND lead_id = ANY($1::bigint[]) GROUP BY 1", ids):
                by_lead[lead_id].observed, by_lead[lead_id].occurred_at = began, at.timestamp()
            await asyncio.sleep(max(0.0, args.poll_ms / 1000 - (time.perf_counter() - began)))

    async def until(wall: float) -> None:
        await asyncio.sleep(max(0.0, wall - time.time()))

    watcher, sends, window0 = asyncio.create_task(poller()), [], start_wall + args.warmup
    phase.cpu = Sampler(server_pid)
    await until(window0)
    phase.cpu.start()
    for i, probe in enumerate(probes):
        await until(window0 + (i + 0.5) * args.seconds / len(probes))
        sends.append(asyncio.create_task(send_probe(port, creds, probe, first_msg_id + i)))
    await until(window0 + args.seconds)
    phase.cpu.end()
    phase.pending_end = await aux.fetchval("SELECT count(*) FROM inbox WHERE status = 'pending'")
    await asyncio.gather(*sends)
    sending[0] = False
    await watcher
    window = (datetime.fromtimestamp(window0, UTC), datetime.fromtimestamp(window0 + args.seconds, UTC))
    sql = "SELECT count(*) FROM inbox WHERE {0} >= $1 AND {0} < $2"
    phase.processed = await aux.fetchval(sql.format("processed_at"), *window)
    phase.ingested = await aux.fetchval(sql.format("received_at"), *window)
    await poll.close()
    await aux.close()


def run_phase(phase: Phase, port: int, pid: int, dsn: str, creds: Credentials, ids: MsgIds,
              args: argparse.Namespace) -> Phase:
    phase.drain_s, phase.drain_left = asyncio.run(wait_drained(dsn, args.drain_timeout))
    total, offsets, child, start_wall = args.warmup + args.seconds, None, None, time.time() + 0.5
    if phase.label != "max" and float(phase.label) > 0:
        rate, rng, t, offsets = float(phase.label), random.Random(phase.label), 0.0, []
        while (t := t + (rng.expovariate(rate) if args.arrivals == "poisson" else 1 / rate)) < total:
            offsets.append(int(t * 1e9))
    if phase.label == "max" or offsets:
        count = len(offsets) if offsets else min(400_000, int(args.max_rate_guess * total))
        requests, _ = cb.build_requests(creds, ids, count, 2)
        ctx, start_wall = multiprocessing.get_context("fork"), time.time() + 1.5
        parent_end, child_end = ctx.Pipe(duplex=False)
        child = ctx.Process(target=_load_child, args=(child_end, port, requests, offsets, args, start_wall))
        child.start()
        child_end.close()
        del requests
    asyncio.run(measure(phase, port, dsn, creds, ids.take(len(phase.probes)), start_wall, args, pid))
    if child is not None:
        status, phase.load = parent_end.recv() if parent_end.poll(60) else ("error", "load client did not report")
        child.join(10)
        if child.is_alive():
            child.kill()
        if status != "ok":
            raise RuntimeError(f"background load failed: {phase.load}")
    return phase


# --------------------------------------------------------------------------------------------- report

def quantile(values: list[float], q: float) -> float:
    return sorted(values)[max(0, math.ceil(q * len(values)) - 1)] if values else NAN


def _s(value: float, timeout: float = 0) -> str:
    return f"> {timeout:g} s" if value == INF else "-" if math.isnan(value) else f"{value * 1000:,.0f} ms"


def report(phases: list[Phase], args: argparse.Namespace) -> int:
    header = ["bg rate", "bg msgs/s", "errors", "ingested/s", "processed/s", "server cpu", "pg cpu", "other cpu",
              "probes", "p50", "p95", "p99", "max", "misses", "pending end", "drained in", "p99 vs rate 0", "p99<=1s"]
    base = next((quantile(ph.latencies(), 0.99) for ph in phases if ph.label in ("0", "0.0")), NAN)
    table, status = [], 0
    for ph in phases:
        lat, res = ph.latencies(), ph.load
        p99, client = quantile(lat, 0.99), res.cpu_s / res.elapsed_s * 100 if res else 0.0
        errors = (res.error_count if res else 0) + len(ph.probes) - len(lat)
        status |= errors > 0
        table.append([ph.label, f"{res.rate() if res else 0:,.0f}", str(errors), f"{ph.ingested / args.seconds:,.0f}",
                      f"{ph.processed / args.seconds:,.0f}", f"{ph.cpu.server:.0f}%", f"{ph.cpu.pg:.0f}%",
                      f"{ph.cpu.machine * (os.cpu_count() or 1) - ph.cpu.server - ph.cpu.pg - client:.0f}%",
                      str(len(lat)), *(_s(quantile(lat, q), args.probe_timeout) for q in (0.5, 0.95, 0.99, 1.0)),
                      str(lat.count(INF)), f"{ph.pending_end:,}",
                      f"{ph.drain_s:.1f} s" + (f" ({ph.drain_left:,} left)" if ph.drain_left else ""),
                      "-" if p99 == INF or not base > 0 else f"{p99 / base:.2f}x",
                      "met" if p99 <= TARGET_S else "NOT met"])
    widths = [max(len(str(c)) for c in col) for col in zip(header, *table, strict=True)]
    print(f"\n{args.probes} probes per phase over {args.seconds:g} s after a {args.warmup:g} s warm-up; background: "
          f"{args.arrivals} arrivals on {args.open_connections} connections, max = closed loop on {args.connections}; "
          f"poll every {args.poll_ms:g} ms. bg msgs/s: over warm-up + seconds; ingested/processed: inbox rows "
          "received / handled after the ack per measured second; CPU: % of one core ('other': everything else on "
          "the machine, incl. this script; > 20% = noisy)")
    for line in [header, ["-" * w for w in widths], *table]:
        print("  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(line, widths,
                                                                                                strict=True))))
    for ph in phases:
        server_side = [p.occurred_at - p.answered_wall for p in ph.probes if not math.isnan(p.occurred_at)]
        first = next((p.error for p in ph.probes if p.error), "") or (ph.load.first_error if ph.load else "")
        first += " (ran out of pre-built requests: raise --max-rate-guess)" if ph.load and ph.load.exhausted else ""
        print(f"  {ph.label}: row occurred_at - answer: p50 {_s(quantile(server_side, 0.5))}, p99 "
              f"{_s(quantile(server_side, 0.99))}" + (f"; first error: {first}" if first else ""))
    return int(status)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rates", default="0,50,100,200,max", help="background msgs/s per phase, or max (closed loop)")
    p.add_argument("--seconds", type=float, default=20.0, help="measured seconds per phase")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of background load before the probes")
    p.add_argument("--probes", type=int, default=200, help="probe leads per phase")
    p.add_argument("--probe-timeout", type=float, default=30.0, help="a probe not an MQL by then is a miss")
    p.add_argument("--poll-ms", type=float, default=15.0, help="stage_transitions poll interval")
    p.add_argument("--connections", type=int, default=32, help="connections of the max phase")
    p.add_argument("--open-connections", type=int, default=8, help="connections of the open-loop phases")
    p.add_argument("--arrivals", choices=("poisson", "even"), default="poisson", help="open-loop send times")
    p.add_argument("--max-rate-guess", type=float, default=6000, help="requests built per second of the max phase")
    p.add_argument("--drain-timeout", type=float, default=300.0, help="longest wait for an empty inbox per phase")
    p.add_argument("--database-url", help=f"database to create (default {cb.DEFAULT_DB.format(run='<random>')})")
    p.add_argument("--keep-database", action="store_true", help="do not drop the database at the end")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--logs", type=Path, metavar="DIR", help="keep the server log in DIR")
    args = p.parse_args(argv)
    args.labels = [r.strip() for r in args.rates.split(",") if r.strip()]
    if not args.labels or not all(r == "max" or r.replace(".", "", 1).isdigit() for r in args.labels):
        p.error("--rates: comma-separated numbers (msgs/s) or max")
    if not 1 <= args.seconds + args.warmup <= cb.MAX_SECONDS or args.warmup < 0:
        p.error(f"--warmup + --seconds must be 1..{cb.MAX_SECONDS} (message timestamps must stay fresh)")
    if not 1 <= args.probes <= 10_000 or not 1 <= args.connections <= loadgen.MAX_CONNECTIONS:
        p.error("--probes must be 1..10000, --connections 1..512")
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"command: {cb.command_line()}", flush=True)
    run_id, creds, ids = secrets.token_hex(4), cb.random_credentials(), MsgIds()
    db_url = args.database_url or cb.DEFAULT_DB.format(run=run_id)
    prefix, tmp = f"leadrelay_bench_{run_id}:", Path(tempfile.mkdtemp(prefix="leadrelay-mql-"))
    log, port, phases, created = (args.logs or tmp) / "leadrelay.log", cb.free_port(), [], False
    try:
        cb.create_database(db_url, False)
        created = True
        print(f"database {cb.db_name(db_url)}: {cb.durability_settings(db_url)}", flush=True)
        idle = Sampler(None)
        idle.start()
        time.sleep(2)
        idle.end()
        print(f"before the run (2 s): machine {idle.machine * (os.cpu_count() or 1):.0f}% busy of "
              f"{(os.cpu_count() or 1) * 100}%, PostgreSQL {idle.pg:.0f}% (other users' load)", flush=True)
        config = tmp / "leadrelay.toml"
        write_full_config(config, creds, port, db_url, args.redis_url, prefix)
        up = subprocess.run([*cb.leadrelay_cmd(), "db", "upgrade", "--config", str(config)], cwd=REPO,
                            env=cb.server_env({}), capture_output=True, text=True, timeout=180)
        if up.returncode != 0:
            raise SetupError(f"leadrelay db upgrade failed:\n{up.stdout}\n{up.stderr}")
        openids = [f"oProbe{n:02d}{run_id}{i:012d}" for n in range(len(args.labels)) for i in range(args.probes)]
        lead_ids = asyncio.run(seed_probes(config, openids))
        print(f"seeded {len(lead_ids):,} probe leads (ability 40, motivation 31: nurture, stage lead)", flush=True)
        with cb.server([*cb.leadrelay_cmd(), "serve", "--config", str(config)], cb.server_env({}), port, log) as proc:
            for n, label in enumerate(args.labels):
                chunk = range(n * args.probes, (n + 1) * args.probes)
                phase = Phase(label, [Probe(openids[k], lead_ids[k]) for k in chunk])
                phases.append(run_phase(phase, port, proc.pid, cb._asyncpg_dsn(db_url), creds, ids, args))
                print(f"  {label}: bg {phase.load.rate() if phase.load else 0:,.0f} msgs/s, p99 "
                      f"{_s(quantile(phase.latencies(), 0.99), args.probe_timeout)}, misses "
                      f"{phase.latencies().count(INF)}, pending at the end {phase.pending_end:,}, drained in "
                      f"{phase.drain_s:.1f} s before", flush=True)
    except SetupError as exc:
        print(f"setup failed: {exc}\n{cb._tail(log)}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"run failed: {exc}\n{cb._tail(log)}", file=sys.stderr)
        return 1
    finally:
        if created and not args.keep_database:
            cb.drop_database(db_url)
        cb.clean_redis(args.redis_url, prefix)
        shutil.rmtree(tmp, ignore_errors=True)
    status = report(phases, args)
    print(f"\ncommand: {cb.command_line()}")
    return status


if __name__ == "__main__":
    sys.exit(main())
