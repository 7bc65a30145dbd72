"""Callback throughput: LeadRelay against two baselines, driven by the same client in the same run.

    python bench/callback.py --connections 32 --seconds 10

By default everything is managed here: a fresh PostgreSQL database per LeadRelay server (dropped at the
end), ``leadrelay db upgrade``, then one at a time, each as its own single process with the same event loop
policy (uvloop when importable):

* ``bare``      bench/baselines.py: aiohttp answering ``success`` (nothing else),
* ``decrypt``   bench/baselines.py: wechatpy signature check + decrypt + parse_message, no storage,
* ``leadrelay`` ``leadrelay serve`` (sandbox, safe mode, PostgreSQL + Redis): every message is stored in the
  inbox (group commit) before its answer, then handled by the after-ack processor.

Each target gets a sanity request, a warm-up, then ``--seconds`` of load from ``--connections`` keep-alive
connections, each request a distinct, signed, AES-encrypted OA text message (distinct MsgId, current
timestamp) built before the clock starts. Errors are answers other than 200 with ``success`` or a passive
reply, answers slower than ``--timeout`` (WeChat gives up after 5 s), lost connections. Afterwards the inbox
rows of every MsgId sent to LeadRelay are counted: they must equal the messages it answered 200 (every
answered message stored).

Diagnostics: ``--ingest-only`` (a row with ``inbox.workers = 0``), ``--variant`` (more LeadRelay rows with
other settings), ``--drain`` (after-ack processing
rate with no load), ``--profile DIR`` (py-spy of each server during the measured seconds). See bench/README.md.

Exit status: 0 when there were no errors and the counts match, 1 otherwise, 2 when the setup failed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import multiprocessing
import os
import platform
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
if str(REPO) not in sys.path:  # `python bench/callback.py` from anywhere, installed or not
    sys.path.insert(0, str(REPO))
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import loadgen  # noqa: E402
from loadgen import Result  # noqa: E402

PATH = "/wechat/callback"
MAX_SECONDS = 120  # with generation and warm-up, well inside callback.max_timestamp_skew_s = 300
MAX_WARMUP = 30
DEFAULT_DB = "postgresql+asyncpg://postgres@127.0.0.1:5432/leadrelay_bench_{run}"
# Keys the bench sets itself; the same variables in the environment would silently point the server elsewhere.
CONTROLLED_ENV = ("LEADRELAY_SERVER__", "LEADRELAY_DATABASE__", "LEADRELAY_REDIS__", "LEADRELAY_WECHAT__",
                  "LEADRELAY_WECOM__")
TARGET_P99_MS, TARGET_RATE, TARGET_SHARE = 25.0, 4000.0, 0.5
CYCLED_REQUESTS = 30_000  # distinct requests built for the baselines, which are sent them round and round


@dataclass(frozen=True)
class Credentials:
    token: str
    aes_key: str
    app_id: str


@dataclass
class Target:
    name: str
    kind: str  # bare | decrypt | leadrelay | external
    env: dict[str, str] = field(default_factory=dict)
    url: str = ""  # external only


def row_stores(target: Target) -> bool:
    return target.kind in ("leadrelay", "external")


@dataclass
class Row:
    target: Target
    result: Result
    warm: Result
    sanity: Result
    server_cpu: float = float("nan")
    pg_cpu: float = float("nan")
    machine_cpu: float = float("nan")
    msgid_range: tuple[int, int] = (0, 0)
    drain: str = ""
    stored: int | None = None
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def stores(self) -> bool:
        return row_stores(self.target)

    @property
    def answered(self) -> int:
        return self.result.ok + self.warm.ok + self.sanity.ok

    @property
    def all_errors(self) -> int:
        return self.result.error_count + self.warm.error_count + self.sanity.error_count


# --------------------------------------------------------------------------------------------- requests

class MsgIds:
    """18-digit MsgIds unique to this run: a random 9-digit prefix, then a counter (string order = number order)."""

    def __init__(self) -> None:
        self.base = (10 ** 8 + secrets.randbelow(9 * 10 ** 8)) * 10 ** 9
        self.next = self.base

    def take(self, n: int) -> int:
        first, self.next = self.next, self.next + n
        if self.next - self.base >= 10 ** 9:
            raise RuntimeError("MsgId space of this run exhausted")
        return first


def _build_chunk(job: tuple[Credentials, int, int]) -> list[bytes]:
    from bot.ingress.simulate import OASimulator, oa_text

    creds, first, count = job
    sim = OASimulator(creds.token, creds.app_id, creds.aes_key)
    out = []
    for msg_id in range(first, first + count):
        n = msg_id % 100_000
        # 28-character openids like real ones; 2,000 distinct senders, several messages each.
        openid = f"oBench{msg_id // 10 ** 9 % 10 ** 9:09d}{n % 2000:013d}"
        signed = sim.post(oa_text(openid, f"你好，想了解一下企业版的价格和部署方式 #{n}", msg_id))
        out.append(loadgen.http_request(f"{PATH}?{signed.query}", signed.body))
    return out


def build_requests(creds: Credentials, ids: MsgIds, count: int, procs: int) -> tuple[list[bytes], tuple[int, int]]:
    """``count`` distinct encrypted text messages with current timestamps, built in ``procs`` processes."""
    first = ids.take(count)
    step = max(1, -(-count // max(1, procs * 4)))
    jobs = [(creds, start, min(step, first + count - start)) for start in range(first, first + count, step)]
    if procs <= 1 or count < 4000:
        chunks = [_build_chunk(job) for job in jobs]
    else:
        with multiprocessing.get_context("fork").Pool(procs) as pool:
            chunks = pool.map(_build_chunk, jobs)
    return [r for chunk in chunks for r in chunk], (first, first + count)


# ------------------------------------------------------------------------------------------ processes

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen | None, log: Path | None, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SetupError(f"server exited with status {proc.returncode} before listening\n{_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SetupError(f"nothing listens on 127.0.0.1:{port} after {timeout_s:.0f} s\n{_tail(log)}")


def _tail(log: Path | None, lines: int = 30) -> str:
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def server(cmd: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen]:
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                start_new_session=True)
    try:
        wait_port(port, proc, log)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # graceful: aiohttp's run_app drains and runs cleanup contexts
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


class SetupError(RuntimeError):
    pass


# ------------------------------------------------------------------------------------------- CPU use

_TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def _postgres_cpu() -> float:
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    total += _proc_cpu(int(entry.name))
            except OSError:
                continue
    return total


def _machine_busy() -> tuple[float, float]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / _TICK, sum(values) / _TICK


class CpuSampler:
    """CPU seconds used by the server, PostgreSQL and the whole machine between start() and end()."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self._t0 = self._srv0 = self._pg0 = 0.0
        self._m0 = (0.0, 0.0)
        self.server = self.pg = self.machine = float("nan")

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._srv0 = _proc_cpu(self.pid) if self.pid else 0.0
        self._pg0 = _postgres_cpu()
        self._m0 = _machine_busy()

    def end(self) -> None:
        wall = max(time.monotonic() - self._t0, 1e-9)
        if self.pid:
            self.server = (_proc_cpu(self.pid) - self._srv0) / wall * 100
        self.pg = (_postgres_cpu() - self._pg0) / wall * 100
        busy, total = _machine_busy()
        self.machine = (busy - self._m0[0]) / max(total - self._m0[1], 1e-9) * 100


class Profiler:
    """``py-spy record`` of the server during the measured seconds (``--profile DIR``), summarised as text."""

    def __init__(self, directory: Path | None, name: str, pid: int | None, seconds: float) -> None:
        self.out = directory / f"{name.replace(' ', '_').replace('=', '')}.txt" if directory and pid else None
        self.pid, self.seconds = pid, seconds
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        if self.out is None:
            return
        py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        if py_spy is None:
            raise SetupError("--profile needs py-spy: pip install py-spy")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([py_spy, "record", "-p", str(self.pid), "-f", "raw", "-o", str(self.out),
                                      "-d", str(max(1, int(self.seconds))), "-r", "200", "--nonblocking"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def finish(self) -> None:
        if self.proc is None or self.out is None:
            return
        try:
            _, err = self.proc.communicate(timeout=self.seconds + 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if not self.out.exists():
            print(f"  py-spy wrote no profile: {err.decode(errors='replace')[-300:]}", flush=True)
            return
        import profile_summary

        summary = profile_summary.summarise(profile_summary.load(self.out), 25, None)
        self.out.with_suffix(".summary.txt").write_text(summary + "\n", encoding="utf-8")
        print(f"  profile: {self.out} (summary: {self.out.with_suffix('.summary.txt')})", flush=True)


# ------------------------------------------------------------------------------------------ database

def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def _pg(dsn: str, *statements: str, fetch: str | None = None, args: tuple = ()) -> list:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        for statement in statements:
            await conn.execute(statement)
        return list(await conn.fetch(fetch, *args)) if fetch else []
    finally:
        await conn.close()


def db_name(url: str) -> str:
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    if not name or not name.replace("_", "").isalnum():
        raise SetupError(f"database name must be letters, digits and _: {name!r}")
    return name


def create_database(url: str, drop_existing: bool) -> None:
    name, admin = db_name(url), _asyncpg_dsn(url, "postgres")
    exists = asyncio.run(_pg(admin, fetch="SELECT 1 FROM pg_database WHERE datname = $1", args=(name,)))
    if exists and not drop_existing:
        raise SetupError(f"database {name} exists; pass --drop-existing to replace it (it is dropped at the end)")
    statements = ([f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'] if exists else []) + [f'CREATE DATABASE "{name}"']
    asyncio.run(_pg(admin, *statements))


def drop_database(url: str) -> None:
    asyncio.run(_pg(_asyncpg_dsn(url, "postgres"), f'DROP DATABASE IF EXISTS "{db_name(url)}" WITH (FORCE)'))


def count_stored(url: str, app_id: str, first: int, end: int) -> tuple[int, dict[str, int]]:
    """Inbox rows of this target's MsgIds [first, end), by status."""
    lo, hi = f"oa:{app_id}:msg:{first}", f"oa:{app_id}:msg:{end}"
    rows = asyncio.run(_pg(_asyncpg_dsn(url), fetch="SELECT status, count(*) FROM inbox WHERE dedup_key >= $1 "
                                                     "AND dedup_key < $2 GROUP BY status", args=(lo, hi)))
    statuses = {status: n for status, n in rows}
    return sum(statuses.values()), statuses


def measure_drain(url: str, pid: int, seconds: float, profiler: Profiler) -> str:
    """How fast the after-ack processor works off the backlog when no callbacks arrive, and its CPU cost."""
    sql = "SELECT count(*) FROM inbox WHERE status <> 'pending'"
    before = asyncio.run(_pg(_asyncpg_dsn(url), fetch=sql))[0][0]
    sampler = CpuSampler(pid)
    profiler.start()
    sampler.start()
    time.sleep(seconds)
    sampler.end()
    profiler.finish()
    handled = asyncio.run(_pg(_asyncpg_dsn(url), fetch=sql))[0][0] - before
    if not handled:
        return f"no rows handled in {seconds:g} s (server CPU {sampler.server:.0f}%)"
    cpu_ms = sampler.server / 100 * seconds / handled * 1000
    return (f"{handled / seconds:,.0f} events/s, {cpu_ms:.2f} ms server CPU per event "
            f"(server CPU {sampler.server:.0f}%, PostgreSQL {sampler.pg:.0f}%)")


def durability_settings(url: str) -> str:
    rows = asyncio.run(_pg(_asyncpg_dsn(url), fetch="SELECT name, setting FROM pg_settings WHERE name IN "
                                                    "('fsync', 'synchronous_commit', 'wal_sync_method') ORDER BY name"))
    return ", ".join(f"{name}={setting}" for name, setting in rows)


def clean_redis(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))[:100_000]
        if keys:
            client.delete(*keys)
    finally:
        client.close()


# ---------------------------------------------------------------------------------------------- run

def random_credentials() -> Credentials:
    aes_key = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return Credentials(token=f"bench{secrets.token_hex(8)}", aes_key=aes_key, app_id=f"wxbench{secrets.token_hex(5)}")


def write_config(path: Path, creds: Credentials, port: int, db_url: str, redis_url: str, prefix: str) -> None:
    def q(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    path.write_text(f"""# written by bench/callback.py
[server]
host = "127.0.0.1"
port = {port}
public_url = "http://127.0.0.1:{port}"

[database]
url = {q(db_url)}

[redis]
url = {q(redis_url)}
key_prefix = {q(prefix)}

[wechat]
app_id = {q(creds.app_id)}
token = {q(creds.token)}
encoding_aes_key = {q(creds.aes_key)}
mode = "sandbox"
""", encoding="utf-8")


def leadrelay_cmd() -> list[str]:
    script = Path(sys.executable).with_name("leadrelay")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli"]


def server_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(CONTROLLED_ENV)}
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.ids = MsgIds()
        self.tmp = Path(tempfile.mkdtemp(prefix="leadrelay-bench-"))
        self.run_id = secrets.token_hex(4)
        self.gen_procs = max(1, min(args.gen_procs, os.cpu_count() or 1))

    def requests(self, count: int) -> tuple[list[bytes], tuple[int, int]]:
        return build_requests(self.creds, self.ids, count, self.gen_procs)

    def measure(self, target: Target, port: int, pid: int | None) -> Row:
        a = self.args
        sanity_reqs, sanity_range = self.requests(1)
        sanity = loadgen.run("127.0.0.1", port, sanity_reqs, connections=1, seconds=0.001, timeout_s=a.timeout)
        if sanity.error_count:
            print(f"  {target.name}: sanity request failed: {sanity.first_error}", flush=True)
        # Targets that store nothing may see a message twice (the list is cycled): fewer requests to build.
        cycle = not row_stores(target)
        warm_count = max(a.connections * 20, int(a.warmup * a.warmup_rate))
        warm_reqs, warm_range = self.requests(min(warm_count, CYCLED_REQUESTS) if cycle else warm_count)
        warm = loadgen.run("127.0.0.1", port, warm_reqs, connections=a.connections, seconds=a.warmup,
                           timeout_s=a.timeout, processes=a.client_procs, cycle=cycle)
        del warm_reqs
        # Enough distinct requests for the warm-up's rate with a margin; each is sent at most once.
        factor = 3.0 if warm.exhausted else 1.6
        count = min(int(max(warm.rate(), 500.0) * a.seconds * factor) + a.connections * 50, a.max_requests)
        reqs, run_range = self.requests(min(count, CYCLED_REQUESTS) if cycle else count)
        sampler = CpuSampler(pid)
        profiler = Profiler(a.profile, target.name, pid, a.seconds)
        gc.collect()
        gc.freeze()
        result = loadgen.run("127.0.0.1", port, reqs, connections=a.connections, seconds=a.seconds,
                             timeout_s=a.timeout, processes=a.client_procs, cycle=cycle,
                             on_start=lambda: (profiler.start(), sampler.start()), on_end=sampler.end)
        gc.unfreeze()
        profiler.finish()
        del reqs
        row = Row(target, result, warm, sanity, sampler.server, sampler.pg, sampler.machine,
                  (sanity_range[0], run_range[1]))
        assert sanity_range[1] == warm_range[0] and warm_range[1] == run_range[0]
        exhausted = " (ran out of pre-built requests: raise --max-requests)" if result.exhausted else ""
        print(f"  {target.name}: {result.rate():,.0f} msgs/s, p50 {result.percentile_ms(0.5):.2f} ms, "
              f"p99 {result.percentile_ms(0.99):.2f} ms, errors {result.error_count}, "
              f"warm-up {warm.rate():,.0f} msgs/s{exhausted}", flush=True)
        return row

    def run(self, targets: list[Target]) -> list[Row]:
        a = self.args
        rows: list[Row] = []
        managed = any(t.kind == "leadrelay" for t in targets)
        self.db_url = a.database_url or (DEFAULT_DB.format(run=self.run_id) if managed else "")
        self.creds = random_credentials() if not a.target else self.external_credentials()
        self.created: list[str] = []
        prefix = f"leadrelay_bench_{self.run_id}:"
        try:
            for target in targets:
                rows.append(self.run_target(target, prefix))
        finally:
            for url in self.created:
                if not a.keep_database:
                    drop_database(url)
            if managed:
                clean_redis(a.redis_url, prefix)
            shutil.rmtree(self.tmp, ignore_errors=True)
        return rows

    def fresh_database(self) -> str:
        """A new database for each LeadRelay server, so none inherits another's backlog of pending rows."""
        from sqlalchemy.engine import make_url

        url = self.db_url
        if self.created:
            parsed = make_url(url)
            url = parsed.set(database=f"{parsed.database}_{len(self.created) + 1}").render_as_string(
                hide_password=False)
        print(f"  creating database {db_name(url)}", flush=True)
        create_database(url, self.args.drop_existing)
        self.created.append(url)
        if len(self.created) == 1:
            print(f"  PostgreSQL: {durability_settings(url)}", flush=True)
        return url

    def run_target(self, target: Target, prefix: str) -> Row:
        a = self.args
        print(f"{target.name}:", flush=True)
        if target.kind == "external":
            return self.count(self.measure(target, urlsplit(target.url).port or 80, a.target_pid), self.db_url)
        port = free_port()
        log = (a.logs or self.tmp) / f"{target.name.replace(' ', '_').replace('=', '')}.log"
        db_url = ""
        if target.kind in ("bare", "decrypt"):
            cmd = [sys.executable, str(BENCH_DIR / "baselines.py"), target.kind, "--port", str(port),
                   "--token", self.creds.token, "--aes-key", self.creds.aes_key, "--app-id", self.creds.app_id]
        else:
            db_url = self.fresh_database()
            config = self.tmp / f"leadrelay{len(self.created)}.toml"
            write_config(config, self.creds, port, db_url, a.redis_url, prefix)
            up = subprocess.run([*leadrelay_cmd(), "db", "upgrade", "--config", str(config)], cwd=REPO,
                                env=server_env({}), capture_output=True, text=True, timeout=180)
            if up.returncode != 0:
                raise SetupError(f"leadrelay db upgrade failed:\n{up.stdout}\n{up.stderr}")
            cmd = [*leadrelay_cmd(), "serve", "--config", str(config)]
        with server(cmd, server_env(target.env), port, log) as proc:
            row = self.measure(target, port, proc.pid)
            if db_url:
                self.count(row, db_url)  # while the server runs: the row states show whether processing keeps up
                if a.drain:
                    row.drain = measure_drain(db_url, proc.pid, a.drain,
                                              Profiler(a.profile, f"{target.name} drain", proc.pid, a.drain))
                    print(f"  after-ack processing with no load: {row.drain}", flush=True)
            if row.all_errors:
                tail = _tail(log, 15)
                if tail:
                    print(f"  last lines of the {target.name} log:\n" + tail, flush=True)
            return row

    def count(self, row: Row, db_url: str) -> Row:
        if db_url.startswith("postgresql"):
            row.stored, row.statuses = count_stored(db_url, self.creds.app_id, *row.msgid_range)
        return row

    def external_credentials(self) -> Credentials:
        from bot.config.core import load_config

        cfg = load_config(self.args.target_config, os.environ)
        if not cfg.wechat.encoding_aes_key:
            raise SetupError("the target's wechat.encoding_aes_key is empty: the bench sends encrypted messages")
        if not self.args.database_url and cfg.database.url.startswith("postgresql"):
            self.db_url = cfg.database.url
        return Credentials(cfg.wechat.token, cfg.wechat.encoding_aes_key, cfg.wechat.app_id)


# -------------------------------------------------------------------------------------------- report

def _ms(value: float) -> str:
    return "-" if value != value else f"{value:.2f}"


def _pct(value: float) -> str:
    return "-" if value != value else f"{value:.0f}%"


def report(rows: list[Row], args: argparse.Namespace) -> int:
    base = {r.target.kind: r.result.rate() for r in rows if r.target.kind in ("bare", "decrypt")}
    header = ["target", "msgs/s", "p50 ms", "p99 ms", "max ms", "errors", "vs bare", "vs decrypt",
              "server cpu", "postgres cpu", "client cpu", "other cpu"]
    table = []
    for r in rows:
        res = r.result
        ratio = {k: (f"{res.rate() / v:.2f}x" if r.stores and v else "") for k, v in base.items()}
        table.append([r.target.name, f"{res.rate():,.0f}", _ms(res.percentile_ms(0.5)), _ms(res.percentile_ms(0.99)),
                      _ms(res.percentile_ms(1.0)), str(res.error_count), ratio.get("bare", ""),
                      ratio.get("decrypt", ""), _pct(r.server_cpu), _pct(r.pg_cpu),
                      _pct(client_cpu := res.cpu_s / res.elapsed_s * 100),
                      _pct(r.machine_cpu * (os.cpu_count() or 1) - r.server_cpu - r.pg_cpu - client_cpu)])
    widths = [max(len(str(c)) for c in col) for col in zip(header, *table, strict=True)]
    print()
    print(f"{args.connections} connections, {args.seconds:g} s per target (after a {args.warmup:g} s warm-up), "
          f"{args.client_procs} client process(es), {os.cpu_count()} cores; CPU in % of one core, "
          "'other': everything else on the machine (py-spy, other users: >20% means a noisy measurement)")
    for line in [header, [("-" * w) for w in widths], *table]:
        print("  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(line, widths,
                                                                                                strict=True))))
    status = 0
    print()
    for r in rows:
        if r.all_errors:
            status = 1
            errs = r.result.errors + r.warm.errors + r.sanity.errors
            first = r.sanity.first_error or r.warm.first_error or r.result.first_error
            print(f"ERRORS {r.target.name}: {dict(errs)}; first: {first}")
        if not r.stores:
            continue
        if r.stored is None:
            print(f"{r.target.name}: stored count not checked (no PostgreSQL database URL)")
            status = 1
            continue
        verdict = "OK" if r.stored == r.answered else "MISMATCH"
        if r.stored != r.answered:
            status = 1
        states = ", ".join(f"{k} {v:,}" for k, v in sorted(r.statuses.items())) or "no rows"
        print(f"{r.target.name}: inbox rows {r.stored:,} vs messages answered 200 {r.answered:,} "
              f"(sanity + warm-up + run): {verdict}; row status at the end: {states}")
    for r in rows:
        if r.target.kind in ("leadrelay", "external") and not r.target.env:
            res = r.result
            decrypt = base.get("decrypt")
            share = res.rate() / decrypt if decrypt else float("nan")
            ok = res.rate() >= TARGET_RATE and res.percentile_ms(0.99) <= TARGET_P99_MS and \
                (share != share or share >= TARGET_SHARE)
            print(f"goal at 32 connections (>= {TARGET_RATE:,.0f} msgs/s, p99 <= {TARGET_P99_MS:g} ms, "
                  f">= {TARGET_SHARE:.0%} of decrypt): {'met' if ok else 'NOT met'} by {r.target.name}"
                  + ("" if args.connections == 32 else f" (measured at {args.connections} connections)"))
    return status


# ---------------------------------------------------------------------------------------------- CLI

def command_line() -> str:
    env = [f"{k}={shlex.quote(v)}" for k, v in sorted(os.environ.items())
           if k.startswith("LEADRELAY_") and not k.startswith(CONTROLLED_ENV)]
    return " ".join([*env, shlex.join([sys.executable, *sys.argv])])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections (default 32)")
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per target (default 10)")
    p.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per target (default 2)")
    p.add_argument("--database-url", help="postgresql+asyncpg URL of the database to create and drop; "
                   "each further LeadRelay server (--variant) gets its own, NAME_2, NAME_3... "
                   f"(default {DEFAULT_DB.format(run='<random>')}); with --target, the database to count in")
    p.add_argument("--drop-existing", action="store_true", help="replace the database if it exists")
    p.add_argument("--keep-database", action="store_true", help="do not drop the database at the end")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--target", help="drive this already running LeadRelay (http://127.0.0.1:PORT) instead of "
                   "starting one; its credentials and database come from --target-config")
    p.add_argument("--target-config", default=str(REPO / "config.example.toml"),
                   help="the running target's TOML (default config.example.toml)")
    p.add_argument("--target-pid", type=int, help="pid of the running target, for its CPU use")
    p.add_argument("--targets", default="bare,decrypt,leadrelay",
                   help="comma-separated subset of bare,decrypt,leadrelay (default all)")
    p.add_argument("--variant", action="append", default=[], metavar="LABEL:KEY=VALUE[;KEY=VALUE]",
                   help="an extra LeadRelay row (own server process) with these environment overrides, e.g. "
                   "'workers=0:LEADRELAY_INBOX__WORKERS=0' (repeatable)")
    p.add_argument("--ingest-only", action="store_true",
                   help="add the diagnostic row 'leadrelay workers=0' (LEADRELAY_INBOX__WORKERS=0)")
    p.add_argument("--profile", type=Path, metavar="DIR",
                   help="record each server with py-spy during the measured seconds; raw stacks + summary in DIR")
    p.add_argument("--drain", type=float, default=0.0, metavar="S",
                   help="after each LeadRelay run, measure S seconds of after-ack processing with no load")
    p.add_argument("--logs", type=Path, metavar="DIR", help="keep the servers' logs in DIR (default: discarded)")
    p.add_argument("--timeout", type=float, default=5.0, help="an answer slower than this is an error (default 5)")
    p.add_argument("--client-procs", type=int, default=1, help="load client processes (default 1)")
    p.add_argument("--gen-procs", type=int, default=2, help="processes building the requests (default 2)")
    p.add_argument("--max-requests", type=int, default=400_000, help="cap of pre-built requests per target")
    p.add_argument("--warmup-rate", type=float, default=12_000, help="requests built per warm-up second")
    args = p.parse_args(argv)
    if not 1 <= args.connections <= loadgen.MAX_CONNECTIONS:
        p.error(f"--connections must be between 1 and {loadgen.MAX_CONNECTIONS}")
    if not 0.5 <= args.seconds <= MAX_SECONDS:
        p.error(f"--seconds must be between 0.5 and {MAX_SECONDS} (message timestamps must stay fresh)")
    if not 0 < args.warmup <= MAX_WARMUP:
        p.error(f"--warmup must be between 0 and {MAX_WARMUP}")
    if not 0 <= args.drain <= 60:
        p.error("--drain must be between 0 and 60")
    if not 0.1 <= args.timeout <= 30:
        p.error("--timeout must be between 0.1 and 30")
    if not 1 <= args.client_procs <= 4:
        p.error("--client-procs must be between 1 and 4")
    if not 1000 <= args.max_requests <= 2_000_000:
        p.error("--max-requests must be between 1000 and 2000000")
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    if not names or set(names) - {"bare", "decrypt", "leadrelay"}:
        p.error("--targets takes a comma-separated subset of bare,decrypt,leadrelay")
    args.target_names = names
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
    if args.target:
        parts = urlsplit(args.target)
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost") or not parts.port:
            p.error("--target must be http://127.0.0.1:PORT (only local targets)")
        if parts.path not in ("", "/", PATH):
            p.error(f"--target is the server's base URL; the bench posts to {PATH}")
        if args.variant or args.ingest_only:
            p.error("--variant and --ingest-only start servers; they cannot be combined with --target")
    for variant in args.variant:
        label, _, pairs = variant.partition(":")
        if not label or not pairs or not all("=" in kv and kv.startswith("LEADRELAY_")
                                             for kv in pairs.split(";")):
            p.error(f"--variant {variant!r}: expected LABEL:LEADRELAY_KEY=VALUE[;LEADRELAY_KEY=VALUE]")
    return args


def targets_of(args: argparse.Namespace) -> list[Target]:
    targets = [Target(n, n) for n in args.target_names if n != "leadrelay"]
    if "leadrelay" in args.target_names:
        targets.append(Target("leadrelay (external)", "external", url=args.target) if args.target
                       else Target("leadrelay", "leadrelay"))
    if args.ingest_only:
        args.variant.append("workers=0:LEADRELAY_INBOX__WORKERS=0")
    for variant in args.variant:
        label, _, pairs = variant.partition(":")
        env = dict(kv.split("=", 1) for kv in pairs.split(";"))
        targets.append(Target(f"leadrelay {label}", "leadrelay", env=env))
    return targets


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import uvloop

        loop_name = f"uvloop {uvloop.__version__}"
    except ImportError:
        loop_name = "asyncio (uvloop not installed)"
    print(f"command: {command_line()}")
    print(f"python {platform.python_version()}, {loop_name}, {os.cpu_count()} cores", flush=True)
    bench = Bench(args)
    try:
        rows = bench.run(targets_of(args))
    except SetupError as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # the load client could not connect or did not report
        print(f"run failed: {exc}", file=sys.stderr)
        return 1
    status = report(rows, args)
    print(f"\ncommand: {command_line()}")
    return status


if __name__ == "__main__":
    sys.exit(main())
