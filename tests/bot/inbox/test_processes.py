"""Crash recovery and several bot processes, with real `leadrelay serve` processes."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.ingress.simulate import oa_text
from storage.models import InboxEvent, Lead, Touchpoint
from tests.support.helpers import count, free_port, oa_sim, wait_processed
from tests.support.processes import ServerProcess, write_config


async def _send(session: aiohttp.ClientSession, base: str, xml: str) -> bool:
    req = oa_sim().post(xml)
    try:
        async with session.post(f"{base}/wechat/callback?{req.query}", data=req.body) as resp:
            body = await resp.text()
            return resp.status == 200 and (body == "success" or body.startswith("<xml>"))
    except (TimeoutError, aiohttp.ClientError):
        return False


async def _burst(bases: list[str], msg_ids: list[int], concurrency: int = 16) -> list[int]:
    """Send each message once (round-robin over servers); return the MsgIds answered 200."""
    accepted: list[int] = []
    queue = list(msg_ids)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async def worker(n: int) -> None:
            while queue:
                msg_id = queue.pop(0)
                base = bases[msg_id % len(bases)]
                if await _send(session, base, oa_text(f"o_burst_{msg_id % 40}", f"m{msg_id}", msg_id)):
                    accepted.append(msg_id)

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return accepted


def handled_by(log: Path) -> int:
    """Events a process reports having handled when it stopped gracefully."""
    found = re.findall(r"inbox processor stopped: (\d+) events handled", log.read_text())
    assert len(found) == 1, found
    return int(found[0])


async def _assert_exactly_once(engine, accepted: list[int]) -> None:
    async with engine.connect() as conn:
        rows = dict((await conn.execute(select(InboxEvent.dedup_key, InboxEvent.status))).all())
        per_row = (await conn.execute(
            select(Touchpoint.inbox_id, func.count()).group_by(Touchpoint.inbox_id))).all()
    for msg_id in accepted:
        key = next(k for k in rows if k.endswith(f":msg:{msg_id}"))
        assert rows[key] == "done", (msg_id, rows[key])
    assert set(rows.values()) == {"done"}  # also rows whose answer never reached the client
    assert len(per_row) == len(rows) and all(n == 1 for _, n in per_row)


async def test_sigkill_mid_burst_then_restart_processes_everything_once(tmp_path, backend, engine):
    port = free_port()
    config = write_config(tmp_path / "slow.toml", backend, port, workers=1)
    server = ServerProcess(config, port, tmp_path / "server.log")
    try:
        burst = asyncio.create_task(_burst([server.base], list(range(1, 601))))
        while await count(engine, InboxEvent) < 150:
            await asyncio.sleep(0.01)
        server.kill()
        accepted = await burst
    finally:
        server.stop()
    pending_at_kill = await count(engine, InboxEvent, InboxEvent.status == "pending")
    assert len(accepted) >= 100  # some answers were in flight when the process died
    assert pending_at_kill > 0, "the kill should leave answered-but-unprocessed events behind"

    restarted = ServerProcess(write_config(tmp_path / "normal.toml", backend, port), port, tmp_path / "after.log")
    try:
        await wait_processed(engine, timeout=60)
    finally:
        restarted.stop()
    await _assert_exactly_once(engine, accepted)
    assert handled_by(tmp_path / "after.log") == pending_at_kill  # handled once, by the new process


async def test_two_processes_share_one_database_exactly_once(tmp_path, backend, engine):
    if not backend.is_production:
        pytest.skip("several processes is the PostgreSQL + Redis deployment")
    servers = []
    try:
        for i in range(2):
            port = free_port()
            servers.append(ServerProcess(write_config(tmp_path / f"s{i}.toml", backend, port), port,
                                         tmp_path / f"s{i}.log"))
        bases = [s.base for s in servers]
        accepted = await _burst(bases, list(range(1, 401)))
        # WeChat's retries can land on the other process: send part of the burst again, crosswise.
        again = await _burst(list(reversed(bases)), list(range(1, 101)))
        assert len(accepted) == 400 and len(again) == 100
        await wait_processed(engine, expected=400, timeout=60)
    finally:
        for s in servers:
            s.stop()
    assert await count(engine, InboxEvent) == 400
    await _assert_exactly_once(engine, accepted)
    assert await count(engine, Lead) == 40
    # Each event handled by exactly one of the two processes, none by both.
    assert handled_by(tmp_path / "s0.log") + handled_by(tmp_path / "s1.log") == 400
    assert handled_by(tmp_path / "s0.log") > 0 and handled_by(tmp_path / "s1.log") > 0
