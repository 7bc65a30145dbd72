"""Handshakes and decryption against Tencent's published WeCom sample and wechatpy's own vectors,
both at the crypto layer and through the real endpoints."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from bot.errors import BadSignature, WrongReceiver
from bot.ingress.security import Envelope, signature_of
from bot.ingress.simulate import decrypt_reply
from bot.keys import ENGINE
from storage.models import InboxEvent
from tests.support.helpers import count, oa_sim, wait_processed

# Tencent's sample (WXBizMsgCrypt Sample.cs / sample.py in the WeCom callback SDK).
TENCENT = {"token": "QDG6eK", "corp_id": "wx5823bf96d3bd56c7", "key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"}
TENCENT_VERIFY = {"msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "timestamp": "1409659589",
                  "nonce": "263014780",
                  "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="}
TENCENT_POST = {"msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6", "timestamp": "1409659813",
                "nonce": "1372623149"}
TENCENT_BODY = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[RypEvHKD8QQKFhvQ6QleEB4J58tiP"
    "dvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt"
    "66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7"
    "PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+r"
    "UPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZI"
    "s2pDBS8R07+qN+E7Q==]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
)

# wechatpy tests/test_crypto.py
WECHATPY = {"token": "123456", "key": "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "app_id": "wx49f0ab532d5d035a"}
WECHATPY_ECHO = {"msg_signature": "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "timestamp": "1411443780",
                 "nonce": "437374425",
                 "echostr": "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="}
WECHATPY_POST = {"msg_signature": "74d92dfeb87ba7c714f89d98870ae5eb62dff26d", "timestamp": "1411525903",
                 "nonce": "461056294"}
WECHATPY_ENCRYPT = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGym"
    "zxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4h"
    "IiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgW"
    "YEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)


def test_tencent_verify_url_sample():
    env = Envelope(TENCENT["token"], TENCENT["key"], TENCENT["corp_id"], work=True)
    v = TENCENT_VERIFY
    assert env.decrypt(v["echostr"], v["msg_signature"], v["timestamp"], v["nonce"]) == b"1616140317555161061"


def test_tencent_verify_url_sample_with_wrong_nonce_fails():
    env = Envelope(TENCENT["token"], TENCENT["key"], TENCENT["corp_id"], work=True)
    v = TENCENT_VERIFY
    with pytest.raises(BadSignature):
        env.decrypt(v["echostr"], v["msg_signature"], v["timestamp"], "263014781")


def test_wechatpy_vectors_decrypt_for_the_oa_and_wecom():
    for work in (True, False):
        env = Envelope(WECHATPY["token"], WECHATPY["key"], WECHATPY["app_id"], work=work)
        p = WECHATPY_POST
        plain = env.decrypt(WECHATPY_ENCRYPT, p["msg_signature"], p["timestamp"], p["nonce"])
        assert b"<Content><![CDATA[test]]></Content>" in plain
        assert b"<FromUserName><![CDATA[messense]]></FromUserName>" in plain


def test_wechatpy_vector_for_another_receiver_is_refused():
    env = Envelope(WECHATPY["token"], WECHATPY["key"], "wx_not_the_receiver", work=False)
    p = WECHATPY_POST
    with pytest.raises(WrongReceiver):
        env.decrypt(WECHATPY_ENCRYPT, p["msg_signature"], p["timestamp"], p["nonce"])


def test_reply_encryption_roundtrip():
    env = Envelope(WECHATPY["token"], WECHATPY["key"], WECHATPY["app_id"], work=False)
    wrapped = env.encrypt("<xml><Content>好</Content></xml>", "461056294", "1411525903")
    from bot.ingress.simulate import decrypt_reply

    assert decrypt_reply(env, wrapped.encode()) == "<xml><Content>好</Content></xml>"


async def test_wecom_endpoint_with_tencent_sample(app_client):
    client = await app_client(wecom={"corp_id": TENCENT["corp_id"], "token": TENCENT["token"],
                                     "encoding_aes_key": TENCENT["key"]},
                              callback={"max_timestamp_skew_s": 0})  # the sample dates from 2014
    resp = await client.get(f"/wecom/callback?{urlencode(TENCENT_VERIFY)}")
    assert resp.status == 200 and await resp.text() == "1616140317555161061"

    resp = await client.post(f"/wecom/callback?{urlencode(TENCENT_POST)}", data=TENCENT_BODY)
    assert resp.status == 200
    engine = client.server.app[ENGINE]
    await wait_processed(engine, expected=1)
    key = "wecom:wx5823bf96d3bd56c7:msg:4561255354251345929"
    assert await count(engine, InboxEvent, InboxEvent.dedup_key == key) == 1


async def test_oa_endpoint_with_wechatpy_vector(app_client):
    client = await app_client(wechat={"app_id": WECHATPY["app_id"], "token": WECHATPY["token"],
                                      "encoding_aes_key": WECHATPY["key"]},
                              callback={"max_timestamp_skew_s": 0})
    p = WECHATPY_POST
    query = {**p, "signature": signature_of(WECHATPY["token"], p["timestamp"], p["nonce"]), "encrypt_type": "aes"}
    body = f"<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName><Encrypt><![CDATA[{WECHATPY_ENCRYPT}]]>" \
           "</Encrypt></xml>"
    resp = await client.post(f"/wechat/callback?{urlencode(query)}", data=body)
    assert resp.status == 200
    reply = decrypt_reply(Envelope(WECHATPY["token"], WECHATPY["key"], WECHATPY["app_id"], work=False),
                          await resp.read())
    assert "<ToUserName><![CDATA[messense]]></ToUserName>" in reply  # the bot answered the sender
    engine = client.server.app[ENGINE]
    await wait_processed(engine, expected=1)
    assert await count(engine, InboxEvent, InboxEvent.dedup_key == "oa:wx49f0ab532d5d035a:msg:4363689963896700987")


async def test_oa_handshake(app_client):
    client = await app_client()
    resp = await client.get(f"/wechat/callback?{oa_sim().handshake('hello-echo')}")
    assert resp.status == 200 and await resp.text() == "hello-echo"


def test_wechatpy_echo_vector():
    env = Envelope(WECHATPY["token"], WECHATPY["key"], WECHATPY["app_id"], work=True)
    e = WECHATPY_ECHO
    assert env.decrypt(e["echostr"], e["msg_signature"], e["timestamp"], e["nonce"]).isdigit()
