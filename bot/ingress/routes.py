"""The callback endpoints WeChat and WeCom call. Every refusal happens before anything is stored."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from bot.config.core import Config
from bot.errors import BadSignature, MalformedPayload
from bot.ingress.events import OA, WECOM, build_event
from bot.ingress.security import Envelope, check_timestamp, encrypted_field, parse_xml, verify_signature
from bot.keys import CONFIG, PIPELINE

SUCCESS = "success"


@dataclass(frozen=True, slots=True)
class Envelopes:
    oa: Envelope | None  # None: plaintext mode
    wecom: Envelope | None  # None: WeCom not configured

    @classmethod
    def from_config(cls, cfg: Config) -> Envelopes:
        w, c = cfg.wechat, cfg.wecom
        return cls(
            oa=Envelope(w.token, w.encoding_aes_key, w.app_id, work=False) if w.encoding_aes_key else None,
            wecom=Envelope(c.token, c.encoding_aes_key, c.corp_id, work=True) if c.enabled else None,
        )


ENVELOPES = web.AppKey("envelopes", Envelopes)


def _query(request: web.Request, name: str) -> str:
    value = request.query.get(name)
    if not value or len(value) > 512:
        raise BadSignature(f"missing or malformed query parameter {name}")
    return value


def _fresh_timestamp(request: web.Request, cfg: Config) -> str:
    return check_timestamp(request.query.get("timestamp"), cfg.callback.max_timestamp_skew_s)


async def oa_handshake(request: web.Request) -> web.Response:
    cfg = request.app[CONFIG]
    timestamp = _fresh_timestamp(request, cfg)
    nonce = _query(request, "nonce")
    verify_signature(request.query.get("signature"), cfg.wechat.token, timestamp, nonce)
    return web.Response(text=_query(request, "echostr"))


async def oa_receive(request: web.Request) -> web.Response:
    cfg = request.app[CONFIG]
    timestamp = _fresh_timestamp(request, cfg)
    nonce = _query(request, "nonce")
    verify_signature(request.query.get("signature"), cfg.wechat.token, timestamp, nonce)
    body = await request.read()
    envelope = request.app[ENVELOPES].oa
    encrypted = request.query.get("encrypt_type", "raw").lower() == "aes"
    if envelope is None and encrypted:
        raise MalformedPayload("encrypted message but wechat.encoding_aes_key is not configured")
    if envelope is not None and not encrypted:
        # In plaintext mode the body is not covered by the signature; with a key configured we insist on it.
        raise BadSignature("plaintext message refused: safe mode is configured")
    xml = envelope.decrypt(encrypted_field(body), request.query.get("msg_signature"), timestamp, nonce) \
        if envelope is not None else body
    event = build_event(OA, cfg.wechat.app_id, parse_xml(xml))
    reply = await request.app[PIPELINE].accept(event, xml.decode("utf-8"))
    if reply and envelope is not None:
        reply = envelope.encrypt(reply, nonce, timestamp)
    return web.Response(text=reply or SUCCESS, content_type="application/xml" if reply else "text/plain")


async def wecom_handshake(request: web.Request) -> web.Response:
    cfg = request.app[CONFIG]
    timestamp = _fresh_timestamp(request, cfg)
    plain = _wecom(request).decrypt(
        _query(request, "echostr"), request.query.get("msg_signature"), timestamp, _query(request, "nonce"))
    return web.Response(body=plain, content_type="text/plain")


async def wecom_receive(request: web.Request) -> web.Response:
    cfg = request.app[CONFIG]
    timestamp = _fresh_timestamp(request, cfg)
    nonce = _query(request, "nonce")
    body = await request.read()
    envelope = _wecom(request)
    xml = envelope.decrypt(encrypted_field(body), request.query.get("msg_signature"), timestamp, nonce)
    event = build_event(WECOM, cfg.wecom.corp_id, parse_xml(xml))
    reply = await request.app[PIPELINE].accept(event, xml.decode("utf-8"))
    if reply:
        return web.Response(text=envelope.encrypt(reply, nonce, timestamp), content_type="application/xml")
    return web.Response(text="")


def _wecom(request: web.Request) -> Envelope:
    envelope = request.app[ENVELOPES].wecom
    assert envelope is not None  # the WeCom routes exist only when WeCom is configured
    return envelope


def add_routes(app: web.Application, cfg: Config) -> None:
    app[ENVELOPES] = Envelopes.from_config(cfg)
    app.router.add_get("/wechat/callback", oa_handshake)
    app.router.add_post("/wechat/callback", oa_receive)
    if cfg.wecom.enabled:
        app.router.add_get("/wecom/callback", wecom_handshake)
        app.router.add_post("/wecom/callback", wecom_receive)
