"""The load client of bench/callback.py: as cheap per request as Python allows.

Every request is pre-built bytes (request line, headers and body, see :func:`http_request`), so driving is
one ``transport.write`` per request and a minimal response parse: raw asyncio protocols on uvloop, HTTP/1.1
keep-alive, one request in flight per connection (WeChat does not pipeline), no HTTP library.

A run is closed-loop: every connection sends its next request as soon as the previous answer arrived,
until the deadline; answers to requests sent before the deadline are still awaited and counted, and the
rate is completed answers over (last answer - start). Connections are opened before the start.

Clients run in forked processes (``processes`` of them, connections and requests split evenly), so the
parent stays idle while it samples CPU use, and a run can use two client processes if one is not enough.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field

SUCCESS = b"success"
MAX_CONNECTIONS = 512
_TICK_S = 0.1


def http_request(path_and_query: str, body: bytes) -> bytes:
    head = (f"POST {path_and_query} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: Mozilla/4.0\r\n"
            f"Accept: */*\r\nContent-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("ascii") + body


@dataclass
class Result:
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ns: array = field(default_factory=lambda: array("q"))
    start_ns: int = 0  # perf_counter_ns in the client process; only differences are used
    last_answer_ns: int = 0
    cpu_s: float = 0.0
    sent: int = 0
    exhausted: bool = False  # ran out of pre-built requests before the deadline
    first_error: str = ""

    @property
    def elapsed_s(self) -> float:
        return max(self.last_answer_ns - self.start_ns, 1) / 1e9

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def merge(self, other: Result) -> Result:
        merged = Result(ok=self.ok + other.ok, errors=self.errors + other.errors,
                        latencies_ns=self.latencies_ns + other.latencies_ns, cpu_s=self.cpu_s + other.cpu_s,
                        sent=self.sent + other.sent, exhausted=self.exhausted or other.exhausted,
                        first_error=self.first_error or other.first_error)
        # Processes start together (wall clock); elapsed is the longest of them.
        merged.start_ns, merged.last_answer_ns = 0, max(self.elapsed_ns(), other.elapsed_ns())
        return merged

    def elapsed_ns(self) -> int:
        return max(self.last_answer_ns - self.start_ns, 0)

    def rate(self) -> float:
        return self.ok / self.elapsed_s if self.ok else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies_ns:
            return float("nan")
        ordered = sorted(self.latencies_ns)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


class _Shared:
    __slots__ = ("requests", "next", "deadline_ns", "timeout_ns", "result", "open", "all_done", "cycle")

    def __init__(self, requests: list[bytes], deadline_ns: int, timeout_ns: int, result: Result,
                 cycle: bool) -> None:
        self.requests = requests
        self.cycle = cycle
        self.next = 0
        self.deadline_ns = deadline_ns
        self.timeout_ns = timeout_ns
        self.result = result
        self.open = 0
        self.all_done: asyncio.Future[None] | None = None


class _Connection(asyncio.Protocol):
    __slots__ = ("shared", "transport", "buf", "sent_at", "finished")

    def __init__(self, shared: _Shared) -> None:
        self.shared = shared
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.sent_at = 0  # 0: nothing in flight
        self.finished = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send_next(self) -> None:
        s = self.shared
        i = s.next
        if i >= len(s.requests):
            if not s.cycle:
                s.result.exhausted = True
                self.finish()
                return
            i = 0
        s.next = i + 1
        s.result.sent += 1
        self.sent_at = time.perf_counter_ns()
        self.transport.write(s.requests[i])  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buf[:end]).lower()
        i = head.find(b"\r\ncontent-length:")
        if i >= 0:
            j = head.find(b"\r\n", i + 2)
            total = end + 4 + int(head[i + 17:j if j >= 0 else len(head)])
            if len(buf) < total:
                return
            body = bytes(buf[end + 4:total])
        elif b"\r\ntransfer-encoding: chunked" in head:
            if not buf.endswith(b"0\r\n\r\n"):
                return
            body, total = _dechunk(bytes(buf[end + 4:])), len(buf)
        else:
            self._error("answer without Content-Length", head)
            return
        now = time.perf_counter_ns()
        del buf[:total]
        s, latency = self.shared, now - self.sent_at
        self.sent_at = 0
        s.result.last_answer_ns = now
        if head[9:12] != b"200" or not (body == SUCCESS or body.startswith(b"<xml>")):
            self._note_error(f"HTTP {head[9:12].decode()} {body[:60]!r}")
        elif latency > s.timeout_ns:
            self._note_error(f"answered after the {s.timeout_ns // 1_000_000} ms timeout")
        else:
            s.result.ok += 1
            s.result.latencies_ns.append(latency)
        if now < s.deadline_ns:
            self.send_next()
        else:
            self.finish()

    def _note_error(self, what: str) -> None:
        r = self.shared.result
        key = what.split(" ", 2)[0] + " " + what.split(" ", 2)[1] if what.startswith("HTTP ") else what
        r.errors[key] += 1
        r.first_error = r.first_error or what

    def _error(self, what: str, detail: bytes = b"") -> None:
        self._note_error(what + (f": {detail[:120]!r}" if detail else ""))
        if self.transport is not None:
            self.transport.abort()
        self.finish()

    def check_timeout(self, now: int) -> None:
        if self.sent_at and now - self.sent_at > self.shared.timeout_ns:
            self.sent_at = 0
            self._error(f"no answer within {self.shared.timeout_ns // 1_000_000} ms")

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished:
            self._note_error(f"connection lost ({exc!r})")
            self.finish()

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        s = self.shared
        s.open -= 1
        if s.open == 0 and s.all_done is not None and not s.all_done.done():
            s.all_done.set_result(None)


def _dechunk(data: bytes) -> bytes:
    out, pos = bytearray(), 0
    while True:
        eol = data.index(b"\r\n", pos)
        size = int(data[pos:eol].split(b";", 1)[0], 16)
        if size == 0:
            return bytes(out)
        out += data[eol + 2:eol + 2 + size]
        pos = eol + 2 + size + 2


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def drive(host: str, port: int, requests: list[bytes], connections: int, start_wall: float,
                seconds: float, timeout_s: float, cycle: bool = False) -> Result:
    """Drive one target from this process; the run starts at ``start_wall`` (time.time())."""
    loop = asyncio.get_running_loop()
    result = Result()
    shared = _Shared(requests, 0, int(timeout_s * 1e9), result, cycle)
    conns: list[_Connection] = []
    for _ in range(connections):
        _, proto = await asyncio.wait_for(loop.create_connection(lambda: _Connection(shared), host, port), 10)
        conns.append(proto)
    shared.open = len(conns)
    shared.all_done = loop.create_future()
    await asyncio.sleep(max(0.0, start_wall - time.time()))
    cpu0 = _cpu_s()
    result.start_ns = result.last_answer_ns = time.perf_counter_ns()
    shared.deadline_ns = result.start_ns + int(seconds * 1e9)
    for conn in conns:
        conn.send_next()
    # Bounded: after the deadline, every request still in flight times out within timeout_s.
    while not shared.all_done.done():
        await asyncio.wait([shared.all_done], timeout=_TICK_S)
        now = time.perf_counter_ns()
        for conn in conns:
            if not conn.finished:
                conn.check_timeout(now)
    result.cpu_s = _cpu_s() - cpu0
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    return result


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


def _child(conn: multiprocessing.connection.Connection, host: str, port: int, requests: list[bytes],
           connections: int, start_wall: float, seconds: float, timeout_s: float, cycle: bool) -> None:
    loop = _new_loop()
    try:
        result = loop.run_until_complete(
            drive(host, port, requests, connections, start_wall, seconds, timeout_s, cycle))
        conn.send(("ok", result))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        loop.close()
        conn.close()


def run(host: str, port: int, requests: list[bytes], *, connections: int, seconds: float, timeout_s: float = 5.0,
        processes: int = 1, cycle: bool = False, on_start: object = None, on_end: object = None) -> Result:
    """Drive host:port with ``requests`` from forked client processes.

    Each request is sent at most once, unless ``cycle`` (for targets that store nothing): then the list
    is sent again from the start when it runs out.

    ``on_start``/``on_end`` (callables) run in the parent at the start and at the deadline, to sample CPU.
    """
    if host not in ("127.0.0.1", "localhost"):
        raise ValueError("the load client only targets 127.0.0.1")
    if not 1 <= connections <= MAX_CONNECTIONS:
        raise ValueError(f"connections must be between 1 and {MAX_CONNECTIONS}")
    processes = max(1, min(processes, connections))
    ctx = multiprocessing.get_context("fork")
    start_wall = time.time() + 0.5 + 0.002 * connections  # time to fork and connect
    children = []
    for p in range(processes):
        part = requests[p::processes] if processes > 1 else requests
        n = connections // processes + (1 if p < connections % processes else 0)
        parent_end, child_end = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(child_end, host, port, part, n, start_wall, seconds, timeout_s, cycle),
                           daemon=True)
        proc.start()
        child_end.close()
        children.append((proc, parent_end))
    time.sleep(max(0.0, start_wall - time.time()))
    if callable(on_start):
        on_start()
    time.sleep(seconds)
    if callable(on_end):
        on_end()
    merged: Result | None = None
    failures = []
    for proc, parent_end in children:
        if parent_end.poll(timeout_s + 30):
            status, payload = parent_end.recv()
        else:
            status, payload = "error", "client process did not report"
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join()
        if status != "ok":
            failures.append(payload)
            continue
        merged = payload if merged is None else merged.merge(payload)
    if failures:
        raise RuntimeError("load client failed: " + "; ".join(failures))
    assert merged is not None
    return merged


