"""Plaintext and compatible OA modes, health reporting, and the database commands."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from bot.app import SchemaOutdated
from bot.cli import main
from bot.ingress.simulate import OASimulator, oa_event, oa_text
from bot.keys import ENGINE
from storage.models import InboxEvent, Touchpoint
from tests.support.backends import PG_ADMIN_DSN
from tests.support.helpers import OA_AES_KEY, OA_APP_ID, OA_TOKEN, count, wait_processed


async def test_plaintext_mode_accepts_unencrypted_messages(app_client):
    client = await app_client(wechat={"encoding_aes_key": ""})
    req = OASimulator(OA_TOKEN, OA_APP_ID).post(oa_event("o_plain", "subscribe", "qrscene_expo2026"))
    resp = await client.post(f"/wechat/callback?{req.query}", data=req.body)
    assert resp.status == 200
    assert "<MsgType><![CDATA[text]]></MsgType>" in await resp.text()  # the plaintext welcome
    engine = client.server.app[ENGINE]
    await wait_processed(engine, expected=1)
    assert await count(engine, Touchpoint, Touchpoint.channel == "expo") == 1


async def test_plaintext_mode_refuses_encrypted_messages(app_client):
    client = await app_client(wechat={"encoding_aes_key": ""})
    req = OASimulator(OA_TOKEN, OA_APP_ID, OA_AES_KEY).post(oa_text("o1", "hi", 1))
    resp = await client.post(f"/wechat/callback?{req.query}", data=req.body)
    assert resp.status == 400
    assert await count(client.server.app[ENGINE], InboxEvent) == 0


async def test_compatible_mode_uses_the_encrypted_copy(app_client):
    """Compatible mode sends plaintext fields and Encrypt side by side; only the signed, encrypted copy counts."""
    client = await app_client()
    req = OASimulator(OA_TOKEN, OA_APP_ID, OA_AES_KEY).post(oa_text("o_real", "真的", 424242))
    forged_plain = "<ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[o_forged]]></FromUserName>" \
                   "<CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><MsgId>1</MsgId>"
    body = req.body.replace(b"<xml>", f"<xml>{forged_plain}".encode(), 1)
    resp = await client.post(f"/wechat/callback?{req.query}", data=body)
    assert resp.status == 200
    engine = client.server.app[ENGINE]
    await wait_processed(engine, expected=1)
    assert await count(engine, InboxEvent, InboxEvent.from_user == "o_real") == 1
    assert await count(engine, InboxEvent, InboxEvent.from_user == "o_forged") == 0


async def test_healthz_reports_an_unreachable_redis(app_client):
    client = await app_client(redis={"url": "redis://127.0.0.1:1/0"})
    resp = await client.get("/healthz")
    assert resp.status == 503
    body = await resp.json()
    assert body["database"] == "ok" and body["redis"].startswith("error")


@pytest.fixture
def empty_pg_database(pg_url):
    name = f"leadrelay_empty_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield pg_url.rsplit("/", 1)[0] + "/" + name
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _config_file(tmp_path, url: str):
    path = tmp_path / "c.toml"
    path.write_text(f'[database]\nurl = "{url}"\n[wechat]\napp_id = "wx1"\ntoken = "t"\n', encoding="utf-8")
    return path


async def test_serve_refuses_an_unmigrated_postgresql_database(app_client, backend, empty_pg_database):
    if not backend.is_production:
        pytest.skip("SQLite databases are upgraded automatically")
    with pytest.raises(SchemaOutdated, match="leadrelay db upgrade"):
        await app_client(database={"url": empty_pg_database})


def test_db_upgrade_command_migrates_postgresql(tmp_path, empty_pg_database, redis_available):
    assert main(["db", "upgrade", "--config", str(_config_file(tmp_path, empty_pg_database))]) == 0
    assert main(["db", "upgrade", "--config", str(_config_file(tmp_path, empty_pg_database))]) == 0  # idempotent

    async def tables() -> set[str]:
        conn = await asyncpg.connect(empty_pg_database.replace("+asyncpg", ""))
        try:
            rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        finally:
            await conn.close()
        return {r["tablename"] for r in rows}

    assert {"leads", "identities", "touchpoints", "inbox", "outbox", "lead_merges", "merge_conflicts",
            "lead_tags", "alembic_version"} <= asyncio.run(tables())

