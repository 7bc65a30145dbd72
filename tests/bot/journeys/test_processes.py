"""Due journey steps under a crash and across processes, with real ``leadrelay serve`` processes: 1,000 leads due
at one step; the process is SIGKILLed halfway and restarted, or two processes share the work. Every lead gets
the step exactly once: one outbox row per step key, one record per (enrolment, seq), nothing skipped."""

from __future__ import annotations

import asyncio
import time
import tomllib
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from bot.config.journeys import build_journeys
from leads.identity import OA_OPENID
from leads.journeys.plan import fingerprint
from storage.models import Identity, JourneyEnrolment, JourneyStep, Lead, LeadTag, OutboxMessage, utcnow
from storage.repos.journey_enrolments import NewEnrolment, enrol
from tests.support.helpers import count, free_port
from tests.support.processes import ServerProcess, write_config

LEADS = 1000
JOURNEYS = """
[nurture]
quiet_hours = ""
weekly_cap = 5
step_interval_s = 0.2
batch_size = 25

[[journeys]]
id = "burst"
name = "批量测试"
trigger = { kind = "form_submitted" }
reentry = "never"

[[journeys.steps]]
action = "oa_template"
template = "t1"
text = "{name}，您好"

[[journeys.steps]]
action = "tag_add"
tag = "burst_done"
"""
JOURNEY = build_journeys(tomllib.loads(JOURNEYS)["journeys"])[0]


def config_with_journeys(path: Path, backend, port: int) -> Path:
    write_config(path, backend, port)
    path.write_text(path.read_text(encoding="utf-8") + JOURNEYS, encoding="utf-8")
    return path


async def seed(engine) -> None:
    now = utcnow()
    async with engine.begin() as conn:
        ids = (await conn.execute(insert(Lead).returning(Lead.id), [
            {"display_name": f"客户{i}", "stage": "lead", "consent": "granted", "profile": {"oa_following": True},
             "created_at": now, "last_activity_at": now} for i in range(LEADS)])).scalars().all()
        await conn.execute(insert(Identity), [{"lead_id": i, "kind": OA_OPENID, "app": "", "value": f"o_p{i}",
                                               "verified": False, "created_at": now} for i in ids])
        await enrol(conn, [NewEnrolment("burst", i, fingerprint(JOURNEY), "form:demo", now) for i in ids])


async def wait_for(engine, predicate, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def assert_each_step_once(engine) -> None:
    async with engine.connect() as conn:
        statuses = dict((await conn.execute(select(JourneyEnrolment.status, func.count())
                                            .group_by(JourneyEnrolment.status))).all())
        keys = (await conn.execute(select(OutboxMessage.idempotency_key))).scalars().all()
        enrolment_ids = (await conn.execute(select(JourneyEnrolment.id))).scalars().all()
        seqs = (await conn.execute(select(JourneyStep.enrolment_id, func.count(), func.max(JourneyStep.seq))
                                   .group_by(JourneyStep.enrolment_id))).all()
    tagged = await count(engine, LeadTag, LeadTag.tag == "burst_done")
    assert statuses == {"done": LEADS}
    assert sorted(keys) == sorted(f"journey:{e}:1" for e in enrolment_ids)  # one message each, none missing
    assert len(seqs) == LEADS and {(n, top) for _, n, top in seqs} == {(4, 3)}  # enrol, sent, tag, done
    assert tagged == LEADS


async def done(engine) -> int:
    return await count(engine, JourneyEnrolment, JourneyEnrolment.status == "done")


async def test_sigkill_in_the_middle_of_a_1000_lead_step_then_restart_gives_each_lead_the_step_once(
        tmp_path, backend, engine):
    await seed(engine)
    port = free_port()
    config = config_with_journeys(tmp_path / "journeys.toml", backend, port)
    server = ServerProcess(config, port, tmp_path / "before.log")
    try:
        await wait_for(engine, lambda: _at_least(engine, 200))
        server.kill()
    finally:
        server.stop()
    at_kill = await done(engine)
    assert 0 < at_kill < LEADS, "the kill should land in the middle of the step"
    restarted = ServerProcess(config, port, tmp_path / "after.log")
    try:
        await wait_for(engine, lambda: _at_least(engine, LEADS))
    finally:
        restarted.stop()
    await assert_each_step_once(engine)


async def test_two_processes_run_each_due_step_once(tmp_path, backend, engine):
    if not backend.is_production:
        pytest.skip("several processes is the PostgreSQL + Redis deployment")
    await seed(engine)
    servers = []
    try:
        for i in range(2):
            port = free_port()
            servers.append(ServerProcess(config_with_journeys(tmp_path / f"s{i}.toml", backend, port), port,
                                         tmp_path / f"s{i}.log"))
        await wait_for(engine, lambda: _at_least(engine, LEADS))
    finally:
        for server in servers:
            server.stop()
    await assert_each_step_once(engine)


async def _at_least(engine, n: int) -> bool:
    return await done(engine) >= n
