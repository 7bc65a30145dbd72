"""Single-use OAuth and login codes: a code this system has seen is refused *before* WeChat is asked, so a
replayed code costs no call and leaves no trace. No wechatpy here: the console (the mobile sign-in) imports it."""

from __future__ import annotations

import hashlib
from typing import Any

CODE_TTL_S = 300  # WeChat's and WeCom's codes live 5 minutes


async def claim_code(redis: Any, key_prefix: str, kind: str, code: str) -> bool:
    """True the first time this code is seen (for CODE_TTL_S); a hash is stored, never the code."""
    digest = hashlib.sha256(code.encode()).hexdigest()[:40]
    return bool(await redis.set(f"{key_prefix}oauth:{kind}:{digest}", b"1", nx=True, ex=CODE_TTL_S))
