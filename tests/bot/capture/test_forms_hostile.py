"""The H5 form refuses what it cannot read (a body that is not UTF-8, an unknown charset, a broken multipart)
with a Chinese page, and a NUL or an over-long value never reaches the database."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from bot.keys import ENGINE
from tests.support.forms import NOTHING, PLAIN_UA, capture_config, csrf_of, identities, leads, stored_counts

PLAIN = {"User-Agent": PLAIN_UA}
FORM_TYPE = "application/x-www-form-urlencoded"


@pytest.fixture
async def client(app_client, backend):
    return await app_client(capture_config(backend, mini_program=False))


async def csrf(client) -> str:
    resp = await client.get("/f/demo", headers=PLAIN)
    assert resp.status == 200
    return csrf_of(await resp.text())


def encoded(csrf_token: str, **fields: str) -> bytes:
    pairs = {"csrf": csrf_token, "consent": "yes", **fields}
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in pairs.items()).encode()


@pytest.mark.parametrize(("body", "content_type"), [
    (b"name=\xff\xfe&phone=13800138000", FORM_TYPE),
    ("name=张伟".encode("gbk"), FORM_TYPE),
    (b"name=x", FORM_TYPE + "; charset=no-such-charset"),
    (b"--x\r\nnonsense", "multipart/form-data; boundary=x"),
])
async def test_an_unreadable_body_is_a_chinese_400_page(client, body, content_type):
    token = await csrf(client)  # a real session: the refusal is about the body, not the cookie
    resp = await client.post("/f/demo", data=body + b"&csrf=" + quote(token, safe="").encode(),
                             headers={**PLAIN, "Content-Type": content_type})
    page = await resp.text()
    assert resp.status == 400 and resp.content_type == "text/html", page
    assert "编码" in page
    assert await stored_counts(client.server.app[ENGINE]) == NOTHING


async def test_nul_bytes_never_reach_the_database(client):
    engine = client.server.app[ENGINE]
    resp = await client.post("/f/demo", data=encoded(await csrf(client), name="张\x00伟", phone="13800138000",
                                                       company="上海\x00某某", email="zw@corp.cn"),
                             headers={**PLAIN, "Content-Type": FORM_TYPE})
    assert resp.status == 200, await resp.text()
    (lead,) = await leads(engine)
    assert lead.profile["name"] == "张伟" and lead.profile["company"] == "上海某某"  # control characters dropped
    assert ("email", "", "zw@corp.cn", False) in await identities(engine)


async def test_a_nul_in_the_query_is_refused_before_the_form(client):
    resp = await client.get("/f/demo?src=%00", headers=PLAIN)
    assert resp.status == 400 and "UTF-8" in await resp.text()
