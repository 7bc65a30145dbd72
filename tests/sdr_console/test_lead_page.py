"""The lead 360 page (/console/leads/{id}) and its fragments over real HTTP on both backends: every section
renders, the rule table scopes it (a refused page is a 403 and an audit entry), unknown ids are 404, merged leads
redirect to their survivor, edit controls follow the rule table, and text from prospects and colleagues renders
as text, never markup."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import update

from bot.keys import ENGINE
from leads.lifecycle import STAGE_LABELS
from storage.db import session_factory
from storage.models import Lead, utcnow
from storage.repos.teams import add_team, set_member
from tests.sdr_console.console_support import audit_rows, make_user, sign_in
from tests.sdr_console.lead_seed import seed_360

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
SECTIONS = ("profile", "score", "stages", "tags", "notes", "tasks", "bant", "duplicates", "timeline")


@pytest.fixture
async def client(app_client):
    return await app_client()


async def signed_in(client, username: str, role: str) -> int:
    user_id = await make_user(client.server.app[ENGINE], username, role=role)
    resp = await sign_in(client, username)
    assert resp.status == 303
    return user_id


async def test_every_section_of_the_360_renders(client):
    await signed_in(client, "chen", "sdr")
    lead = await seed_360(client.server.app[ENGINE])
    resp = await client.get(f"/console/leads/{lead}")
    assert resp.status == 200
    html = await resp.text()
    for marker in ("基本资料", "身份标识", "评分", "得分明细", "沟通与触点记录", "备注", "任务", "BANT 资格",
                   "生命周期",
                   "疑似重复与合并冲突", "资料修改记录", "杭州某某网络", "互联网 / 软件", "你好，想了解一下价格 2",
                   "您好！你好", "关注公众号", "客服消息", STAGE_LABELS["recycled"], "资料修改记录（0）"):
        assert marker in html, marker
    for section in SECTIONS:
        assert f'hx-get="/console/leads/{lead}/{section}"' in html
        fragment = await client.get(f"/console/leads/{lead}/{section}")
        assert fragment.status == 200, section
        assert "<html" not in await fragment.text()  # a fragment, not a page
    # An SDR may edit, move, transfer and merge: every control is there.
    for control in ('id="note-form"', 'id="task-form"', 'id="bant-form"', 'id="transfer-form"', 'id="stage-form"',
                    'id="profile-form"', "lr-tag-form", "/merge", "/dismiss"):
        assert control in html, control


async def test_the_first_timeline_page_only_and_older_pages_on_request(client):
    await signed_in(client, "chen", "sdr")
    lead = await seed_360(client.server.app[ENGINE], touches=45)
    html = await (await client.get(f"/console/leads/{lead}")).text()
    assert html.count('data-item="') == 30 and "加载更早的记录" in html
    seen = set(re.findall(r'data-item="([^"]+)"', html))
    url = re.search(r'hx-get="(/console/leads/\d+/timeline\?before=[^"]+)"', html)
    assert url
    older = await client.get(url[1].replace("&amp;", "&"))
    assert older.status == 200
    rest = set(re.findall(r'data-item="([^"]+)"', await older.text()))
    # 45 messages + 1 reply + 1 touchpoint + 2 stage changes, each once.
    assert len(seen | rest) == 49 and not seen & rest
    assert "已显示全部记录" in await older.text()
    bad = await client.get(f"/console/leads/{lead}/timeline?before=garbage")
    assert bad.status == 400


async def test_a_salesperson_sees_only_their_own_leads_and_refusals_are_audited(client):
    engine = client.server.app[ENGINE]
    uid = await signed_in(client, "sun", "sales")
    other = await make_user(engine, "zhou", role="sales")
    mine = await seed_360(engine, owner=uid)
    theirs = await seed_360(engine, owner=other)
    assert (await client.get(f"/console/leads/{mine}")).status == 200
    for path in (f"/console/leads/{theirs}", f"/console/leads/{theirs}/notes", f"/console/leads/{theirs}/timeline"):
        resp = await client.get(path)
        assert resp.status == 403
        text = await resp.text()
        assert "无权查看" in text and "王芳" not in text and "杭州" not in text
    denied = await audit_rows(client, outcome="denied", target_kind="lead", target_id=str(theirs))
    assert len(denied) == 3 and {d.actor_user_id for d in denied} == {uid}
    # A salesperson may edit their own lead but neither transfer it nor merge duplicates.
    html = await (await client.get(f"/console/leads/{mine}")).text()
    assert 'id="note-form"' in html and 'id="transfer-form"' not in html and "/merge" not in html


async def test_a_team_lead_sees_the_team_s_leads(client):
    engine = client.server.app[ENGINE]
    lead_uid = await signed_in(client, "qian", "team_lead")
    mate = await make_user(engine, "wu", role="sales")
    stranger = await make_user(engine, "zheng", role="sales")
    async with session_factory(engine)() as session, session.begin():
        team = await add_team(session, "华东")
        await set_member(session, team.id, lead_uid)
        await set_member(session, team.id, mate)
    assert (await client.get(f"/console/leads/{await seed_360(engine, owner=mate)}")).status == 200
    assert (await client.get(f"/console/leads/{await seed_360(engine, owner=stranger)}")).status == 403


async def test_unknown_and_malformed_ids_are_404_and_merged_leads_redirect(client):
    engine = client.server.app[ENGINE]
    await signed_in(client, "chen", "sdr")
    for raw in ("999999", "0", "-1", "abc", "1.0", "99999999999999999999"):
        resp = await client.get(f"/console/leads/{raw}")
        assert resp.status == 404, raw
        assert "找不到该潜客" in await resp.text()
    survivor, absorbed = await seed_360(engine), await seed_360(engine)
    async with engine.begin() as conn:
        await conn.execute(update(Lead).where(Lead.id == absorbed).values(merged_into_id=survivor, stage="merged"))
    resp = await client.get(f"/console/leads/{absorbed}/notes", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == f"/console/leads/{survivor}/notes"


async def test_signed_out_visitors_are_sent_to_sign_in(client):
    lead = await seed_360(client.server.app[ENGINE])
    resp = await client.get(f"/console/leads/{lead}", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/console/login")


@pytest.mark.parametrize("payload", [SCRIPT, IMG])
async def test_what_people_wrote_renders_as_text(client, payload):
    engine = client.server.app[ENGINE]
    await signed_in(client, "chen", "sdr")
    lead = await seed_360(engine, text=payload, name=payload)
    html = await (await client.get(f"/console/leads/{lead}")).text()
    assert payload not in html  # nickname, message, reply, note, tag, task title, stage reason: all escaped
    escaped = payload.replace("<", "&lt;").replace(">", "&gt;")
    assert html.count(escaped) >= 7
    for section in SECTIONS:
        assert payload not in await (await client.get(f"/console/leads/{lead}/{section}")).text(), section


async def test_an_erased_lead_shows_no_edit_controls(client):
    engine = client.server.app[ENGINE]
    await signed_in(client, "chen", "sdr")
    lead = await seed_360(engine)
    async with engine.begin() as conn:
        await conn.execute(update(Lead).where(Lead.id == lead).values(erased_at=utcnow()))
    html = await (await client.get(f"/console/leads/{lead}")).text()
    assert "个人信息已按其要求删除" in html
    for control in ('id="note-form"', 'id="task-form"', 'id="bant-form"', 'id="transfer-form"', 'id="stage-form"',
                    'id="profile-form"', "lr-tag-form"):
        assert control not in html, control
