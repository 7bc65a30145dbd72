"""Every refused request gets a clear status and stores nothing, runs nothing."""

from __future__ import annotations

import time

import pytest

from bot.ingress.simulate import oa_text
from tests.support.helpers import oa_sim, stored_nothing, wecom_sim

URL = "/wechat/callback"


@pytest.fixture
async def client(app_client):
    return await app_client()


def _engine(client):
    from bot.keys import ENGINE

    return client.server.app[ENGINE]


async def _post(client, query: str, body: bytes, path: str = URL):
    return await client.post(f"{path}?{query}", data=body, headers={"Content-Type": "text/xml"})


async def test_forged_signature_is_refused(client):
    req = oa_sim().post(oa_text("o1", "hi", 1))
    forged = req.query.replace("msg_signature=", "msg_signature=0")
    resp = await _post(client, forged, req.body)
    assert resp.status == 403
    assert await stored_nothing(_engine(client))


async def test_wrong_plain_signature_is_refused(client):
    req = oa_sim().post(oa_text("o1", "hi", 1))
    resp = await _post(client, req.query.replace("signature=", "signature=f", 1), req.body)
    assert resp.status == 403
    assert await stored_nothing(_engine(client))


async def test_missing_signature_is_refused(client):
    req = oa_sim().post(oa_text("o1", "hi", 1))
    query = "&".join(p for p in req.query.split("&") if not p.startswith(("signature=", "msg_signature=")))
    resp = await _post(client, query, req.body)
    assert resp.status == 403
    assert await stored_nothing(_engine(client))


async def test_message_for_another_app_is_refused(client):
    other = oa_sim().__class__(oa_sim().token, "wx_someone_else", oa_sim().aes_key)
    req = other.post(oa_text("o1", "hi", 1))
    resp = await _post(client, req.query, req.body)
    assert resp.status == 403
    assert "ReceiveId" in (await resp.json())["message"]
    assert await stored_nothing(_engine(client))


async def test_stale_timestamp_is_refused(client):
    req = oa_sim().post(oa_text("o1", "hi", 1), timestamp=int(time.time()) - 301)
    resp = await _post(client, req.query, req.body)
    assert resp.status == 403
    assert await stored_nothing(_engine(client))


async def test_future_timestamp_is_refused(client):
    req = oa_sim().post(oa_text("o1", "hi", 1), timestamp=int(time.time()) + 3600)
    resp = await _post(client, req.query, req.body)
    assert resp.status == 403
    assert await stored_nothing(_engine(client))


async def test_plaintext_when_safe_mode_configured_is_refused(client):
    req = oa_sim(safe=False).post(oa_text("o1", "hi", 1))
    resp = await _post(client, req.query, req.body)
    assert resp.status == 403
    assert await stored_nothing(_engine(client))


async def test_body_over_64_kib_is_refused_with_413(client):
    req = oa_sim().post(oa_text("o1", "x" * 70_000, 1))
    resp = await _post(client, req.query, req.body)
    assert resp.status == 413
    assert await stored_nothing(_engine(client))


async def test_chunked_body_over_64_kib_is_refused_with_413(client):
    req = oa_sim().post(oa_text("o1", "x" * 70_000, 1))

    async def chunks():
        for i in range(0, len(req.body), 8192):
            yield req.body[i:i + 8192]

    resp = await client.post(f"{URL}?{req.query}", data=chunks())
    assert resp.status == 413
    assert await stored_nothing(_engine(client))


@pytest.mark.parametrize("outer", [
    b"<xml><Encrypt>unterminated",
    b"not xml at all",
    b"",
    b"<xml></xml>",
    b"<root><Encrypt><![CDATA[abc]]></Encrypt></root>",
])
async def test_malformed_outer_xml_is_refused(client, outer):
    req = oa_sim().post(oa_text("o1", "hi", 1))
    resp = await _post(client, req.query, outer)
    assert resp.status in (400, 403)  # a missing Encrypt fails parsing (400) before the signature over it
    assert await stored_nothing(_engine(client))


@pytest.mark.parametrize("inner", [
    "<xml><ToUserName>gh</ToUserName>",  # truncated
    "<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName></xml>",  # missing fields
    "<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>abc</CreateTime>"
    "<MsgType>text</MsgType></xml>",
    "<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>"
    "<MsgType>event</MsgType></xml>",  # event without Event
])
async def test_malformed_decrypted_xml_is_refused(client, inner):
    req = oa_sim().post(inner)
    resp = await _post(client, req.query, req.body)
    assert resp.status == 400
    assert await stored_nothing(_engine(client))


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i else "&lol;" * 10}">' for i in range(9))
    + ']><xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>'
    '<MsgType>text</MsgType><Content>&lol8;</Content><MsgId>1</MsgId></xml>'
)


async def test_entity_expansion_is_refused_quickly(client):
    req = oa_sim().post(BILLION_LAUGHS)
    started = time.perf_counter()
    resp = await _post(client, req.query, req.body)
    assert resp.status == 400
    assert time.perf_counter() - started < 1.0
    assert await stored_nothing(_engine(client))


async def test_external_entity_in_outer_xml_is_refused(client):
    req = oa_sim().post(oa_text("o1", "hi", 1))
    body = b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Encrypt>&e;</Encrypt></xml>'
    resp = await _post(client, req.query, body)
    assert resp.status == 400
    assert await stored_nothing(_engine(client))


async def test_garbage_ciphertext_is_refused(client):
    from bot.ingress.security import signature_of

    sim = oa_sim()
    req = sim.post(oa_text("o1", "hi", 1))
    params = dict(p.split("=", 1) for p in req.query.split("&"))
    bogus = "QUJDREVGR0hJSktMTU5PUA=="  # valid base64, one AES block, garbage inside
    params["msg_signature"] = signature_of(sim.token, params["timestamp"], params["nonce"], bogus)
    query = "&".join(f"{k}={v}" for k, v in params.items())
    resp = await _post(client, query, f"<xml><Encrypt><![CDATA[{bogus}]]></Encrypt></xml>".encode())
    assert resp.status in (400, 403)
    assert await stored_nothing(_engine(client))


async def test_oa_handshake_with_bad_signature_is_refused(client):
    query = oa_sim().handshake("echo123").replace("signature=", "signature=0")
    resp = await client.get(f"{URL}?{query}")
    assert resp.status == 403


async def test_wecom_forged_signature_is_refused(client):
    from bot.ingress.simulate import wecom_contact_event

    req = wecom_sim().post(wecom_contact_event("ww_test_corp", "add_external_contact", "u1", "wm1"))
    resp = await _post(client, req.query.replace("msg_signature=", "msg_signature=0"), req.body, "/wecom/callback")
    assert resp.status == 403
    assert await stored_nothing(_engine(client))


async def test_wecom_message_for_another_corp_is_refused(client):
    from bot.ingress.simulate import WeComSimulator, wecom_contact_event

    sim = wecom_sim()
    other = WeComSimulator(sim.token, "ww_other_corp", sim.aes_key)
    req = other.post(wecom_contact_event("ww_other_corp", "add_external_contact", "u1", "wm1"))
    resp = await _post(client, req.query, req.body, "/wecom/callback")
    assert resp.status == 403
    assert await stored_nothing(_engine(client))



async def test_two_encrypt_fields_are_refused(client):
    req = oa_sim().post(oa_text("o1", "hi", 1))
    doubled = req.body.replace(b"</xml>", b"<Encrypt><![CDATA[QUJD]]></Encrypt></xml>")
    resp = await _post(client, req.query, doubled)
    assert resp.status == 400
    assert await stored_nothing(_engine(client))
