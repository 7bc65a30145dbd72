"""The lead list's SQL (storage/repos/lead_search.py) on both backends: every filter, every search-box shape,
the sort orders, pages, the capped count, the caller's scope, and merged/erased leads never listed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from leads.lead_filters import LeadFilter, classify_query, day_after, day_start
from storage.db import session_factory
from storage.models import Identity, Lead, LeadScore, LeadTag, Team, TeamMember, Touchpoint, User
from storage.repos.lead_search import count_capped, lead_page
from storage.repos.leads import search_leads
from storage.repos.saved_filters import add_filter

T0 = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)  # 12:00 in Beijing


async def seed(engine) -> dict[str, int]:
    """Six live leads and two that must never show (merged, erased), with owners, a team, scores, touchpoints,
    tags and identities; ``ids`` maps a short name to each."""
    async with session_factory(engine)() as session, session.begin():
        alice, bob, carol = (User(username=n, display_name=d, role="sales", password_hash="x")
                             for n, d in (("alice", "王丽"), ("bob", "李强"), ("carol", "")))
        team = Team(name="华东组")
        session.add_all([alice, bob, carol, team])
        await session.flush()
        session.add_all([TeamMember(team_id=team.id, user_id=alice.id), TeamMember(team_id=team.id, user_id=bob.id)])
        spec = {
            "zhang": ("张伟", "mql", "granted", {"company": "星河科技有限公司"}, alice.id, 0),
            "li": ("李娜", "lead", "unknown", {"company": "100%_纯净水厂"}, bob.id, 1),
            "wang": ("王芳", "sql", "revoked", {}, carol.id, 2),
            "pool": (None, "lead", "unknown", {"company": "公海贸易"}, None, 3),
            "zhao": ("赵敏", "customer", "granted", {"company": "星河物流"}, None, 4),
            "sun": ("孙悟空", "recycled", "unknown", {}, alice.id, 5),
            "merged": ("张伟 旧", "mql", "granted", {"company": "星河科技有限公司"}, alice.id, 6),
            "erased": ("张伟 删", "mql", "granted", {"company": "星河科技有限公司"}, alice.id, 7),
        }
        leads = {}
        for key, (name, stage, consent, profile, owner, days) in spec.items():
            lead = Lead(display_name=name, stage=stage, consent=consent, profile=profile, owner_user_id=owner,
                        created_at=T0 - timedelta(days=10 - days), last_activity_at=T0 + timedelta(days=days))
            session.add(lead)
            leads[key] = lead
        await session.flush()
        leads["merged"].merged_into_id = leads["zhang"].id
        leads["erased"].erased_at = T0
        scores = {"zhang": (80, 90, "sales_ready"), "li": (20, 70, "other_solution"), "wang": (75, 10, "nurture"),
                  "zhao": (10, 5, "public_pool"), "merged": (80, 90, "sales_ready"), "erased": (80, 90, "sales_ready")}
        for key, (ability, motivation, quadrant) in scores.items():
            session.add(LeadScore(lead_id=leads[key].id, ability=ability, motivation=motivation, quadrant=quadrant,
                                  rules="r", state={}, scored_at=T0))
        touch = {"zhang": ("oa", "qr_expo"), "li": ("form", "landing"), "zhao": ("oa", "menu"),
                 "merged": ("wecom", "x"), "erased": ("wecom", "x")}
        for key, (channel, scene) in touch.items():
            session.add(Touchpoint(lead_id=leads[key].id, kind="oa_scan", channel=channel, scene=scene,
                                   occurred_at=T0))
        for key, tag in (("zhang", "展会"), ("zhang", "重点"), ("wang", "展会"), ("erased", "展会")):
            session.add(LeadTag(lead_id=leads[key].id, tag=tag))
        idents = [("zhang", "phone", "13812345678", True), ("li", "phone", "13987655678", False),
                  ("li", "email", "li.na@example.com", False), ("wang", "oa_openid", "o_wang_openid", False),
                  ("erased", "phone", "13700001111", True)]
        for key, kind, value, verified in idents:
            session.add(Identity(lead_id=leads[key].id, kind=kind, app="wx" if kind == "oa_openid" else "",
                                 value=value, verified=verified))
        ids = {k: v.id for k, v in leads.items()}
        ids.update(alice=alice.id, bob=bob.id, carol=carol.id, team=team.id)
        return ids


async def names(engine, f: LeadFilter, owner_ids: list[int] | None = None, limit: int = 50,
                offset: int = 0) -> list[str]:
    async with session_factory(engine)() as session:
        rows, _ = await lead_page(session, f, owner_ids, limit, offset)
    return [r.lead.display_name or f"#{r.lead.id}" for r in rows]


def ids_of(rows) -> set[int]:
    return {r.lead.id for r in rows}


async def listed(engine, f: LeadFilter, owner_ids: list[int] | None = None) -> set[int]:
    async with session_factory(engine)() as session:
        rows, has_more = await lead_page(session, f, owner_ids, 50, 0)
        count, capped = await count_capped(session, f, owner_ids)
    assert not has_more and not capped and count == len(rows)  # the count agrees with the list
    return ids_of(rows)


@pytest.fixture
async def world(engine):
    return await seed(engine)


LIVE = ("zhang", "li", "wang", "pool", "zhao", "sun")


async def test_default_lists_live_leads_most_recent_first(engine, world):
    assert await names(engine, LeadFilter()) == ["孙悟空", "赵敏", f"#{world['pool']}", "王芳", "李娜", "张伟"]
    assert await listed(engine, LeadFilter()) == {world[k] for k in LIVE}


@pytest.mark.parametrize(("f", "want"), [
    (LeadFilter(stages=("mql", "sql")), {"zhang", "wang"}),
    (LeadFilter(quadrants=("sales_ready", "nurture")), {"zhang", "wang"}),
    (LeadFilter(consents=("granted",)), {"zhang", "zhao"}),
    (LeadFilter(ability_min=70), {"zhang", "wang"}),
    (LeadFilter(ability_max=20), {"li", "zhao"}),
    (LeadFilter(motivation_min=70, motivation_max=89.5), {"li"}),
    (LeadFilter(channel="oa"), {"zhang", "zhao"}),
    (LeadFilter(scene="landing"), {"li"}),
    (LeadFilter(channel="wecom"), set()),  # only the merged and erased leads have it
    (LeadFilter(pool=True), {"pool", "zhao"}),
    (LeadFilter(tag="展会"), {"zhang", "wang"}),
    (LeadFilter(stages=("lead",), pool=True), {"pool"}),
])
async def test_each_filter(engine, world, f, want):
    assert await listed(engine, f) == {world[k] for k in want}


async def test_owner_team_and_date_filters(engine, world):
    assert await listed(engine, LeadFilter(owner_id=world["alice"])) == {world["zhang"], world["sun"]}
    assert await listed(engine, LeadFilter(team_id=world["team"])) == {world[k] for k in ("zhang", "li", "sun")}
    # created_at is T0 - (10 - n) days; last_activity_at T0 + n days (12:00 in Beijing)
    day = (T0 - timedelta(days=8)).date()  # wang's creation day
    assert await listed(engine, LeadFilter(created_from=day_start(day), created_before=day_after(day))) \
        == {world["wang"]}
    later = (T0 + timedelta(days=4)).date()
    assert await listed(engine, LeadFilter(active_from=day_start(later))) == {world["zhao"], world["sun"]}
    assert await listed(engine, LeadFilter(active_before=day_after(T0.date()))) == {world["zhang"]}


@pytest.mark.parametrize(("q", "want"), [
    ("星河科", {"zhang"}),  # company fragment (the merged and erased leads share it: never listed)
    ("河科技", {"zhang"}),  # from three characters on, anywhere in the name or company
    ("星河", {"zhang", "zhao"}),  # shorter: from the start of the name or the company
    ("张", {"zhang"}),
    ("河", set()),
    ("100%", {"li"}),  # % is a literal character, not a wildcard
    ("0%_", {"li"}),
    ("%_纯", {"li"}),  # so is _
    ("%", set()),  # a one-character fragment from the start: no company starts with %
    ("无此人", set()),
    ("13812345678", {"zhang"}),  # exact phone
    ("+86 138-1234-5678", {"zhang"}),
    ("1381234567", set()),  # 10 digits: a fragment, not a phone
    ("5678", {"zhang", "li"}),  # last four digits
    ("1111", set()),  # the erased lead's phone
    ("LI.NA@Example.com", {"li"}),  # email, case-insensitive
    ("li.na@", set()),  # an email is matched exactly
    ("o_wang_openid", {"wang"}),  # an identifier-shaped fragment finds its exact identity
])
async def test_search_shapes(engine, world, q, want):
    assert await listed(engine, LeadFilter(search=classify_query(q))) == {world[k] for k in want}


@pytest.mark.parametrize(("sort", "order", "first", "last"), [
    ("last_activity_at", "desc", "sun", "zhang"),
    ("last_activity_at", "asc", "zhang", "sun"),
    ("created_at", "asc", "zhang", "sun"),
    ("ability", "desc", "zhang", None),  # unscored leads last either way
    ("ability", "asc", "zhao", None),
    ("motivation", "desc", "zhang", None),
    ("display_name", "asc", None, None),
    ("stage", "asc", "zhao", None),
])
async def test_sort_orders(engine, world, sort, order, first, last):
    async with session_factory(engine)() as session:
        rows, _ = await lead_page(session, LeadFilter(sort=sort, order=order), None, 50, 0)
    got = [r.lead.id for r in rows]
    assert len(got) == len(LIVE)
    if first:
        assert got[0] == world[first]
    if last:
        assert got[-1] == world[last]
    if sort in ("ability", "motivation"):
        assert {got[-1], got[-2]} == {world["pool"], world["sun"]}
    if sort == "display_name":
        named = [r.lead.display_name for r in rows if r.lead.display_name]
        assert named == sorted(named) and rows[-1].lead.display_name is None


async def test_pages_have_more_and_capped_count(engine, world):
    f = LeadFilter()
    pages = []
    async with session_factory(engine)() as session:
        for offset in (0, 2, 4):
            rows, more = await lead_page(session, f, None, 2, offset)
            pages.append((ids_of(rows), more))
        assert await count_capped(session, f, None, cap=4) == (4, True)
        assert await count_capped(session, f, None, cap=6) == (6, False)
    assert [more for _, more in pages] == [True, True, False]
    assert set().union(*(p for p, _ in pages)) == {world[k] for k in LIVE}


async def test_scope_is_never_widened_by_a_filter(engine, world):
    mine = [world["alice"]]
    assert await listed(engine, LeadFilter(), mine) == {world["zhang"], world["sun"]}
    assert await listed(engine, LeadFilter(owner_id=world["bob"]), mine) == set()
    assert await listed(engine, LeadFilter(pool=True), mine) == set()
    assert await listed(engine, replace(LeadFilter(), search=classify_query("星河")), mine) == {world["zhang"]}
    assert await listed(engine, LeadFilter(), []) == set()


async def test_rows_carry_owner_phone_tags_and_scores(engine, world):
    async with session_factory(engine)() as session:
        rows, _ = await lead_page(session, LeadFilter(search=classify_query("张伟")), None, 50, 0)
    (row,) = rows
    assert (row.owner_name, row.phone, row.tags) == ("王丽", "13812345678", ("展会", "重点"))
    assert (row.ability, row.motivation, row.quadrant) == (80, 90, "sales_ready")


async def test_search_leads_keeps_its_contract(engine, world):
    async with session_factory(engine)() as session:
        found = await search_leads(session, "星河", 10, 0)
        assert {lead.id for lead in found} == {world["zhang"], world["zhao"]}
        assert [lead.id for lead in await search_leads(session, None, 1, 1)] == [world["zhao"]]
        assert await search_leads(session, "星河", 10, 0, owner_ids=[world["bob"]]) == []


async def test_a_second_filter_of_the_same_name_is_refused_in_its_savepoint(engine, world):
    """The unique (user, name) decides a double click: the second add is None, the transaction goes on."""
    async with session_factory(engine)() as session, session.begin():
        assert await add_filter(session, world["alice"], "华东 MQL", {"stage": ["mql"]}) is not None
        assert await add_filter(session, world["alice"], "华东 MQL", {"stage": ["sal"]}) is None
        assert await add_filter(session, world["alice"], "另一个", {}) is not None
