"""An erasure in flight: a request that started while ``erase_lead`` held the lead (uncommitted) writes nothing
of the person back onto the erased lead once the erasure commits.

The erasure is staged in the app's own session factory and left open while a form submission, a tracked link
or a mini-program login starts. On PostgreSQL the request waits for the lead's row lock (seen in
pg_stat_activity); on SQLite (one writer: a single pooled connection) it waits for the connection. The
erasure then commits and the request finishes: it must behave as if it had started after the erasure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select

from bot.capture.form_tokens import COOKIE_NAME
from bot.capture.links import LinkTarget
from bot.config.capture import build_capture, validate_capture
from bot.crypto.keyring import Purpose
from bot.ingress.security import Envelope
from bot.ingress.simulate import decrypt_reply, oa_event, oa_text
from bot.keys import CONFIG, CONVERSATION, ENGINE, SESSIONS
from storage.models import DuplicateSuggestion, Identity, Lead, MiniProgramSession, Touchpoint, utcnow
from storage.repos.erasure import erase_lead
from tests.support.calls import send_oa
from tests.support.forms import FORMS, MP_APP_ID, MP_SECRET, PLAIN_UA, WECHAT_UA, capture_config, csrf_of
from tests.support.helpers import OA_AES_KEY, OA_APP_ID, OA_TOKEN, count, free_port, lead_ids, wait_processed
from tests.support.locks import until_blocked

GOOD = {"name": "张伟", "phone": "13800138000", "email": "zw@corp.cn", "company": "上海某某科技有限公司",
        "consent": "yes"}
PLAIN = {"User-Agent": PLAIN_UA}
CAPTURE: dict[str, Any] = {  # an intent whose reply carries a tracked link
    "intents": [{"name": "pricing", "keywords": ["价格"], "content": ["pricing-guide"]}],
    "content": {"items": [{"id": "pricing-guide", "kind": "article", "title": "产品价格指南",
                           "url": "https://example.com/pricing-guide"}]},
}


@pytest.fixture
async def client(app_client, backend, fake):
    port = free_port()
    config = capture_config(backend, api_base_url=fake.base_url, public_url=f"http://127.0.0.1:{port}")
    capture = build_capture({**CAPTURE, "forms": FORMS, "mini_program": {
        "app_id": MP_APP_ID, "app_secret": MP_SECRET, "session_ttl_s": 3600}})
    validate_capture(capture)
    return await app_client(dataclasses.replace(config, capture=capture), port=port)


async def during_erasure(client, backend, lead_id: int, request: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``request`` while the erasure of ``lead_id`` is uncommitted; commit it; return what the request gave."""
    app = client.server.app
    async with app[SESSIONS]() as session:
        await session.begin()
        assert await erase_lead(session, lead_id, utcnow(), hasher=app[CONFIG].keyring.hasher(Purpose.TOMBSTONE))
        task = asyncio.create_task(request())
        try:
            await until_blocked(app[ENGINE], backend, task)
        finally:
            await session.commit()
    return await asyncio.wait_for(task, 20)


async def erased_cleanly(engine, lead_id: int) -> None:
    async with engine.connect() as conn:
        lead = (await conn.execute(select(Lead.display_name, Lead.profile, Lead.erased_at)
                                   .where(Lead.id == lead_id))).one()
    assert lead.display_name is None and lead.profile == {"erased": True} and lead.erased_at is not None
    assert await count(engine, Identity, Identity.lead_id == lead_id) == 0
    assert await count(engine, MiniProgramSession, MiniProgramSession.lead_id == lead_id) == 0


async def identities(engine) -> set[tuple[int, str, str]]:
    async with engine.connect() as conn:
        return {tuple(r) for r in await conn.execute(select(Identity.lead_id, Identity.kind, Identity.value))}


async def test_a_form_posted_with_a_cookie_bound_before_the_erasure_stays_anonymous(client, fake, backend):
    engine = client.server.app[ENGINE]
    fake.state.register_user("o_form", unionid="u_form")
    await send_oa(client, oa_event("o_form", "subscribe"))
    await wait_processed(engine, expected=1)
    (lead_id,) = await lead_ids(engine)
    fake.state.oauth_openid = "o_form"
    assert (await client.get("/f/demo", headers={"User-Agent": WECHAT_UA})).status == 200  # bound silently
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/f/demo"))[COOKIE_NAME].value
    client.session.cookie_jar.clear()
    with_cookie = {**PLAIN, "Cookie": f"{COOKIE_NAME}={cookie}"}
    page = await client.get("/f/demo", headers=with_cookie)  # still valid: the erasure has not started
    csrf = csrf_of(await page.text())
    client.session.cookie_jar.clear()
    touches = await count(engine, Touchpoint, Touchpoint.lead_id == lead_id)

    async def post() -> int:
        resp = await client.post("/f/demo", data={**GOOD, "csrf": csrf}, headers=with_cookie)
        return resp.status

    assert await during_erasure(client, backend, lead_id, post) == 200
    await erased_cleanly(engine, lead_id)
    assert await count(engine, Touchpoint, Touchpoint.lead_id == lead_id) == touches
    (new_id,) = set(await lead_ids(engine)) - {lead_id}
    # A new, anonymous visitor: what they typed, no OpenID or UnionID of the erased person.
    assert await identities(engine) == {(new_id, "phone", "13800138000"), (new_id, "email", "zw@corp.cn")}


async def test_a_form_typing_the_erased_persons_email_links_nothing_to_them(client, backend):
    engine = client.server.app[ENGINE]
    page = await client.get("/f/demo", headers=PLAIN)
    resp = await client.post("/f/demo", data={**GOOD, "csrf": csrf_of(await page.text())}, headers=PLAIN)
    assert resp.status == 200
    (lead_id,) = await lead_ids(engine)
    client.session.cookie_jar.clear()
    page = await client.get("/f/demo", headers=PLAIN)
    csrf = csrf_of(await page.text())

    async def post() -> int:
        resp = await client.post("/f/demo", data={"name": "张伟", "email": "zw@corp.cn", "phone": "13900139000",
                                                  "company": "某", "consent": "yes", "csrf": csrf}, headers=PLAIN)
        return resp.status

    assert await during_erasure(client, backend, lead_id, post) == 200
    await erased_cleanly(engine, lead_id)
    # Without the race: the email is nobody's any more, so it is simply the new visitor's; no suggestion
    # ties the erased lead to the address.
    assert await count(engine, DuplicateSuggestion) == 0
    (new_id,) = set(await lead_ids(engine)) - {lead_id}
    assert await identities(engine) == {(new_id, "phone", "13900139000"), (new_id, "email", "zw@corp.cn")}


async def test_a_tracked_link_opened_during_the_erasure_records_nothing(client, backend):
    engine = client.server.app[ENGINE]
    resp = await send_oa(client, oa_text("o_link", "价格", 3001))
    assert resp.status == 200
    reply = decrypt_reply(Envelope(OA_TOKEN, OA_AES_KEY, OA_APP_ID, work=False), await resp.read())
    url = re.search(r"<Url><!\[CDATA\[(.*?)\]\]></Url>", reply).group(1)
    link = url[url.index("/c/"):]
    await wait_processed(engine, expected=1)
    (lead_id,) = await lead_ids(engine)
    touches = await count(engine, Touchpoint)

    async def open_link() -> int:
        return (await client.get(link, allow_redirects=False)).status

    assert await during_erasure(client, backend, lead_id, open_link) == 302  # still leads to the content
    await erased_cleanly(engine, lead_id)
    assert await count(engine, Touchpoint) == touches
    assert await lead_ids(engine) == [lead_id] and await count(engine, Identity) == 0


async def test_a_link_to_a_lead_id_opened_during_its_erasure_records_nothing(client, backend):
    engine = client.server.app[ENGINE]
    await send_oa(client, oa_text("o_lead_link", "你好", 3101))
    await wait_processed(engine, expected=1)
    (lead_id,) = await lead_ids(engine)
    link = "/c/" + client.server.app[CONVERSATION].links.token(LinkTarget("pricing-guide", "lead", str(lead_id)))
    touches = await count(engine, Touchpoint)

    async def open_link() -> int:
        return (await client.get(link, allow_redirects=False)).status

    assert await during_erasure(client, backend, lead_id, open_link) == 302
    await erased_cleanly(engine, lead_id)
    assert await count(engine, Touchpoint) == touches


async def test_a_mini_program_login_during_the_erasure_opens_no_session_on_the_erased_lead(client, fake, backend):
    engine = client.server.app[ENGINE]

    async def login() -> Any:
        code = fake.state.issue_login_code(MP_APP_ID, "mp_race", "u_mp_race")
        resp = await client.post("/api/mp/login", json={"code": code})
        assert resp.status == 200, await resp.text()
        return (await resp.json())["token"]

    await login()
    (lead_id,) = await lead_ids(engine)
    token = await during_erasure(client, backend, lead_id, login)
    await erased_cleanly(engine, lead_id)
    # Logging in afresh is new activity (bot/capture/erased.py): a new lead, and its session works.
    (new_id,) = set(await lead_ids(engine)) - {lead_id}
    assert await identities(engine) == {(new_id, "mp_openid", "mp_race"), (new_id, "unionid", "u_mp_race")}
    assert await count(engine, MiniProgramSession) == 1
    assert await count(engine, MiniProgramSession, MiniProgramSession.lead_id == new_id) == 1
    assert (await client.get("/api/mp/forms/demo", headers={"Authorization": f"Bearer {token}"})).status == 200


async def test_a_mini_program_form_posted_during_the_erasure_is_refused_and_stores_nothing(client, fake, backend):
    engine = client.server.app[ENGINE]
    code = fake.state.issue_login_code(MP_APP_ID, "mp_form_race", None)
    token = (await (await client.post("/api/mp/login", json={"code": code})).json())["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/mp/forms/demo", headers=bearer)).status == 200
    (lead_id,) = await lead_ids(engine)
    touches = await count(engine, Touchpoint)

    async def post() -> int:
        resp = await client.post("/api/mp/forms/demo", headers=bearer, json={
            "consent": True, "fields": {"name": "王芳", "phone": "13700137000", "company": "某某"}})
        return resp.status

    # The session was valid when the request began; the erasure ended it before anything was stored.
    assert await during_erasure(client, backend, lead_id, post) == 401
    await erased_cleanly(engine, lead_id)
    assert await lead_ids(engine) == [lead_id] and await count(engine, Identity) == 0
    assert await count(engine, Touchpoint) == touches
