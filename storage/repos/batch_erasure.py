"""A batch's share of a PIPL erasure (storage/repos/erasure.py erase_lead calls it, beside erase_customers):
the erased people's WeChat ids leave the batch recipients and the WeCom task calls that listed them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import BatchRecipient, BatchTask, OutboxMessage


async def erase_recipients(session: AsyncSession, lead_ids: Sequence[int], external_userids: Sequence[str]) -> int:
    """PIPL erasure, in the caller's transaction: the erased people's external_userid and OpenID leave their
    recipient rows (the outcome stays, anonymous) and the WeCom task calls (outbox payloads and answers) that
    listed them; a task call not yet made and left empty is cancelled. How many task calls changed."""
    ids, euids = sorted({int(i) for i in lead_ids}), set(external_userids)
    if not ids:
        return 0
    rows = (await session.execute(select(BatchRecipient.task_id, BatchRecipient.external_userid)
                                  .where(BatchRecipient.lead_id.in_(ids), BatchRecipient.task_id.is_not(None)))).all()
    euids |= {e for _, e in rows if e}
    task_ids = sorted({t for t, _ in rows if t is not None})
    await session.execute(update(BatchRecipient).where(BatchRecipient.lead_id.in_(ids))
                          .values(external_userid=None, openid=None))
    if not task_ids:
        return 0
    outbox_ids = list((await session.execute(select(BatchTask.outbox_id).where(
        BatchTask.id.in_(task_ids), BatchTask.outbox_id.is_not(None)))).scalars())
    stmt = select(OutboxMessage).where(OutboxMessage.id.in_(outbox_ids))
    if session.get_bind().dialect.name == "postgresql":  # the sender rewrites a row's response under this lock
        stmt = stmt.with_for_update()
    changed = 0
    for row in (await session.execute(stmt)).scalars():
        payload = dict(row.payload or {})
        kept = [e for e in payload.get("external_userid") or [] if e not in euids]
        values: dict[str, Any] = {"payload": {**payload, "external_userid": kept}}
        if row.response and isinstance(row.response.get("fail_list"), list):
            values["response"] = {**row.response, "fail_list": [e for e in row.response["fail_list"]
                                                                if e not in euids]}
        if not kept and row.status in ("pending", "sandboxed"):
            values.update(status="cancelled", last_error="the customers' data was erased")
        await session.execute(update(OutboxMessage).where(OutboxMessage.id == row.id).values(**values))
        changed += 1
    return changed
