"""Every endpoint of the app, walked with the hostile corpus (hostile_corpus.py) on both backends: no 5xx, a
4xx for every malformed request (in the one JSON error shape on /api/), and not one row changed.

One app per backend serves the whole corpus (cases do not depend on each other: none may change anything).
Requests go over a plain socket so that raw bytes (invalid UTF-8 in the target, headers or body) reach the
server exactly as a hostile client sends them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import create_app
from bot.config.core import JobsConfig
from bot.config.journeys import build_journeys
from bot.config.limits import RateLimitsConfig
from bot.keys import ENGINE
from storage.models import Base
from tests.bot.journeys.test_runner import EXAMPLE
from tests.bot.web.hostile_batches import batches_corpus
from tests.bot.web.hostile_corpus import VALID_ITEM, Case, corpus
from tests.bot.web.hostile_handoff import handoff_corpus
from tests.bot.web.hostile_journeys import journeys_corpus
from tests.bot.web.hostile_tasks import tasks_corpus
from tests.support.fakes.wechat_server import FakeWeChatServer
from tests.support.forms import capture_config
from tests.support.helpers import API_TOKEN
from tests.support.miniprogram import mp_login

# Their own tests cover the signed XML callbacks; a hostile body there is refused by the signature check.
CALLBACKS = ("/wechat/callback", "/wecom/callback")
JOURNEYS = build_journeys(EXAMPLE["journeys"])
CASES = corpus() + handoff_corpus() + tasks_corpus() + journeys_corpus() + batches_corpus()


@dataclasses.dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


async def send(port: int, case: Case, target: bytes, auth: bytes | None) -> Answer:
    """One request on its own connection, written byte for byte; the answer read to the connection's end."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [case.method.encode() if case.method != "*" else _method(case), b" ", target, b" HTTP/1.1\r\n",
             b"Host: 127.0.0.1\r\nConnection: close\r\n"]
    if case.content_type is not None and case.body:
        lines.append(b"Content-Type: " + case.content_type + b"\r\n")
    if auth is not None:
        lines.append(b"Authorization: " + auth + b"\r\n")
    for name, value in case.headers:
        lines.append(name + b": " + value + b"\r\n")
    if case.chunked:
        lines.append(b"Transfer-Encoding: chunked\r\n\r\n")
        chunks = [case.body[i:i + 8192] for i in range(0, len(case.body), 8192)]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    else:
        lines.append(b"Content-Length: %d\r\n\r\n" % len(case.body) if case.body or case.method in ("POST", "PUT")
                     else b"\r\n")
        payload = case.body
    try:
        writer.write(b"".join(lines) + payload)
        await writer.drain()
    except ConnectionError:
        pass  # the server answered and closed before reading it all (a refused huge body): read the answer
    try:
        raw = await asyncio.wait_for(reader.read(), timeout=30)
    except ConnectionError:
        raw = b""
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.split(b"\r\n")
    parts = status_line.split(b" ")
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    headers = {}
    for line in header_lines:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = _unchunk(body)
    return Answer(status, headers, body)


def _method(case: Case) -> bytes:
    return case.name.split(" ")[0].encode()


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2:]
    return out


async def snapshot(engine: AsyncEngine) -> dict[str, list[str]]:
    """Every row of every table, as text: equal snapshots mean nothing was added, removed or changed."""
    out: dict[str, list[str]] = {}
    async with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = (await conn.execute(select(table))).all()
            out[table.name] = sorted(repr(tuple(r)) for r in rows)
    return out


def _changed(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    return [f"{name}: {len(before[name])} -> {len(after[name])} rows" if len(before[name]) != len(after[name])
            else f"{name}: rows changed" for name in before if before[name] != after[name]]


def check(case: Case, answer: Answer) -> str | None:
    """What is wrong with the answer to ``case``, or None."""
    if answer.status == 0:
        return "no HTTP answer"
    if answer.status >= 500:
        return f"{answer.status}: {answer.body[:200]!r}"
    if answer.status == 429:
        return "rate-limited: the case never reached the endpoint's checks"
    if case.expect == "4xx" and not 400 <= answer.status < 500:
        return f"expected a 4xx, got {answer.status}: {answer.body[:200]!r}"
    if any("injected" in name or "injected" in value for name, value in answer.headers.items()
           if name != "location"):
        return f"header injection: {answer.headers}"
    if not (case.shape and answer.status >= 400 and case.method != "HEAD"):
        return None
    try:
        body = json.loads(answer.body)
    except ValueError:
        return f"not the JSON error shape: {answer.body[:200]!r}"
    if not (isinstance(body, dict) and {"error", "code", "message"} <= set(body) and body["error"] == body["code"]):
        return f"not the JSON error shape: {body}"
    if not any("\u4e00" <= ch <= "\u9fff" for ch in str(body["message"])):
        return f"message not in Chinese: {body}"
    return None


def test_every_route_of_the_app_is_in_the_corpus(backend) -> None:
    """A new endpoint without hostile cases fails here: add its cases to hostile_corpus.py."""
    app = create_app(capture_config(backend))
    routes = {(r.method, r.resource.canonical) for r in app.router.routes()
              if r.resource is not None and r.resource.canonical not in CALLBACKS}
    covered = {c.route for c in CASES}
    missing = sorted(routes - covered)
    assert not missing, f"routes without hostile cases: {missing}"
    for route in routes:  # a malformed case that must be refused, for every route
        assert any(c.route == route and c.expect == "4xx" for c in CASES), route


async def seed(client: Any, fake: FakeWeChatServer) -> tuple[int, str]:
    """A content item, and a mini-program login (its lead and session): the rows the corpus must leave alone."""
    api = {"Authorization": f"Bearer {API_TOKEN}"}
    resp = await client.put("/api/content", json={"items": [{**VALID_ITEM, "id": "seeded"}]}, headers=api)
    assert resp.status == 200, await resp.text()
    token = await mp_login(client, fake, "mp_hostile", "u_hostile")
    leads = (await (await client.get("/api/leads", headers=api)).json())["items"]
    return leads[0]["id"], token


async def test_the_hostile_corpus_gets_4xx_and_changes_nothing(app_client, backend, fake) -> None:
    config = capture_config(backend, api_base_url=fake.base_url)
    # No job writes meanwhile; rate limits on (their code runs, spoofed X-Forwarded-For included) but too high to
    # answer a case with 429 before its input is looked at.
    limits = RateLimitsConfig(**{f.name: "1000000/1m" for f in dataclasses.fields(RateLimitsConfig)
                                 if f.name != "enabled"})
    client = await app_client(dataclasses.replace(config, jobs=JobsConfig(enabled=()), rate_limits=limits,
                                                  journeys=JOURNEYS))  # the journey routes look at their queries
    app = client.server.app
    routes = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None}
    lead_id, mp_token = await seed(client, fake)
    engine = app[ENGINE]
    auth = {"api": f"Bearer {API_TOKEN}".encode(), "mp": f"Bearer {mp_token}".encode(), "none": None}
    port = client.server.port
    assert port is not None
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    skipped = ran = 0
    started = time.monotonic()
    before = await snapshot(engine)
    for case in CASES:
        if case.route[0] != "*" and case.route not in routes:
            skipped += 1  # a route this app does not have (yet): nothing to attack
            continue
        target = case.target.replace(b"{lead}", str(lead_id).encode())
        answer = await send(port, case, target, auth[case.auth])
        statuses[answer.status] += 1
        ran += 1
        problem = check(case, answer)
        after = await snapshot(engine)
        if after != before:
            problem = (problem + "; " if problem else "") + "changed: " + ", ".join(_changed(before, after))
            before = after
        if problem:
            failures.append(f"{case.label}: {problem}")
    elapsed = time.monotonic() - started
    print(f"\nhostile corpus on {backend.name}: {ran} cases ran, {skipped} skipped (route absent), "
          f"{len(failures)} failed, {elapsed:.1f} s; answers {dict(sorted(statuses.items()))}")
    assert not failures, f"{len(failures)} of {ran} cases failed:\n" + "\n".join(failures)
    assert ran > 700
