"""The authorisation rule table: salespeople act on their own leads, team leads on their team's."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from leads.access import (
    ACTIONS,
    ADMIN,
    ALL,
    AUDIT_READ,
    LEAD_ACTIONS,
    LEAD_ERASE,
    LEAD_READ,
    LEAD_STAGE,
    MANAGER,
    OTHER_ACTIONS,
    OWN,
    ROLES,
    RULES,
    SALES,
    SDR,
    TEAM,
    TEAM_LEAD,
    USER_WRITE,
    allowed,
    scope,
)

roles, actions, flags = st.sampled_from(ROLES), st.sampled_from(ACTIONS), st.booleans()


def test_every_role_has_a_row_and_only_known_actions() -> None:
    assert set(RULES) == set(ROLES)
    for row in RULES.values():
        assert set(row) <= set(ACTIONS)


def test_non_lead_actions_are_all_or_nothing() -> None:
    for role in ROLES:
        for action in OTHER_ACTIONS:
            assert scope(role, action) in (None, ALL)


@given(roles, actions, flags, flags)
def test_ownership_only_widens(role: str, action: str, owns: bool, same_team: bool) -> None:
    """Owning the lead or sharing its team never takes a permission away."""
    base = allowed(role, action, owns=False, same_team=False)
    assert not base or allowed(role, action, owns=owns, same_team=same_team)
    if allowed(role, action, owns=False, same_team=True):
        assert allowed(role, action, owns=True, same_team=True)


@given(st.sampled_from(LEAD_ACTIONS), flags)
def test_a_salesperson_acts_only_on_leads_assigned_to_them(action: str, same_team: bool) -> None:
    assert not allowed(SALES, action, owns=False, same_team=same_team)
    assert allowed(SALES, action, owns=True, same_team=same_team) == (scope(SALES, action) is not None)


@given(st.sampled_from(LEAD_ACTIONS), flags)
def test_a_team_lead_acts_on_the_team_s_leads_only(action: str, owns: bool) -> None:
    if scope(TEAM_LEAD, action) is None:
        assert not allowed(TEAM_LEAD, action, owns=True, same_team=True)
        return
    assert scope(TEAM_LEAD, action) == TEAM
    assert allowed(TEAM_LEAD, action, owns=owns, same_team=True)
    assert allowed(TEAM_LEAD, action, owns=False, same_team=False) is False


@given(actions, flags, flags)
def test_admin_may_do_everything(action: str, owns: bool, same_team: bool) -> None:
    assert allowed(ADMIN, action, owns=owns, same_team=same_team)


@given(st.text(max_size=12).filter(lambda r: r not in ROLES), actions, flags, flags)
def test_an_unknown_role_or_action_is_refused(role: str, action: str, owns: bool, same_team: bool) -> None:
    assert not allowed(role, action, owns=owns, same_team=same_team)
    assert not allowed(SDR, "lead.fly", owns=owns, same_team=same_team)


def test_spot_checks_of_the_table() -> None:
    assert scope(SALES, LEAD_READ) == OWN
    assert allowed(SDR, LEAD_STAGE, owns=False, same_team=False)
    assert not allowed(SDR, USER_WRITE) and not allowed(MANAGER, USER_WRITE) and allowed(ADMIN, USER_WRITE)
    assert allowed(MANAGER, AUDIT_READ) and not allowed(TEAM_LEAD, AUDIT_READ) and not allowed(SDR, AUDIT_READ)
    assert not allowed(SDR, LEAD_ERASE) and allowed(MANAGER, LEAD_ERASE)
