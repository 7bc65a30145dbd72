"""Callbacks exactly as WeChat and WeCom send them: signed, optionally encrypted.

For tests, benchmarks and local trials against a running LeadRelay (WeChat's servers cannot reach a laptop).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from bot.ingress.security import Envelope, signature_of


def render_xml(fields: dict[str, str | int]) -> str:
    parts = []
    for name, value in fields.items():
        if isinstance(value, int):
            parts.append(f"<{name}>{value}</{name}>")
        else:
            parts.append(f"<{name}><![CDATA[{value}]]></{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


def oa_text(openid: str, content: str, msg_id: int, *, to: str = "gh_leadrelay", at: int | None = None) -> str:
    return render_xml({"ToUserName": to, "FromUserName": openid, "CreateTime": at or int(time.time()),
                       "MsgType": "text", "Content": content, "MsgId": msg_id})


def oa_event(openid: str, event: str, event_key: str | None = None, *, to: str = "gh_leadrelay",
             at: int | None = None) -> str:
    fields: dict[str, str | int] = {"ToUserName": to, "FromUserName": openid,
                                    "CreateTime": at or int(time.time()), "MsgType": "event", "Event": event}
    if event_key is not None:
        fields["EventKey"] = event_key
    return render_xml(fields)


def wecom_contact_event(corp_id: str, change_type: str, user_id: str, external_userid: str, *,
                        state: str | None = None, welcome_code: str | None = None, at: int | None = None) -> str:
    fields: dict[str, str | int] = {"ToUserName": corp_id, "FromUserName": "sys",
                                    "CreateTime": at or int(time.time()), "MsgType": "event",
                                    "Event": "change_external_contact", "ChangeType": change_type,
                                    "UserID": user_id, "ExternalUserID": external_userid}
    if state is not None:
        fields["State"] = state
    if welcome_code is not None:
        fields["WelcomeCode"] = welcome_code
    return render_xml(fields)


@dataclass(frozen=True)
class SignedRequest:
    query: str
    body: bytes

    def url(self, base: str, path: str) -> str:
        return f"{base.rstrip('/')}{path}?{self.query}"


@dataclass(frozen=True)
class OASimulator:
    token: str
    app_id: str
    aes_key: str = ""

    def handshake(self, echostr: str, *, timestamp: int | None = None) -> str:
        ts, nonce = str(timestamp or int(time.time())), uuid.uuid4().hex[:10]
        return urlencode({"signature": signature_of(self.token, ts, nonce), "timestamp": ts, "nonce": nonce,
                          "echostr": echostr})

    def post(self, xml: str, *, timestamp: int | None = None, safe: bool | None = None) -> SignedRequest:
        ts, nonce = str(timestamp or int(time.time())), uuid.uuid4().hex[:10]
        query = {"signature": signature_of(self.token, ts, nonce), "timestamp": ts, "nonce": nonce,
                 "openid": "o"}
        encrypt = bool(self.aes_key) if safe is None else safe
        if not encrypt:
            return SignedRequest(urlencode(query), xml.encode())
        wrapped = Envelope(self.token, self.aes_key, self.app_id, work=False).encrypt(xml, nonce, ts)
        encrypted = _between(wrapped, "<Encrypt><![CDATA[", "]]></Encrypt>")
        query |= {"encrypt_type": "aes", "msg_signature": signature_of(self.token, ts, nonce, encrypted)}
        body = f"<xml><ToUserName><![CDATA[gh_leadrelay]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
        return SignedRequest(urlencode(query), body.encode())


@dataclass(frozen=True)
class WeComSimulator:
    token: str
    corp_id: str
    aes_key: str

    def _envelope(self) -> Envelope:
        return Envelope(self.token, self.aes_key, self.corp_id, work=True)

    def handshake(self, echostr: str, *, timestamp: int | None = None) -> str:
        ts, nonce = str(timestamp or int(time.time())), uuid.uuid4().hex[:10]
        wrapped = self._envelope().encrypt(echostr, nonce, ts)
        encrypted = _between(wrapped, "<Encrypt><![CDATA[", "]]></Encrypt>")
        return urlencode({"msg_signature": signature_of(self.token, ts, nonce, encrypted), "timestamp": ts,
                          "nonce": nonce, "echostr": encrypted})

    def post(self, xml: str, *, timestamp: int | None = None) -> SignedRequest:
        ts, nonce = str(timestamp or int(time.time())), uuid.uuid4().hex[:10]
        wrapped = self._envelope().encrypt(xml, nonce, ts)
        encrypted = _between(wrapped, "<Encrypt><![CDATA[", "]]></Encrypt>")
        query = {"msg_signature": signature_of(self.token, ts, nonce, encrypted), "timestamp": ts, "nonce": nonce}
        body = (f"<xml><ToUserName><![CDATA[{escape(self.corp_id)}]]></ToUserName>"
                f"<AgentID><![CDATA[1000002]]></AgentID><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>")
        return SignedRequest(urlencode(query), body.encode())


def decrypt_reply(envelope: Envelope, reply_xml: bytes) -> str:
    from bot.ingress.security import parse_xml

    fields = parse_xml(reply_xml)
    return envelope.decrypt(str(fields["Encrypt"]), str(fields["MsgSignature"]), str(fields["TimeStamp"]),
                            str(fields["Nonce"])).decode()


def _between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0]
