"""A click on a hand-off card's 接受 (the WeCom ``template_card_event`` callback) accepts the lead.

The member is the event's sender (FromUserName, a WeCom userid) and acts as their user (users.wecom_userid):
authorisation is the console's, inside accept_lead (the assignee, their team lead, managers and admins), and
only the card's own assignment may be accepted (a card read before an SLA reassignment never accepts the new
one). A click that may not act changes nothing: someone else's card (403) and a member who is no single active
user are audited as denied "lead.accept", as the console's refusals are; a card of a superseded assignment or a
lead decided already is only logged. 退回 is a jump button to the mobile return form (a card click carries no
text), so only 接受 comes here. The card itself is updated by the LeadAccepted subscriber
(bot/handoff/card_update.py), whatever path accepted the lead.
"""

from __future__ import annotations

import logging

from bot.dispatch import filters as F
from bot.dispatch.context import HandlerContext
from bot.dispatch.router import Router
from bot.handoff.cards import ACCEPT, parse_button_key
from bot.ingress.events import WECOM
from leads.access import LEAD_ACCEPT
from leads.handoff import DecisionRefused
from storage.repos import audit
from storage.repos.assignments import PENDING, assignment_by_id
from storage.repos.events import EventTx
from storage.repos.handoff_cards import member_label, user_by_wecom_userid
from storage.repos.handoff_decisions import accept_lead

log = logging.getLogger(__name__)

router = Router("cards")

UNKNOWN_MEMBER = "unknown_wecom_member"  # the audit entry's code when the member is no single active user


@router.on(F.source(WECOM), F.event("template_card_event"))
async def card_clicked(ctx: HandlerContext) -> None:
    parsed = parse_button_key(ctx.event.get("EventKey"))
    if parsed is None or parsed[0] != ACCEPT:
        log.info("template_card_event with a key that is not a card's 接受: ignored (inbox row %s)", ctx.inbox_id)
        return
    assignment = await assignment_by_id(ctx.session, parsed[1])
    if assignment is None or assignment.status != PENDING:
        log.info("card click for assignment %s, which is no longer pending: ignored", parsed[1])
        return
    user = await user_by_wecom_userid(ctx.session, ctx.event.from_user)
    if user is None:
        log.warning("card click by a WeCom member who is no (single, active) user: ignored (inbox row %s)",
                    ctx.inbox_id)
        await _denied(ctx, assignment.lead_id, assignment.id, None, member_label(ctx.event.from_user),
                      UNKNOWN_MEMBER)
        return
    try:
        # A savepoint: a refusal found after a first write (the stage machine's) leaves nothing behind.
        async with ctx.session.begin_nested():
            await accept_lead(EventTx(ctx.session, ctx.services.events), assignment.lead_id, user,
                              at=ctx.occurred_at, assignment_id=assignment.id)
    except DecisionRefused as refused:
        log.info("card click by user %s on assignment %s refused: %s %s", user.id, assignment.id,
                 refused.status, refused.code)
        if refused.status == 403:  # as the API: someone else's lead is audited; a 409 (decided, stale) is not
            await _denied(ctx, assignment.lead_id, assignment.id, user.id, user.username, refused.code)


async def _denied(ctx: HandlerContext, lead_id: int, assignment_id: int, user_id: int | None, label: str,
                  code: str) -> None:
    """The refusal's audit entry, in the event's transaction: the decision's savepoint rolled back, this
    commits with the inbox row (a redelivered callback is deduplicated, so it is written once)."""
    await audit.record(ctx.session, action=LEAD_ACCEPT, actor_user_id=user_id, actor_label=label,
                       target_kind="lead", target_id=lead_id,
                       after={"decision": "accept", "via": "wecom_card", "assignment_id": assignment_id,
                              "code": code},
                       outcome=audit.DENIED, at=ctx.now)
