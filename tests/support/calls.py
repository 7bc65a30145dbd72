"""What tests send the app over HTTP: WeChat's signed callbacks and the SDR console's API calls."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.ingress.simulate import oa_text
from bot.keys import ENGINE
from storage.models import InboxEvent
from tests.support.helpers import API_TOKEN, oa_sim, wecom_sim

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


async def send_oa(client: TestClient, xml: str) -> Any:
    req = oa_sim().post(xml)
    return await client.post(f"/wechat/callback?{req.query}", data=req.body)


async def send_wecom(client: TestClient, xml: str) -> Any:
    req = wecom_sim().post(xml)
    return await client.post(f"/wecom/callback?{req.query}", data=req.body)


async def post_texts(client: TestClient, texts: list[tuple[str, str]], first_msg_id: int = 9_000) -> list[int]:
    """OA texts as (openid, content), each answered 200; the ids of every inbox row, oldest first."""
    for n, (openid, content) in enumerate(texts):
        resp = await send_oa(client, oa_text(openid, content, first_msg_id + n))
        assert resp.status == 200
    async with client.server.app[ENGINE].connect() as conn:
        return list((await conn.execute(select(InboxEvent.id).order_by(InboxEvent.id))).scalars())


async def lead_json(client: TestClient, lead_id: int) -> dict[str, Any]:
    resp = await client.get(f"/api/leads/{lead_id}", headers=AUTH)
    assert resp.status == 200
    return await resp.json()
