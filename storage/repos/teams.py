"""Teams and their members (with the away flag, caps and weight routing reads)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Team, TeamMember, User


async def team_by_name(session: AsyncSession, name: str) -> Team | None:
    return (await session.execute(select(Team).where(Team.name == name))).scalar_one_or_none()


async def team_by_id(session: AsyncSession, team_id: int) -> Team | None:
    return await session.get(Team, team_id)


async def add_team(session: AsyncSession, name: str) -> Team:
    """Raises IntegrityError (at flush) when the name is taken."""
    team = Team(name=name)
    session.add(team)
    await session.flush()
    return team


async def list_teams(session: AsyncSession) -> list[Team]:
    return list((await session.execute(select(Team).order_by(Team.id))).scalars())


async def set_member(session: AsyncSession, team_id: int, user_id: int, *, away: bool = False,
                     capacity: int = 0, monthly_cap: int | None = None, weight: int | None = None) -> TeamMember:
    """Adds the user to the team, or updates their away flag and capacity when they are in it already.
    ``monthly_cap`` and ``weight``: None keeps the member's value (0, "no cap" and "derived", for a new member)."""
    member = await session.get(TeamMember, (team_id, user_id))
    if member is None:
        member = TeamMember(team_id=team_id, user_id=user_id, monthly_cap=0, weight=0)
        session.add(member)
    member.away, member.capacity = away, capacity
    if monthly_cap is not None:
        member.monthly_cap = monthly_cap
    if weight is not None:
        member.weight = weight
    await session.flush()
    return member


async def team_member(session: AsyncSession, team_id: int, user_id: int) -> TeamMember | None:
    return await session.get(TeamMember, (team_id, user_id))


async def remove_member(session: AsyncSession, team_id: int, user_id: int) -> bool:
    member = await session.get(TeamMember, (team_id, user_id))
    if member is None:
        return False
    await session.delete(member)
    await session.flush()
    return True


async def members_of(session: AsyncSession, team_ids: list[int]) -> list[tuple[TeamMember, User]]:
    if not team_ids:
        return []
    stmt = (select(TeamMember, User).join(User, User.id == TeamMember.user_id)
            .where(TeamMember.team_id.in_(team_ids)).order_by(TeamMember.team_id, User.id))
    return [(m, u) for m, u in (await session.execute(stmt)).all()]


async def team_ids_of(session: AsyncSession, user_id: int) -> list[int]:
    stmt = select(TeamMember.team_id).where(TeamMember.user_id == user_id).order_by(TeamMember.team_id)
    return list((await session.execute(stmt)).scalars())


async def teammate_ids(session: AsyncSession, user_id: int) -> list[int]:
    """The members of every team the user is in, the user included (always, even in no team)."""
    mine = select(TeamMember.team_id).where(TeamMember.user_id == user_id)
    stmt = select(TeamMember.user_id).where(TeamMember.team_id.in_(mine)).distinct()
    return sorted({user_id, *(await session.execute(stmt)).scalars()})


async def share_a_team(session: AsyncSession, user_id: int, other_user_id: int) -> bool:
    """True when both users are members of at least one common team."""
    mine = select(TeamMember.team_id).where(TeamMember.user_id == user_id)
    stmt = select(TeamMember.team_id).where(TeamMember.user_id == other_user_id, TeamMember.team_id.in_(mine))
    return (await session.execute(stmt.limit(1))).first() is not None
