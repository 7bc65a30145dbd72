"""Who may do what: the one authorisation rule table (role × action → scope). Pure.

A scope says on which leads a role may take an action: ``ALL`` of them, its ``TEAM``'s (leads owned by a
member of one of its teams, its own included) or only its ``OWN`` (leads assigned to it). Actions that are not
about a lead (users, teams, the audit log) are allowed only with scope ``ALL``. Everything not listed is refused.
"""

from __future__ import annotations

from enum import IntEnum

SDR, SALES, TEAM_LEAD, MANAGER, ADMIN = "sdr", "sales", "team_lead", "manager", "admin"
ROLES = (SDR, SALES, TEAM_LEAD, MANAGER, ADMIN)
ROLE_LABELS = {SDR: "SDR", SALES: "销售", TEAM_LEAD: "团队主管", MANAGER: "经理", ADMIN: "管理员"}


class Scope(IntEnum):
    OWN = 1
    TEAM = 2
    ALL = 3


OWN, TEAM, ALL = Scope.OWN, Scope.TEAM, Scope.ALL

# Lead actions
LEAD_READ = "lead.read"  # list, 360, score, stages, timeline
LEAD_EDIT = "lead.edit"  # profile, notes, tags, tasks, BANT
LEAD_STAGE = "lead.stage"  # lifecycle moves by a person
LEAD_TRANSFER = "lead.transfer"  # an SDR marks the lead ready for sales
LEAD_EXPORT = "lead.export"
LEAD_ERASE = "lead.erase"
LEAD_MERGE = "lead.merge"  # duplicate suggestions: merge / dismiss
HANDOFF_READ = "handoff.read"
HANDOFF_REPLY = "handoff.reply"
LEAD_ACCEPT = "lead.accept"  # accept (SAL) or return a routed MQL: its assignee, or their team lead for them
LEAD_ASSIGN = "lead.assign"  # reassign a lead by hand to another salesperson
# Other actions
CONTENT_READ = "content.read"
CONTENT_WRITE = "content.write"
OUTBOX_READ = "outbox.read"
USER_READ = "user.read"
USER_WRITE = "user.write"
TEAM_READ = "team.read"
TEAM_WRITE = "team.write"
AUDIT_READ = "audit.read"
WEBHOOK_READ = "webhook.read"  # the CRM webhook delivery log
WEBHOOK_RESEND = "webhook.resend"
CUSTOMER_TRANSFER = "customer.transfer"  # hand a member's WeCom customers to a colleague (transfer_customer)
JOURNEY_READ = "journey.read"  # nurture journeys, their counts per step and enrolments
SEGMENT_WRITE = "segment.write"  # save a lead filter as a segment for batch messages (reading them: BATCH_READ)
BATCH_READ = "batch.read"  # segments, batch messages and their per-recipient outcomes
BATCH_SEND = "batch.send"  # preview and send a batch message to a segment

LEAD_ACTIONS = (LEAD_READ, LEAD_EDIT, LEAD_STAGE, LEAD_TRANSFER, LEAD_EXPORT, LEAD_ERASE, LEAD_MERGE,
                HANDOFF_READ, HANDOFF_REPLY, LEAD_ACCEPT, LEAD_ASSIGN)
OTHER_ACTIONS = (CONTENT_READ, CONTENT_WRITE, OUTBOX_READ, USER_READ, USER_WRITE, TEAM_READ, TEAM_WRITE, AUDIT_READ,
                 WEBHOOK_READ, WEBHOOK_RESEND, CUSTOMER_TRANSFER, JOURNEY_READ, SEGMENT_WRITE, BATCH_READ, BATCH_SEND)
ACTIONS = LEAD_ACTIONS + OTHER_ACTIONS

# The table. SDRs work the whole pool before hand-off; salespeople their own leads; team leads their team's.
RULES: dict[str, dict[str, Scope]] = {
    SDR: {LEAD_READ: ALL, LEAD_EDIT: ALL, LEAD_STAGE: ALL, LEAD_TRANSFER: ALL, LEAD_EXPORT: ALL, LEAD_MERGE: ALL,
          HANDOFF_READ: ALL, HANDOFF_REPLY: ALL, CONTENT_READ: ALL, JOURNEY_READ: ALL, SEGMENT_WRITE: ALL,
          BATCH_READ: ALL, BATCH_SEND: ALL},
    SALES: {LEAD_READ: OWN, LEAD_EDIT: OWN, LEAD_STAGE: OWN, HANDOFF_READ: OWN, HANDOFF_REPLY: OWN,
            LEAD_ACCEPT: OWN, CONTENT_READ: ALL},
    TEAM_LEAD: {LEAD_READ: TEAM, LEAD_EDIT: TEAM, LEAD_STAGE: TEAM, LEAD_TRANSFER: TEAM, LEAD_EXPORT: TEAM,
                HANDOFF_READ: TEAM, HANDOFF_REPLY: TEAM, LEAD_ACCEPT: TEAM, LEAD_ASSIGN: TEAM, CONTENT_READ: ALL,
                TEAM_READ: ALL, JOURNEY_READ: ALL, SEGMENT_WRITE: ALL, BATCH_READ: ALL, BATCH_SEND: ALL},
    MANAGER: {LEAD_READ: ALL, LEAD_EDIT: ALL, LEAD_STAGE: ALL, LEAD_TRANSFER: ALL, LEAD_EXPORT: ALL,
              LEAD_ERASE: ALL, LEAD_MERGE: ALL, HANDOFF_READ: ALL, HANDOFF_REPLY: ALL, LEAD_ACCEPT: ALL,
              LEAD_ASSIGN: ALL, CONTENT_READ: ALL, CONTENT_WRITE: ALL, OUTBOX_READ: ALL, USER_READ: ALL,
              TEAM_READ: ALL, AUDIT_READ: ALL, CUSTOMER_TRANSFER: ALL, JOURNEY_READ: ALL, SEGMENT_WRITE: ALL,
              BATCH_READ: ALL, BATCH_SEND: ALL},
    ADMIN: dict.fromkeys(ACTIONS, ALL),
}

# The lifecycle capacity (leads.lifecycle actor) each role acts in when it moves a lead.
LIFECYCLE_ACTORS: dict[str, frozenset[str]] = {
    SDR: frozenset({"sdr"}), SALES: frozenset({"sales"}), TEAM_LEAD: frozenset({"sales"}),
    MANAGER: frozenset({"sdr", "sales"}), ADMIN: frozenset({"sdr", "sales"}),
}


def scope(role: str, action: str) -> Scope | None:
    """The widest set of leads ``role`` may take ``action`` on, or None when never."""
    return RULES.get(role, {}).get(action)


def allowed(role: str, action: str, *, owns: bool = False, same_team: bool = False) -> bool:
    """May ``role`` take ``action``? ``owns``: the lead is assigned to the user; ``same_team``: to a member of
    one of the user's teams (the user included)."""
    granted = scope(role, action)
    if granted is None:
        return False
    if granted is ALL:
        return True
    if action not in LEAD_ACTIONS:
        return False  # a narrower scope means nothing outside leads: refuse rather than guess
    return owns or (granted is TEAM and same_team)
