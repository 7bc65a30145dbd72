"""After-ack processing rate: how fast ``leadrelay serve`` works off its inbox, per process and scaled out.

    python bench/processing.py --events 30000 --layouts 1,2,4,ingest+2 [--baseline-checkout DIR]

Everything is managed here (databases created and dropped, Redis keys of the run deleted). For each measured
target: a fresh PostgreSQL database, ``leadrelay db upgrade``, then one ingest-only ``leadrelay serve``
(``LEADRELAY_INBOX__WORKERS=0``) is fed ``--events`` distinct signed OA text messages (bench/callback.py's
requests: 2,000 senders) by bench/loadgen.py's closed loop on 32 connections until all are stored, and stopped.
That backlog is then worked off by the target's layout:

* ``K``        K ``leadrelay serve`` processes (own port each, same config and database), started together,
               draining the backlog with no traffic;
* ``ingest+M`` no backlog: one ingest-only process receives open-loop traffic (Poisson, bench/mql_latency.py's
               ``drive_open`` in a forked child) at ``--feed-rate`` msgs/s for ``--feed-seconds`` while M
               processing-only processes (default workers, which see the rows only through their sweep of the
               inbox, run here with ``sweep_interval_s = sweep_grace_s = 0.5``) handle it.

Drain: a separate asyncpg connection polls the pending rows every ``--poll`` s (0.25) once every process
listens; the window runs from the last poll before the count first drops to the first poll that finds none
left (or ``--window`` s). events/s = rows handled in the window / its length. CPU (from /proc) over the same
window: the server processes' sum (% of one core, and ms per event), PostgreSQL (every backend, exited ones
included: bench/mql_latency.py's Sampler.pg_cpu) and ms per event.

``--mix intents`` (default): config.example.toml's intents, so every message is the pricing intent (a scored
touch); ``--mix fallback``: no intents, each message becomes a question for an SDR.

``--baseline-checkout DIR``: a git worktree of older code; the 1-process drain also runs with that checkout
(its own ingest-only server, ``db upgrade`` and ``serve`` as ``python -m bot.cli`` with cwd and PYTHONPATH = DIR)
and the ratio current / baseline is checked against the target: >= 4x.

Exit status: 0 when every target ran, 1 when a run failed (load errors), 2 when the setup failed.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
for _p in (str(REPO), str(BENCH_DIR)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import callback as cb  # noqa: E402 - database, config, server, request and CPU helpers
import loadgen  # noqa: E402
import mql_latency as ml  # noqa: E402 - full config (intents), PostgreSQL CPU, open-loop load

NAN = float("nan")
TARGET_RATIO = 4.0
INGEST_CONNECTIONS = 32
FEED_CONNECTIONS = 8
INGEST_ONLY = {"LEADRELAY_INBOX__WORKERS": "0"}
FAST_SWEEP = {"LEADRELAY_INBOX__SWEEP_GRACE_S": "0.5", "LEADRELAY_INBOX__SWEEP_INTERVAL_S": "0.5"}
DEFAULT_SWEEP_GRACE_S = 3.0  # [inbox] sweep_grace_s: rows younger than that are left to the process that stored them
ConfigWriter = Callable[[Path, cb.Credentials, int, str, str, str], None]


# ------------------------------------------------------------------------------------------ pure helpers

@dataclass(frozen=True)
class Layout:
    processes: int  # processes that handle inbox rows
    ingest: bool = False  # plus one ingest-only process fed open-loop traffic

    @property
    def name(self) -> str:
        return f"ingest+{self.processes}" if self.ingest else str(self.processes)


def parse_layouts(text: str) -> list[Layout]:
    """``1,2,4,ingest+2`` -> layouts; raises ValueError on anything else."""
    out: list[Layout] = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        ingest = part.startswith("ingest+")
        count = part.removeprefix("ingest+")
        if not count.isdigit() or not 1 <= int(count) <= 16:
            raise ValueError(f"layout {part!r}: expected K or ingest+M with 1 <= K, M <= 16")
        layout = Layout(int(count), ingest)
        if layout in out:
            raise ValueError(f"layout {part!r} given twice")
        out.append(layout)
    if not out:
        raise ValueError("no layout given")
    return out


@dataclass(frozen=True)
class Snap:
    """One poll: pending rows and CPU seconds used so far (server processes, PostgreSQL, the machine)."""

    t: float
    pending: int
    servers: tuple[float, ...] = ()
    pg: float = 0.0
    busy: float = 0.0
    total: float = 0.0


def drain_window(snaps: list[Snap], window_s: float | None = None) -> tuple[int, int] | None:
    """Indices (start, end) of the measured window in the polls of a drain.

    Start: the last poll before the pending count first drops. End: the first poll with nothing pending, or
    the last poll within ``window_s`` of the start; with no drop at all, None.
    """
    start = next((i - 1 for i in range(1, len(snaps)) if snaps[i].pending < snaps[i - 1].pending), None)
    if start is None:
        return None
    end = start
    for i in range(start + 1, len(snaps)):
        if window_s is not None and snaps[i].t - snaps[start].t > window_s + 1e-9:
            break
        end = i
        if snaps[i].pending == 0:
            break
    return start, end


def backlog_verdict(pending_end: int, feed_rate: float) -> str:
    """'ok' when what is left at the end is at most one second's worth of the feed."""
    return "ok" if pending_end <= feed_rate else "GROWING"


def pick_feed_rate(given: float | None, one_process_rate: float | None) -> float:
    if given is not None:
        return given
    if not one_process_rate or one_process_rate != one_process_rate:
        raise cb.SetupError("--feed-rate is needed: no 1-process drain rate was measured before the ingest layout")
    return max(1.0, round(0.5 * one_process_rate))


def ratio_verdict(current: float, baseline: float, target: float = TARGET_RATIO) -> str:
    return "met" if baseline > 0 and current / baseline >= target else "NOT met"


# ------------------------------------------------------------------------------------------- results

@dataclass
class Row:
    code: str
    layout: Layout
    events: int = 0
    seconds: float = NAN
    server_cpu_s: float = NAN  # processing processes
    ingest_cpu_s: float = NAN  # the ingest-only process (ingest+M)
    pg_cpu_s: float = NAN
    machine: float = NAN  # % of all cores busy
    drained: bool = True
    fed: loadgen.Result | None = None
    feed_rate: float = NAN
    pending_end: int = 0
    pending_mid: int = 0  # ingest+M: halfway through the feed
    statuses: dict[str, int] = field(default_factory=dict)
    backlog: int = 0

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.events and self.seconds > 0 else NAN

    def pct(self, cpu_s: float) -> float:
        return cpu_s / self.seconds * 100 if self.seconds > 0 else NAN

    def per_event_ms(self, cpu_s: float) -> float:
        return cpu_s / self.events * 1000 if self.events else NAN


@dataclass
class Code:
    """Which server code runs: this checkout's installed ``leadrelay``, or another checkout's ``bot.cli``."""

    label: str
    checkout: Path | None = None

    def cmd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "bot.cli", *args] if self.checkout else [*cb.leadrelay_cmd(), *args]

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        env = cb.server_env(extra)
        if self.checkout:
            env["PYTHONPATH"] = str(self.checkout)
        return env

    @property
    def cwd(self) -> Path:
        return self.checkout or REPO


def describe_checkout(path: Path) -> str:
    try:
        sha = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return str(path)
    return f"{sha or '?'}{' + uncommitted changes' if dirty else ''}"


# ------------------------------------------------------------------------------------------- processes

@contextmanager
def servers(code: Code, specs: list[tuple[int, dict[str, str], Path]], config: Path) -> Iterator[list[int]]:
    """Start ``serve`` once per (port, env, log), all at once (cb.server starts one and waits), in the code's
    checkout; yields their pids once every one listens; SIGINT (graceful) at the end."""
    procs: list[subprocess.Popen] = []
    try:
        for port, extra, log in specs:
            cfg = config_for(config, port)
            with log.open("ab") as out:
                procs.append(subprocess.Popen(code.cmd("serve", "--config", str(cfg)), env=code.env(extra),
                                              stdout=out, stderr=subprocess.STDOUT, cwd=code.cwd,
                                              start_new_session=True))
        for proc, (port, _, log) in zip(procs, specs, strict=True):
            cb.wait_port(port, proc, log)
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def config_for(config: Path, port: int) -> Path:
    """Each process has its own config file (its port); the rest is the same."""
    return config.with_name(f"{config.stem}_{port}.toml")


def snapshot(pending: int, pids: list[int]) -> Snap:
    busy, total = cb._machine_busy()
    return Snap(time.monotonic(), pending, tuple(cb._proc_cpu(p) for p in pids), ml.Sampler.pg_cpu(), busy, total)


async def poll(dsn: str, pids: list[int], every_s: float, until: Callable[[list[Snap]], bool]) -> list[Snap]:
    """Pending rows and CPU counters every ``every_s`` until ``until(snaps)``."""
    import asyncpg

    conn, snaps = await asyncpg.connect(dsn), []
    try:
        while True:
            began = time.monotonic()
            snaps.append(snapshot(await conn.fetchval("SELECT count(*) FROM inbox WHERE status = 'pending'"), pids))
            if until(snaps):
                return snaps
            await asyncio.sleep(max(0.0, every_s - (time.monotonic() - began)))
    finally:
        await conn.close()


def apply_window(row: Row, a: Snap, b: Snap, processing: slice) -> None:
    row.seconds = b.t - a.t
    row.server_cpu_s = sum(b.servers[processing]) - sum(a.servers[processing])
    row.pg_cpu_s = b.pg - a.pg
    row.machine = (b.busy - a.busy) / max(b.total - a.total, 1e-9) * 100


# ------------------------------------------------------------------------------------------------ run

class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_id = secrets.token_hex(4)
        self.creds, self.ids = cb.random_credentials(), cb.MsgIds()
        self.tmp = Path(tempfile.mkdtemp(prefix="leadrelay-processing-"))
        self.logs = args.logs or self.tmp
        self.created: list[str] = []
        self.writer: ConfigWriter = ml.write_full_config if args.mix == "intents" else cb.write_config
        self.redis_prefix = f"leadrelay_bench_{self.run_id}_"

    # --- setup of one target
    def database(self, code: Code, n: int) -> tuple[str, Path, str]:
        """A fresh database upgraded by the code that will serve it; the config path stem and Redis prefix."""
        from sqlalchemy.engine import make_url

        base = self.args.database_url or cb.DEFAULT_DB.format(run=self.run_id)
        parsed = make_url(base)
        url = parsed.set(database=f"{parsed.database}_{n}").render_as_string(hide_password=False)
        cb.create_database(url, False)
        self.created.append(url)
        if n == 1:
            print(f"PostgreSQL: {cb.durability_settings(url)}", flush=True)
        config, prefix = self.tmp / f"t{n}.toml", f"{self.redis_prefix}{n}:"
        port = cb.free_port()
        self.write_configs(config, [port], url, prefix)  # for db upgrade
        up = subprocess.run(code.cmd("db", "upgrade", "--config", str(config_for(config, port))), cwd=code.cwd,
                            env=code.env({}), capture_output=True, text=True, timeout=180)
        if up.returncode != 0:
            raise cb.SetupError(f"{code.label}: db upgrade failed:\n{up.stdout}\n{up.stderr}")
        return url, config, prefix

    def write_configs(self, config: Path, ports: list[int], url: str, prefix: str) -> None:
        for port in ports:
            self.writer(config_for(config, port), self.creds, port, url, self.args.redis_url, prefix)

    def specs(self, config: Path, url: str, prefix: str, envs: list[dict[str, str]],
              name: str) -> list[tuple[int, dict[str, str], Path]]:
        ports = [cb.free_port() for _ in envs]
        self.write_configs(config, ports, url, prefix)
        return [(port, env, self.logs / f"{config.stem}_{name}_{i}.log")
                for i, (port, env) in enumerate(zip(ports, envs, strict=True))]

    def fill(self, code: Code, url: str, config: Path, prefix: str) -> tuple[int, float]:
        """The backlog: --events messages stored by an ingest-only server; (rows stored, when the last was)."""
        n = self.args.events
        requests, (first, end) = cb.build_requests(self.creds, self.ids, n, 2)
        specs = self.specs(config, url, prefix, [INGEST_ONLY], "ingest")
        with servers(code, specs, config):
            loop = loadgen._new_loop()
            try:
                result = loop.run_until_complete(loadgen.drive("127.0.0.1", specs[0][0], requests, INGEST_CONNECTIONS,
                                                               time.time() + 0.2, 3600.0, 5.0))
            finally:
                loop.close()
            stored_at = time.monotonic()
        del requests
        stored, statuses = cb.count_stored(url, self.creds.app_id, first, end)
        print(f"  ingest-only server: {result.ok:,} answered at {result.rate():,.0f} msgs/s, "
              f"{result.error_count} errors; inbox rows {stored:,} ({statuses})", flush=True)
        if result.error_count:
            raise RuntimeError(f"ingest errors: {dict(result.errors)}; first: {result.first_error}")
        if stored != n:
            raise RuntimeError(f"{stored:,} inbox rows for {n:,} messages sent")
        return stored, stored_at

    def statuses(self, url: str) -> dict[str, int]:
        rows = asyncio.run(cb._pg(cb._asyncpg_dsn(url), fetch="SELECT status, count(*) FROM inbox GROUP BY 1"))
        return {status: count for status, count in rows}

    def run_drain(self, code: Code, layout: Layout, n: int) -> Row:
        a, row = self.args, Row(code.label, layout)
        url, config, prefix = self.database(code, n)
        row.backlog, stored_at = self.fill(code, url, config, prefix)
        # Every row older than the sweep's grace: none is left for a later sweep round by its age alone.
        time.sleep(max(0.0, stored_at + DEFAULT_SWEEP_GRACE_S + 0.5 - time.monotonic()))
        specs = self.specs(config, url, prefix, [{}] * layout.processes, f"serve{layout.processes}")
        limit = a.window if a.window else a.max_drain

        def done(snaps: list[Snap]) -> bool:
            if snaps[-1].pending == 0:
                return True
            window = drain_window(snaps)
            return snaps[-1].t - (snaps[window[0]].t if window else snaps[0].t) >= limit

        with servers(code, specs, config) as pids:
            snaps = asyncio.run(poll(cb._asyncpg_dsn(url), pids, a.poll, done))
        window = drain_window(snaps, a.window)
        if window is None:
            raise RuntimeError(f"{code.label} {layout.name}: no row handled within {limit:g} s")
        start, end = snaps[window[0]], snaps[window[1]]
        row.events, row.pending_end = start.pending - end.pending, end.pending
        row.drained = end.pending == 0
        apply_window(row, start, end, slice(None))
        row.statuses = self.statuses(url)
        before = row.backlog - snaps[window[0]].pending
        print(f"  {layout.processes} process(es): {row.events:,} events in {row.seconds:.2f} s = {row.rate:,.0f}/s, "
              f"{row.per_event_ms(row.server_cpu_s):.2f} ms server CPU and {row.per_event_ms(row.pg_cpu_s):.2f} ms "
              f"PostgreSQL CPU per event" + (f"; {before:,} handled before the window" if before else "")
              + ("" if row.drained else f"; {row.pending_end:,} still pending"), flush=True)
        return row

    def run_feed(self, code: Code, layout: Layout, n: int, feed_rate: float) -> Row:
        a, row = self.args, Row(code.label, layout, feed_rate=feed_rate)
        url, config, prefix = self.database(code, n)
        rng, t, offsets = random.Random(n), 0.0, []
        while (t := t + rng.expovariate(feed_rate)) < a.feed_seconds:
            offsets.append(int(t * 1e9))
        requests, _ = cb.build_requests(self.creds, self.ids, len(offsets), 2)
        print(f"  processing-only processes run with {' '.join(f'{k}={v}' for k, v in FAST_SWEEP.items())}; "
              f"feed {feed_rate:,.0f} msgs/s (Poisson) for {a.feed_seconds:g} s on {FEED_CONNECTIONS} connections",
              flush=True)
        specs = self.specs(config, url, prefix, [INGEST_ONLY] + [FAST_SWEEP] * layout.processes,
                           f"ingest{layout.processes}")
        with servers(code, specs, config) as pids:
            ctx, start_wall = multiprocessing.get_context("fork"), time.time() + 1.5
            parent_end, child_end = ctx.Pipe(duplex=False)
            load_args = argparse.Namespace(warmup=0.0, seconds=a.feed_seconds, connections=FEED_CONNECTIONS,
                                           open_connections=FEED_CONNECTIONS)
            child = ctx.Process(target=ml._load_child, args=(child_end, specs[0][0], requests, offsets, load_args,
                                                             start_wall))
            child.start()
            child_end.close()
            del requests
            time.sleep(max(0.0, start_wall - time.time()))
            deadline = time.monotonic() + a.feed_seconds
            snaps = asyncio.run(poll(cb._asyncpg_dsn(url), pids, a.poll, lambda s: s[-1].t >= deadline))
            end_wall = start_wall + (snaps[-1].t - snaps[0].t)
            status, payload = parent_end.recv() if parent_end.poll(60) else ("error", "load client did not report")
            child.join(10)
            if child.is_alive():
                child.kill()
            if status != "ok":
                raise RuntimeError(f"feed load failed: {payload}")
            row.fed = payload
        start, end = snaps[0], snaps[-1]
        apply_window(row, start, end, slice(1, None))
        row.ingest_cpu_s = end.servers[0] - start.servers[0]
        row.pending_end = end.pending
        row.pending_mid = next(s.pending for s in snaps if s.t >= start.t + (end.t - start.t) / 2)
        processed = asyncio.run(cb._pg(cb._asyncpg_dsn(url), fetch="SELECT count(*) FROM inbox WHERE processed_at "
                                       ">= $1 AND processed_at < $2", args=(datetime.fromtimestamp(start_wall, UTC),
                                                                            datetime.fromtimestamp(end_wall, UTC))))
        row.events = processed[0][0]
        row.statuses = self.statuses(url)
        fed = row.fed
        print(f"  ingest+{layout.processes}: fed {fed.rate():,.0f} msgs/s ({fed.error_count} errors), processed "
              f"{row.rate:,.0f}/s, pending halfway {row.pending_mid:,}, at the end {row.pending_end:,}: "
              f"{backlog_verdict(row.pending_end, feed_rate)}", flush=True)
        if fed.error_count:
            raise RuntimeError(f"feed errors: {dict(fed.errors)}; first: {fed.first_error}")
        return row

    def plan(self) -> list[tuple[Code, Layout]]:
        current = Code(f"current {describe_checkout(REPO)}")
        base = Code(f"baseline {describe_checkout(self.args.baseline_checkout)}", self.args.baseline_checkout) \
            if self.args.baseline_checkout else None
        drains = [lay for lay in self.args.layout_list if not lay.ingest]
        plan: list[tuple[Code, Layout]] = []
        if base and Layout(1) not in drains:
            plan.append((base, Layout(1)))
        for lay in drains:
            plan.append((current, lay))
            if base and lay == Layout(1):
                plan.append((base, lay))
        return plan + [(current, lay) for lay in self.args.layout_list if lay.ingest]

    def run(self, rows: list[Row]) -> None:
        try:
            for n, (code, layout) in enumerate(self.plan(), start=1):
                print(f"{code.label}, layout {layout.name}:", flush=True)
                if layout.ingest:
                    one = next((r.rate for r in rows if r.code.startswith("current") and r.layout == Layout(1)), None)
                    rows.append(self.run_feed(code, layout, n, pick_feed_rate(self.args.feed_rate, one)))
                else:
                    rows.append(self.run_drain(code, layout, n))
        except RuntimeError:
            newest = max(self.logs.glob("*.log"), default=None, key=os.path.getmtime)
            if newest is not None:
                print(f"last lines of {newest.name}:\n{cb._tail(newest, 20)}", flush=True)
            raise
        finally:
            if not self.args.keep_database:
                for url in self.created:
                    cb.drop_database(url)
            cb.clean_redis(self.args.redis_url, self.redis_prefix)
            shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- report

def _f(value: float, fmt: str = "{:,.0f}") -> str:
    return "-" if value != value else fmt.format(value)


def report(rows: list[Row], args: argparse.Namespace) -> None:
    one = next((r.rate for r in rows if r.code.startswith("current") and r.layout == Layout(1)), NAN)
    header = ["code", "layout", "procs", "events", "window s", "events/s", "vs 1 proc", "server cpu", "ms cpu/event",
              "pg cpu", "pg ms/event", "machine", "ingest cpu", "fed/s", "pending mid", "pending end", "backlog"]
    table = []
    for r in rows:
        table.append([r.code, r.layout.name, f"1+{r.layout.processes}" if r.layout.ingest else str(r.layout.processes),
                      f"{r.events:,}", _f(r.seconds, "{:.2f}"), _f(r.rate),
                      _f(r.rate / one, "{:.2f}x") if r.code.startswith("current") else "-",
                      _f(r.pct(r.server_cpu_s), "{:.0f}%"), _f(r.per_event_ms(r.server_cpu_s), "{:.2f}"),
                      _f(r.pct(r.pg_cpu_s), "{:.0f}%"), _f(r.per_event_ms(r.pg_cpu_s), "{:.2f}"),
                      _f(r.machine * (os.cpu_count() or 1), "{:.0f}%"), _f(r.pct(r.ingest_cpu_s), "{:.0f}%"),
                      _f(r.fed.rate()) if r.fed else "-", f"{r.pending_mid:,}" if r.layout.ingest else "-",
                      f"{r.pending_end:,}" if r.layout.ingest or not r.drained
                      else "0", backlog_verdict(r.pending_end, r.feed_rate) if r.layout.ingest else "-"])
    widths = [max(len(str(c)) for c in col) for col in zip(header, *table, strict=True)]
    print(f"\n--mix {args.mix}, backlog {args.events:,} messages from 2,000 senders per drain layout, "
          f"{os.cpu_count()} cores. window: drains from the last poll before the first row was handled to the first "
          f"poll finding none pending ({'at most ' + format(args.window, 'g') + ' s' if args.window else 'or '}"
          f"{'' if args.window else format(args.max_drain, 'g') + ' s'}); ingest+M: the feed seconds, events = rows "
          "with processed_at in it. CPU in % of one core over the window: 'server cpu' the processing processes' "
          "sum, 'pg' PostgreSQL, 'machine' all cores busy, 'ingest cpu' the ingest-only process. ms/event: CPU "
          "time over the window / events. backlog: GROWING when more than one second of the feed is pending at the "
          "end (the sweep alone leaves up to ~1 s of it: grace 0.5 s + interval 0.5 s).")
    for line in [header, ["-" * w for w in widths], *table]:
        print("  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(line, widths,
                                                                                                     strict=True))))
    print()
    for r in rows:
        states = ", ".join(f"{k} {v:,}" for k, v in sorted(r.statuses.items()))
        print(f"{r.code} {r.layout.name}: inbox rows at the end: {states or 'none'}")
    base = next((r for r in rows if r.code.startswith("baseline")), None)
    cur = next((r for r in rows if r.code.startswith("current") and r.layout == Layout(1)), None)
    if base and cur:
        print(f"\n1 process, no traffic: current {cur.rate:,.0f} events/s ({cur.per_event_ms(cur.server_cpu_s):.2f} ms "
              f"CPU/event), baseline {base.rate:,.0f} events/s ({base.per_event_ms(base.server_cpu_s):.2f} ms "
              f"CPU/event): {cur.rate / base.rate:.2f}x, CPU per event "
              f"{cur.per_event_ms(cur.server_cpu_s) / base.per_event_ms(base.server_cpu_s):.2f}x; "
              f"target >= {TARGET_RATIO:g}x: {ratio_verdict(cur.rate, base.rate)}")


# ------------------------------------------------------------------------------------------------ CLI

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=30_000, help="backlog size per drain layout (default 30000)")
    p.add_argument("--layouts", default="1,2,4,ingest+2", help="K (K processes drain a backlog) or ingest+M "
                   "(one ingest-only process fed open-loop, M processing-only ones), comma-separated")
    p.add_argument("--mix", choices=("intents", "fallback"), default="intents",
                   help="intents: messages match config.example.toml's pricing intent (scored); fallback: no intents "
                   "(each message a question for an SDR)")
    p.add_argument("--baseline-checkout", type=Path, metavar="DIR",
                   help="a checkout of older code: its 1-process drain runs too, and current / baseline is reported")
    p.add_argument("--window", type=float, help="measure a fixed window of S seconds instead of the whole drain")
    p.add_argument("--max-drain", type=float, default=300.0, help="longest drain measured (default 300 s)")
    p.add_argument("--poll", type=float, default=0.25, help="pending-count poll interval (default 0.25 s)")
    p.add_argument("--feed-rate", type=float, help="ingest+M: msgs/s (default half the 1-process drain rate)")
    p.add_argument("--feed-seconds", type=float, default=20.0, help="ingest+M: seconds of traffic (default 20)")
    p.add_argument("--database-url", help="base database URL; target n gets NAME_n "
                   f"(default {cb.DEFAULT_DB.format(run='<random>')})")
    p.add_argument("--keep-database", action="store_true", help="do not drop the databases at the end")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--logs", type=Path, metavar="DIR", help="keep the servers' logs in DIR")
    args = p.parse_args(argv)
    try:
        args.layout_list = parse_layouts(args.layouts)
    except ValueError as exc:
        p.error(f"--layouts: {exc}")
    if not 100 <= args.events <= 400_000:
        p.error("--events must be between 100 and 400000")
    if args.window is not None and not 1 <= args.window <= 600:
        p.error("--window must be between 1 and 600 s")
    if not 1 <= args.max_drain <= 3600 or not 0.05 <= args.poll <= 5:
        p.error("--max-drain must be 1..3600 s, --poll 0.05..5 s")
    if args.feed_rate is not None and not 1 <= args.feed_rate <= 20_000:
        p.error("--feed-rate must be between 1 and 20000 msgs/s")
    if not 1 <= args.feed_seconds <= cb.MAX_SECONDS:
        p.error(f"--feed-seconds must be between 1 and {cb.MAX_SECONDS} (message timestamps must stay fresh)")
    if any(lay.ingest for lay in args.layout_list) and args.feed_rate is None and Layout(1) not in args.layout_list:
        p.error("an ingest+M layout needs --feed-rate or the layout 1 (whose drain rate sets the default)")
    if args.baseline_checkout is not None:
        args.baseline_checkout = args.baseline_checkout.resolve()
        if not (args.baseline_checkout / "bot" / "cli.py").is_file():
            p.error(f"--baseline-checkout {args.baseline_checkout}: no bot/cli.py there")
        if args.baseline_checkout == REPO:
            p.error("--baseline-checkout is this checkout")
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
    return args


def warn_connections(args: argparse.Namespace) -> None:
    """Each server may hold 2 x database.pool_size (10) connections: say so when a layout could run out."""
    processes = max(lay.processes + lay.ingest for lay in args.layout_list)
    admin = cb._asyncpg_dsn(args.database_url or cb.DEFAULT_DB.format(run="x"), "postgres")
    [(limit, used)] = asyncio.run(cb._pg(admin, fetch="SELECT current_setting('max_connections')::int, "
                                                     "(SELECT count(*) FROM pg_stat_activity)"))
    if processes * 20 + used + 2 > limit:
        print(f"warning: {processes} servers may open {processes * 20} connections; PostgreSQL allows {limit} and "
              f"{used} are in use", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"command: {cb.command_line()}", flush=True)
    idle = ml.Sampler(None)
    idle.start()
    time.sleep(2)
    idle.end()
    print(f"before the run (2 s): machine {idle.machine * (os.cpu_count() or 1):.0f}% busy of "
          f"{(os.cpu_count() or 1) * 100}%, PostgreSQL {idle.pg:.0f}% (other users' load"
          + ("; above 20%: the figures below are disturbed" if idle.machine * (os.cpu_count() or 1) > 20 else "")
          + ")", flush=True)
    bench, rows, status = Bench(args), [], 0
    warn_connections(args)
    try:
        bench.run(rows)
    except cb.SetupError as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        status = 2
    except RuntimeError as exc:
        print(f"run failed: {exc}", file=sys.stderr)
        status = 1
    if rows:
        report(rows, args)
    print(f"\ncommand: {cb.command_line()}")
    return status


if __name__ == "__main__":
    sys.exit(main())
