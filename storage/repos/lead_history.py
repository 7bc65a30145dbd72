"""A lead's profile history for the 360: the audit entries of its profile edits (``lead.profile``, written by
sdr_console/api/profile.py with the changed fields' before and after), newest first. The audit log is the one
record of who changed what: no second history table to keep in step with it. The values are the person's data:
the erasure (storage/repos/erasure.py) blanks them in these entries, keeping that an edit happened."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry
from storage.repos.audit import OK

PROFILE_EDIT = "lead.profile"  # the audit action of a profile edit (authorised as leads.access.LEAD_EDIT)


async def profile_history(session: AsyncSession, lead_id: int, limit: int = 20) -> list[AuditEntry]:
    """The lead's successful profile edits, newest first (ix_audit_log_target_kind_target_id finds them)."""
    stmt = (select(AuditEntry)
            .where(AuditEntry.target_kind == "lead", AuditEntry.target_id == str(lead_id),
                   AuditEntry.action == PROFILE_EDIT, AuditEntry.outcome == OK)
            .order_by(AuditEntry.id.desc()).limit(limit))
    return list((await session.execute(stmt)).scalars())
