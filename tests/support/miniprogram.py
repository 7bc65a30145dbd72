"""What the mini-program does against the app in tests: log a visitor in (wx.login's code) and send a form."""

from __future__ import annotations

from typing import Any

from tests.support.app import Client
from tests.support.fakes.wechat_server import FakeWeChatServer
from tests.support.forms import MP_APP_ID


async def mp_login(client: Client, fake: FakeWeChatServer, openid: str = "mp_open_1",
                   unionid: str | None = None) -> str:
    """The session token /api/mp/login gives this visitor."""
    resp = await client.post("/api/mp/login", json={"code": fake.state.issue_login_code(MP_APP_ID, openid, unionid)})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def mp_auth(client: Client, fake: FakeWeChatServer, openid: str = "mp_open_1",
                  unionid: str | None = None) -> dict[str, str]:
    """The Authorization header of a logged-in visitor."""
    return bearer(await mp_login(client, fake, openid, unionid))


async def mp_submit(client: Client, auth: dict[str, str], body: dict[str, Any], form: str = "demo",
                    **headers: str) -> tuple[int, Any]:
    """Sends a form as the mini-program does; the answer's status and JSON body."""
    resp = await client.post(f"/api/mp/forms/{form}", json=body, headers={**auth, **headers})
    return resp.status, await resp.json()
