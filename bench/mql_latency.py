"""MQL latency: a lead crossing the MQL threshold must be an MQL, routed and pushed within 1 s (p99) of its
callback's answer, while background traffic at a share of the same run's ingest ceiling is processed as it
arrives (no growing backlog).

    python bench/mql_latency.py --rates max,0,10%,25%,40%,60% --seconds 20

One ``leadrelay serve`` (bench/callback.py's temporary config plus config.example.toml's intents and content,
so "价格" scores visit_pricing) on a fresh PostgreSQL database. Probe leads are seeded through LeadRepository
(ability 40, motivation 31: nurture); one "想了解一下价格" (+20) makes them sales_ready, whose action is
stage:mql. Per phase: drain the inbox, run the callback benchmark's traffic at the rate (Poisson open loop,
``N%``: N percent of the ``max`` phase's answered msgs/s, or ``max``: its closed loop) and send each probe once
at evenly spread moments. A separate asyncpg connection polls stage_transitions and assignments; MQL / routed
latency = first poll seeing the probe's row - arrival of its 200 answer. With --push (default) the server runs
live against bench/handoff_latency.py's fake WeChat / WeCom API (a thread of this process) with a routing rule
and a team: pushed latency = the fake's receipt of the card naming the lead - the 200 answer.
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
from typing import Any

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
DEFAULT_RATES = "max,0,10%,25%,40%,60%"
STAGES = ("mql", "routed", "pushed")


@dataclass
class Probe:
    openid: str
    lead_id: int
    answered: float = NAN  # perf_counter when the 200 answer was complete
    answered_wall: float = NAN
    observed: float = NAN  # perf_counter when the poll that first saw the mql row was issued
    occurred_at: float = NAN  # that row's occurred_at (POSIX)
    error: str = ""
    routed: float = NAN  # perf_counter when the poll that first saw an assignments row was issued
    pushed_wall: float = NAN  # wall clock when the fake received the first card naming the lead

    def waiting(self, now: float, timeout_s: float, push: bool = False) -> bool:
        if self.error or now > self.answered + timeout_s:
            return False
        return math.isnan(self.observed) or push and (math.isnan(self.routed) or math.isnan(self.pushed_wall))

    @property
    def latency(self) -> float:
        return INF if math.isnan(self.observed) else self.observed - self.answered

    def stage_latency(self, stage: str) -> float:
        if stage == "mql":
            return self.latency
        if stage == "routed":
            return INF if math.isnan(self.routed) else self.routed - self.answered
        return INF if math.isnan(self.pushed_wall) else self.pushed_wall - self.answered_wall


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
    rate: float | None = None  # asked background msgs/s (open loop); None: max (closed loop)
    push: bool = False
    after_rows: int = 0  # inbox rows handled from the end of the measured seconds until none was pending
    after_s: float = 0.0
    after_left: int = 0
    after_cpu: CpuSampler | None = None

    def latencies(self, stage: str = "") -> list[float]:
        stage = stage or ("pushed" if self.push else "mql")
        return [p.stage_latency(stage) for p in self.probes if not p.error]

    def bg_rate(self) -> float:
        """The background msgs/s the backlog allowance is based on: asked (open loop) or answered (max)."""
        return self.rate if self.rate is not None else self.load.rate() if self.load else 0.0


class Sampler(CpuSampler):
    """callback.CpuSampler, but PostgreSQL's CPU includes backends that exited meanwhile (the server's pool
    closes overflow connections): the postmaster's cutime/cstime hold what its reaped children used."""

    wall = 0.0

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
        self.wall = max(time.monotonic() - self._t0, 1e-9)
        self.pg = (self.pg_cpu() - self.pg0) / self.wall * 100

    def server_cpu_s(self) -> float:
        return self.server / 100 * self.wall if self.wall and not math.isnan(self.server) else NAN


# ------------------------------------------------------------------------------------------ pure helpers

def parse_rates(text: str) -> tuple[list[str], str]:
    """``--rates`` -> phase labels and a note. Labels: ``max``, a number (msgs/s) or ``N%`` (of the ceiling).
    With any ``%`` label the ``max`` phase, which measures the ceiling, runs first (added or moved there)."""
    labels = [r.strip() for r in text.split(",") if r.strip()]
    for r in labels:
        if r == "max":
            continue
        number = r[:-1] if r.endswith("%") else r
        if not number.replace(".", "", 1).isdigit() or r.endswith("%") and not 0 < float(number):
            raise ValueError(f"--rates: {r!r} is not a number (msgs/s), N% (of the ceiling, N > 0) or max")
    if not labels:
        raise ValueError("--rates: comma-separated numbers (msgs/s), N% (of the ceiling) or max")
    note = ""
    if any(r.endswith("%") for r in labels) and labels[0] != "max":
        note = ("moved the max phase first" if "max" in labels else "added a max phase first") + \
            ": % rates are shares of the ingest ceiling it measures"
        labels = ["max", *(r for r in labels if r != "max")]
    return labels, note


def resolve_rate(label: str, ceiling: float | None) -> float | None:
    """msgs/s of a phase: None for max, the number, or the share of the ceiling (which must be known)."""
    if label == "max":
        return None
    if label.endswith("%"):
        if ceiling is None or not ceiling > 0:
            raise RuntimeError(f"rate {label}: no ingest ceiling measured (the max phase answered nothing)")
        return float(label[:-1]) / 100 * ceiling
    return float(label)


def backlog_allowed(rate: float, probes: int, seconds: float) -> float:
    """Pending rows at the end of a phase that still count as processed as it arrives: one second's worth of
    its arrivals (background rate + probes per second; with no background: the probes' rate)."""
    return rate + probes / seconds


def backlog_verdict(pending: int, rate: float, probes: int, seconds: float) -> str:
    return "ok" if pending <= backlog_allowed(rate, probes, seconds) else "GROWING"


def share_of_ceiling(rate: float, ceiling: float | None) -> float:
    return rate / ceiling if ceiling and ceiling > 0 else NAN


def open_connections(rate: float, asked: int) -> int:
    """Connections of an open-loop phase: --open-connections, or (0: auto) one per 20 msgs/s, 8..512, so that
    answers slowed by the load do not hold arrivals back (the loop sends only on an idle connection)."""
    return asked or max(8, min(loadgen.MAX_CONNECTIONS, math.ceil(rate / 20)))


def short_of(phase_rate: float | None, achieved: float) -> bool:
    """The background answered under 90% of the asked open-loop rate: that phase did not get its load."""
    return phase_rate is not None and phase_rate > 0 and achieved < 0.9 * phase_rate


class FixedIds:
    """MsgIds.take for ids the parent reserved: the load child builds its requests from them."""

    def __init__(self, first: int) -> None:
        self.first = first

    def take(self, n: int) -> int:
        return self.first

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



def _building_load_child(out: multiprocessing.connection.Connection, port: int, creds: Credentials, first_id: int,
                         count: int, offsets: list[int] | None, args: argparse.Namespace) -> None:
    """Builds its requests (MsgIds first_id..), says ("ready", n), waits for the start time, then _load_child.

    The parent may run the fake WeChat API in a thread and then starts this child with 'spawn': building here
    avoids both forking a pool next to that thread and pickling the requests over."""
    try:
        requests, _ = cb.build_requests(creds, FixedIds(first_id), count, 2)  # type: ignore[arg-type]
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        out.send(("error", f"building requests: {type(exc).__name__}: {exc}"))
        return
    out.send(("ready", len(requests)))
    start_wall = out.recv()
    _load_child(out, port, requests, offsets, args, start_wall)

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


POLL_SQL = ("SELECT 'mql', lead_id, min(occurred_at) FROM stage_transitions WHERE to_stage = 'mql' AND "
            "lead_id = ANY($1::bigint[]) GROUP BY 2 UNION ALL "
            "SELECT 'routed', lead_id, min(assigned_at) FROM assignments WHERE lead_id = ANY($2::bigint[]) GROUP BY 2")


async def after_load(phase: Phase, dsn: str, args: argparse.Namespace, server_pid: int) -> None:
    """From the end of the measured seconds until no inbox row is pending: rows handled, time, CPU."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        phase.after_cpu, t0 = Sampler(server_pid), time.time()
        phase.after_cpu.start()
        while True:
            left = await conn.fetchval("SELECT count(*) FROM inbox WHERE status = 'pending'")
            if not left or time.time() - t0 > args.drain_timeout:
                break
            await asyncio.sleep(0.1)
        phase.after_cpu.end()
        phase.after_s, phase.after_left = time.time() - t0, left
        phase.after_rows = await conn.fetchval(
            "SELECT count(*) FROM inbox WHERE processed_at >= $1 AND processed_at < $2",
            datetime.fromtimestamp(t0, UTC), datetime.fromtimestamp(time.time(), UTC))
    finally:
        await conn.close()


async def measure(phase: Phase, port: int, dsn: str, creds: Credentials, first_msg_id: int, start_wall: float,
                  args: argparse.Namespace, server_pid: int, fake: Any = None) -> None:
    """Probes during the measured seconds; stage_transitions and assignments polled (and the fake's cards
    looked at) until each probe is an MQL, routed and pushed, or timed out. After the measured seconds
    after_load times the drain of what is left."""
    import asyncpg

    poll, aux = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    probes, by_lead, sending, push = phase.probes, {p.lead_id: p for p in phase.probes}, [True], fake is not None

    def cards() -> None:
        seen = fake.card_times()
        for p in probes:
            if math.isnan(p.pushed_wall) and p.lead_id in seen:
                p.pushed_wall = seen[p.lead_id]

    async def poller() -> None:
        next_cards = 0.0
        while sending[0] or any(p.waiting(time.perf_counter(), args.probe_timeout, push) for p in probes):
            began = time.perf_counter()
            live = [p for p in probes if not math.isnan(p.answered) and p.waiting(began, args.probe_timeout, push)]
            mql = [p.lead_id for p in live if math.isnan(p.observed)]
            routed = [p.lead_id for p in live if push and math.isnan(p.routed)]
            for kind, lead_id, at in await poll.fetch(POLL_SQL, mql, routed) if mql or routed else []:
                if kind == "mql":
                    by_lead[lead_id].observed, by_lead[lead_id].occurred_at = began, at.timestamp()
                else:
                    by_lead[lead_id].routed = began
            if push and began >= next_cards:  # the fake's receipt time is exact; looking is O(requests)
                cards()
                next_cards = began + 0.2
            await asyncio.sleep(max(0.0, args.poll_ms / 1000 - (time.perf_counter() - began)))
        if push:
            cards()

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
    drain = asyncio.create_task(after_load(phase, dsn, args, server_pid))
    await asyncio.gather(*sends)
    sending[0] = False
    await watcher
    await drain
    window = (datetime.fromtimestamp(window0, UTC), datetime.fromtimestamp(window0 + args.seconds, UTC))
    sql = "SELECT count(*) FROM inbox WHERE {0} >= $1 AND {0} < $2"
    phase.processed = await aux.fetchval(sql.format("processed_at"), *window)
    phase.ingested = await aux.fetchval(sql.format("received_at"), *window)
    await poll.close()
    await aux.close()


def run_phase(phase: Phase, port: int, pid: int, dsn: str, creds: Credentials, ids: MsgIds,
              args: argparse.Namespace, fake: Any = None) -> Phase:
    phase.drain_s, phase.drain_left = asyncio.run(wait_drained(dsn, args.drain_timeout))
    total, offsets, child, start_wall = args.warmup + args.seconds, None, None, time.time() + 0.5
    if phase.rate is not None and phase.rate > 0:
        rng, t, offsets = random.Random(phase.label), 0.0, []
        while (t := t + (rng.expovariate(phase.rate) if args.arrivals == "poisson" else 1 / phase.rate)) < total:
            offsets.append(int(t * 1e9))
    if phase.rate is None or offsets:
        count = len(offsets) if offsets else min(400_000, int(args.max_rate_guess * total))
        # not fork while the fake runs in a thread of this process (handoff_latency does the same)
        ctx = multiprocessing.get_context("spawn" if fake is not None else "fork")
        parent_end, child_end = ctx.Pipe(duplex=True)
        load_args = argparse.Namespace(warmup=args.warmup, seconds=args.seconds, connections=args.connections,
                                       open_connections=open_connections(phase.rate or 0.0, args.open_connections))
        child = ctx.Process(target=_building_load_child,
                            args=(child_end, port, creds, ids.take(count), count, offsets, load_args))
        child.start()
        child_end.close()
        status, detail = parent_end.recv() if parent_end.poll(180) else ("error", "load client did not get ready")
        if status != "ready":
            child.kill()
            raise RuntimeError(f"background load failed: {detail}")
        # max: loadgen forks and connects for 0.5 s + 2 ms per connection before its start
        start_wall = time.time() + 0.5 + (0.5 + 0.002 * args.connections if offsets is None else 0.0)
        parent_end.send(start_wall)
    asyncio.run(measure(phase, port, dsn, creds, ids.take(len(phase.probes)), start_wall, args, pid, fake))
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


def _triple(values: list[float], timeout: float) -> str:
    """p50 / p99 / max in ms ('>30s' for a miss)."""
    def ms(v: float) -> str:
        return f">{timeout:g}s" if v == INF else "-" if math.isnan(v) else f"{v * 1000:,.0f}"
    return " / ".join(ms(quantile(values, q)) for q in (0.5, 0.99, 1.0))


def ceiling_of(phases: list[Phase]) -> float | None:
    """The ingest ceiling: answered background msgs/s of the (first) max phase."""
    return next((ph.load.rate() for ph in phases if ph.rate is None and ph.load), None)


def _rate_label(ph: Phase) -> str:
    return f"{ph.label} = {ph.rate:,.0f}" if ph.label.endswith("%") and ph.rate is not None else ph.label


def _per_event(ph_cpu: Sampler | CpuSampler | None, events: int) -> str:
    cpu_s = ph_cpu.server_cpu_s() if isinstance(ph_cpu, Sampler) else NAN
    return f"{cpu_s / events * 1000:.2f} ms" if events and not math.isnan(cpu_s) else "-"


def holds(ph: Phase, args: argparse.Namespace) -> bool:
    lat = ph.latencies()
    return (bool(lat) and not short_of(ph.rate, ph.load.rate() if ph.load else 0.0) and quantile(lat, 0.99) <= TARGET_S
            and backlog_verdict(ph.pending_end, ph.bg_rate(), len(ph.probes), args.seconds) == "ok")


def summary(phases: list[Phase], args: argparse.Namespace) -> list[str]:
    ceiling, target = ceiling_of(phases), "pushed" if args.push else "MQL"
    out = []
    if ceiling:
        out.append(f"ingest ceiling (max phase, closed loop on {args.connections} connections): {ceiling:,.0f} msgs/s "
                   "answered")
    open_phases = sorted((ph for ph in phases if ph.rate is not None and ph.rate > 0), key=lambda ph: ph.rate)

    def name(ph: Phase) -> str:
        share = share_of_ceiling(ph.bg_rate(), ceiling)
        return f"{ph.label}" + (f" ({ph.bg_rate():,.0f} msgs/s)" if ph.label.endswith("%") else
                                f" ({share:.0%} of the ceiling)" if not math.isnan(share) else "")

    good = [ph for ph in open_phases if holds(ph, args)]
    bad = [ph for ph in open_phases if not holds(ph, args)]
    if good:
        out.append(f"holds (backlog ok, {target} p99 <= {TARGET_S:g} s) up to {name(good[-1])}"
                   + (f" = {share_of_ceiling(good[-1].bg_rate(), ceiling):.0%} of the ceiling" if ceiling else ""))
    elif open_phases:
        out.append("holds at none of the loaded phases")
    if bad:
        why = []
        p99 = quantile(bad[0].latencies(), 0.99)
        if backlog_verdict(bad[0].pending_end, bad[0].bg_rate(), len(bad[0].probes), args.seconds) != "ok":
            why.append(f"backlog growing: {bad[0].pending_end:,} pending at the end")
        if not p99 <= TARGET_S:
            why.append(f"{target} p99 {_s(p99, args.probe_timeout)}")
        if short_of(bad[0].rate, bad[0].load.rate() if bad[0].load else 0.0):
            why.append(f"the load client answered only {bad[0].load.rate() if bad[0].load else 0:,.0f} msgs/s")
        out.append(f"first break: {name(bad[0])}: " + ", ".join(why))
    elif open_phases:
        out.append("no loaded phase broke")
    for ph in phases:
        if ph.rate == 0:
            rate = ph.processed / args.seconds
            out.append(f"after-ack processing with no traffic (rate 0, only the probes): {rate:,.1f} events/s"
                       + (f" = {share_of_ceiling(rate, ceiling):.3f} x the ceiling" if ceiling else "")
                       + f", {_per_event(ph.cpu, ph.processed)} server CPU per event (incl. answering them and "
                       "the server's idle work)")
            break
    mx = next((ph for ph in phases if ph.rate is None), None)
    if mx is not None and mx.after_cpu is not None:
        rate = mx.after_rows / mx.after_s if mx.after_s > 0 else NAN
        left = f", {mx.after_left:,} still pending after --drain-timeout" if mx.after_left else ""
        out.append(f"after-ack processing of the max phase's backlog: {mx.after_rows:,} events in {mx.after_s:.1f} s "
                   f"= {rate:,.0f} events/s" + (f" = {share_of_ceiling(rate, ceiling):.2f} x the ceiling"
                                                if ceiling else "")
                   + f", {_per_event(mx.after_cpu, mx.after_rows)} server CPU per event (server "
                   f"{mx.after_cpu.server:.0f}% of a core), PostgreSQL {mx.after_cpu.pg:.0f}%{left}")
    return out


def report(phases: list[Phase], args: argparse.Namespace) -> int:
    stages = STAGES if args.push else ("mql",)
    target = "pushed" if args.push else "MQL"
    ceiling = ceiling_of(phases)
    header = ["bg rate", "bg msgs/s", "errors", "ingested/s", "processed/s", "proc/ceiling", "server cpu",
              "pg cpu", "other cpu", "probes", *(f"{s} p50/p99/max ms" for s in stages), "misses", "pending end",
              "backlog", "drained in", "p99 vs rate 0", f"{target} p99<=1s"]
    base = next((quantile(ph.latencies(), 0.99) for ph in phases if ph.rate == 0), NAN)
    table, status = [], 0
    for ph in phases:
        lat, res = ph.latencies(), ph.load
        p99, client = quantile(lat, 0.99), res.cpu_s / res.elapsed_s * 100 if res else 0.0
        errors = (res.error_count if res else 0) + len(ph.probes) - len(lat)
        status |= errors > 0
        processed = ph.processed / args.seconds
        short = "!" if short_of(ph.rate, res.rate() if res else 0.0) else ""
        table.append([_rate_label(ph), f"{short}{res.rate() if res else 0:,.0f}", str(errors),
                      f"{ph.ingested / args.seconds:,.0f}", f"{processed:,.0f}",
                      f"{share_of_ceiling(processed, ceiling):.2f}", f"{ph.cpu.server:.0f}%", f"{ph.cpu.pg:.0f}%",
                      f"{ph.cpu.machine * (os.cpu_count() or 1) - ph.cpu.server - ph.cpu.pg - client:.0f}%",
                      str(len(lat)), *(_triple(ph.latencies(s), args.probe_timeout) for s in stages),
                      str(lat.count(INF)), f"{ph.pending_end:,}",
                      backlog_verdict(ph.pending_end, ph.bg_rate(), len(ph.probes), args.seconds),
                      f"{ph.drain_s:.1f} s" + (f" ({ph.drain_left:,} left)" if ph.drain_left else ""),
                      "-" if p99 == INF or not base > 0 else f"{p99 / base:.2f}x",
                      "met" if p99 <= TARGET_S else "NOT met"])
    widths = [max(len(str(c)) for c in col) for col in zip(header, *table, strict=True)]
    print(f"\n{args.probes} probes per phase over {args.seconds:g} s after a {args.warmup:g} s warm-up; background: "
          f"{args.arrivals} arrivals on {args.open_connections or 'max(8, rate/20)'} connections, max = closed loop on "
          f"{args.connections}; '!': under 90% of the asked rate answered (not a valid phase); "
          f"N% = N percent of the max phase's answered msgs/s; poll every {args.poll_ms:g} ms. "
          + (f"Live against the fake WeChat/WeCom API, {args.members} salespeople, one routing rule. " if args.push
             else "Sandbox (--no-push): MQL only. ")
          + "bg msgs/s: over warm-up + seconds; ingested/processed: inbox rows received / handled after the ack per "
          "measured second; proc/ceiling: processed/s / ceiling; backlog: pending at the end <= one second's worth "
          "(bg rate + probes/s); CPU: % of one core ('other': everything else on the machine, incl. this script; "
          "> 20% = noisy)")
    for line in [header, ["-" * w for w in widths], *table]:
        print("  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(line, widths,
                                                                                                strict=True))))
    for line in summary(phases, args):
        print(line)
    for ph in phases:
        server_side = [p.occurred_at - p.answered_wall for p in ph.probes if not math.isnan(p.occurred_at)]
        first = next((p.error for p in ph.probes if p.error), "") or (ph.load.first_error if ph.load else "")
        first += " (ran out of pre-built requests: raise --max-rate-guess)" if ph.load and ph.load.exhausted else ""
        after = ""
        if ph.pending_end and ph.after_cpu is not None and ph.after_s >= 0.5:
            after = (f"; after the load {ph.after_rows:,} events in {ph.after_s:.1f} s = "
                     f"{ph.after_rows / ph.after_s:,.0f}/s, {_per_event(ph.after_cpu, ph.after_rows)} server CPU "
                     f"each, PostgreSQL {ph.after_cpu.pg:.0f}%")
        print(f"  {ph.label}: mql row occurred_at - answer: p50 {_s(quantile(server_side, 0.5))}, p99 "
              f"{_s(quantile(server_side, 0.99))}; {_per_event(ph.cpu, ph.processed)} server CPU per processed "
              f"event in the window{after}" + (f"; first error: {first}" if first else ""))
    return int(status)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rates", default=DEFAULT_RATES,
                   help="per phase: background msgs/s, N%% of the ingest ceiling (the max phase's answered msgs/s, "
                        "measured first in the same run), or max (closed loop)")
    p.add_argument("--seconds", type=float, default=20.0, help="measured seconds per phase")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of background load before the probes")
    p.add_argument("--probes", type=int, default=200, help="probe leads per phase")
    p.add_argument("--probe-timeout", type=float, default=30.0, help="a probe not done by then is a miss")
    p.add_argument("--poll-ms", type=float, default=15.0, help="stage_transitions / assignments poll interval")
    p.add_argument("--push", action=argparse.BooleanOptionalAction, default=True,
                   help="live against the fake WeChat/WeCom API with a routing rule and a team: time MQL, routed "
                        "and pushed (--no-push: sandbox, MQL only)")
    p.add_argument("--members", type=int, default=50,
                   help="salespeople of the routed team (--push); WeCom takes 30 app messages a minute per member "
                        "(outbound.wecom_member_per_minute), so 200 probes in 15 s need 27 or more")
    p.add_argument("--connections", type=int, default=32, help="connections of the max phase")
    p.add_argument("--open-connections", type=int, default=0,
                   help="connections of the open-loop phases (0, the default: one per 20 msgs/s, at least 8)")
    p.add_argument("--arrivals", choices=("poisson", "even"), default="poisson", help="open-loop send times")
    p.add_argument("--max-rate-guess", type=float, default=6000, help="requests built per second of the max phase")
    p.add_argument("--drain-timeout", type=float, default=300.0, help="longest wait for an empty inbox per phase")
    p.add_argument("--database-url", help=f"database to create (default {cb.DEFAULT_DB.format(run='<random>')})")
    p.add_argument("--keep-database", action="store_true", help="do not drop the database at the end")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--logs", type=Path, metavar="DIR", help="keep the server log in DIR")
    args = p.parse_args(argv)
    try:
        args.labels, args.rates_note = parse_rates(args.rates)
    except ValueError as exc:
        p.error(str(exc))
    if not 1 <= args.seconds + args.warmup <= cb.MAX_SECONDS or args.warmup < 0:
        p.error(f"--warmup + --seconds must be 1..{cb.MAX_SECONDS} (message timestamps must stay fresh)")
    if not 1 <= args.probes <= 10_000 or not 1 <= args.connections <= loadgen.MAX_CONNECTIONS:
        p.error("--probes must be 1..10000, --connections 1..512")
    if not 1 <= args.members <= 1000 or not 0 <= args.open_connections <= loadgen.MAX_CONNECTIONS:
        p.error("--members must be 1..1000, --open-connections 0..512")
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"command: {cb.command_line()}", flush=True)
    if args.rates_note:
        print(f"rates {args.rates}: {args.rates_note} -> {','.join(args.labels)}", flush=True)
    run_id, creds, ids = secrets.token_hex(4), cb.random_credentials(), MsgIds()
    db_url = args.database_url or cb.DEFAULT_DB.format(run=run_id)
    prefix, tmp = f"leadrelay_bench_{run_id}:", Path(tempfile.mkdtemp(prefix="leadrelay-mql-"))
    log, port, phases, created, fake = (args.logs or tmp) / "leadrelay.log", cb.free_port(), [], False, None
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
        config, env = tmp / "leadrelay.toml", cb.server_env({})
        if args.push:
            import handoff_latency as hl  # imports this module: not at the top

            fake = hl.FakeThread(creds.app_id)
            env = cb.server_env(hl.write_config(config, creds, port, db_url, args.redis_url, prefix, fake.start()))
        else:
            write_full_config(config, creds, port, db_url, args.redis_url, prefix)
        up = subprocess.run([*cb.leadrelay_cmd(), "db", "upgrade", "--config", str(config)], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=180)
        if up.returncode != 0:
            raise SetupError(f"leadrelay db upgrade failed:\n{up.stdout}\n{up.stderr}")
        if args.push:
            asyncio.run(hl.seed_team(cb._asyncpg_dsn(db_url), args.members))
        openids = [f"oProbe{n:02d}{run_id}{i:012d}" for n in range(len(args.labels)) for i in range(args.probes)]
        lead_ids = asyncio.run(seed_probes(config, openids))
        print(f"seeded {len(lead_ids):,} probe leads (ability 40, motivation 31: nurture, stage lead)"
              + (f" and a team of {args.members} salespeople; live against the fake WeChat/WeCom API" if args.push
                 else ""), flush=True)
        with cb.server([*cb.leadrelay_cmd(), "serve", "--config", str(config)], env, port, log) as proc:
            for n, label in enumerate(args.labels):
                chunk = range(n * args.probes, (n + 1) * args.probes)
                phase = Phase(label, [Probe(openids[k], lead_ids[k]) for k in chunk],
                              rate=resolve_rate(label, ceiling_of(phases)), push=args.push)
                phases.append(run_phase(phase, port, proc.pid, cb._asyncpg_dsn(db_url), creds, ids, args, fake))
                lat = phase.latencies()
                print(f"  {_rate_label(phase)}: bg {phase.load.rate() if phase.load else 0:,.0f} msgs/s, "
                      f"{'pushed' if args.push else 'MQL'} p99 {_s(quantile(lat, 0.99), args.probe_timeout)}, misses "
                      f"{lat.count(INF)}, pending at the end {phase.pending_end:,} ("
                      f"{backlog_verdict(phase.pending_end, phase.bg_rate(), len(phase.probes), args.seconds)}), "
                      f"drained in {phase.drain_s:.1f} s before", flush=True)
    except SetupError as exc:
        print(f"setup failed: {exc}\n{cb._tail(log)}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"run failed: {exc}\n{cb._tail(log)}", file=sys.stderr)
        if not phases:
            return 1
        report(phases, args)
        return 1
    finally:
        if fake is not None:
            fake.stop()
        if created and not args.keep_database:
            cb.drop_database(db_url)
        cb.clean_redis(args.redis_url, prefix)
        shutil.rmtree(tmp, ignore_errors=True)
    status = report(phases, args)
    print(f"\ncommand: {cb.command_line()}")
    return status


if __name__ == "__main__":
    sys.exit(main())
