"""The WeCom JS-SDK signature, checked against the example in Tencent's own documentation ("JS-SDK使用权限签名
算法", developer.work.weixin.qq.com/document/path/90506), and the agentConfig arguments built from it."""

from __future__ import annotations

import hashlib

from bot.wechat.jsapi import AgentConfig, agent_config, signature

TENCENT_TICKET = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"
TENCENT_NONCE = "Wm3WZYTPz0wzccnW"
TENCENT_TIMESTAMP = 1414587457
TENCENT_URL = "http://mp.weixin.qq.com?params=value"
TENCENT_SIGNATURE = "0f9de62fce790f9a083d5c99e95740ceb90c27ed"


def test_the_signature_of_tencents_published_example() -> None:
    assert signature(TENCENT_TICKET, TENCENT_NONCE, TENCENT_TIMESTAMP, TENCENT_URL) == TENCENT_SIGNATURE


def test_the_url_is_signed_raw_and_without_its_fragment() -> None:
    assert signature(TENCENT_TICKET, TENCENT_NONCE, TENCENT_TIMESTAMP, TENCENT_URL + "#/chat") == TENCENT_SIGNATURE
    raw = "https://crm.example.com/m/chat?a=1&b=中文"
    plain = f"jsapi_ticket=T&noncestr=N&timestamp=1&url={raw}"  # not URL-escaped, keys in Tencent's order
    assert signature("T", "N", 1, raw) == hashlib.sha1(plain.encode()).hexdigest()
    assert signature("T", "N", 1, raw) != signature("T", "N", 2, raw) != signature("U", "N", 1, raw)


class _Tickets:
    def __init__(self) -> None:
        self.asked = 0

    async def get(self) -> str:
        self.asked += 1
        return TENCENT_TICKET


async def test_agent_config_signs_with_the_cached_ticket() -> None:
    tickets = _Tickets()
    signed = await agent_config(tickets, "ww_corp", 1000002, TENCENT_URL, now=TENCENT_TIMESTAMP,  # type: ignore[arg-type]
                                nonce=TENCENT_NONCE)
    assert signed == AgentConfig("ww_corp", 1000002, TENCENT_TIMESTAMP, TENCENT_NONCE, TENCENT_SIGNATURE)
    assert signed.as_json()["jsApiList"] == ["getCurExternalContact"] and tickets.asked == 1
    other = await agent_config(tickets, "ww_corp", 1000002, TENCENT_URL, now=TENCENT_TIMESTAMP)  # type: ignore[arg-type]
    assert other.nonceStr != TENCENT_NONCE and other.signature != TENCENT_SIGNATURE  # a fresh nonce each page
