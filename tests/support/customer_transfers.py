"""Members and their WeCom customers for the customer-transfer tests, in the database and in the fake WeCom."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from leads.identity import WECOM_EXTERNAL
from storage.models import Identity, Lead
from storage.repos.users import add_user
from tests.support.fakes.wechat_state import FakeWeChatState


async def add_member(session: AsyncSession, username: str, wecom_userid: str | None, role: str = "sales") -> int:
    user = await add_user(session, username=username, role=role, password_hash="x", wecom_userid=wecom_userid)
    return user.id


async def add_customers(session: AsyncSession, member: str | None, n: int, *, prefix: str = "wm",
                        owner_user_id: int | None = None, state: FakeWeChatState | None = None) -> list[int]:
    """``n`` leads with an external_userid ``{prefix}-{i}`` whose follow-up member is ``member`` (None: not
    recorded), also known to the fake WeCom as that member's customers; their lead ids in order."""
    leads = [Lead(display_name=f"客户{i}", profile={"wecom_owner": member} if member else {},
                  owner_user_id=owner_user_id) for i in range(n)]
    session.add_all(leads)
    await session.flush()
    session.add_all([Identity(lead_id=lead.id, kind=WECOM_EXTERNAL, app="ww-test-corp", value=f"{prefix}-{i}",
                              verified=True) for i, lead in enumerate(leads)])
    await session.flush()
    if state is not None:
        for i in range(n):
            state.register_external_contact(f"{prefix}-{i}", f"客户{i}", follow_user=[member] if member else [])
    return [lead.id for lead in leads]
