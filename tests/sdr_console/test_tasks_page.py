"""The console's 我的任务 page (/console/tasks) on both backends: the signed-in person's open tasks grouped
overdue (red, first) / due today / upcoming / undated, lead names only where they may read the lead, 完成 only
where they may edit it, another member's tasks for a team lead within the team and a 403 page (audited)
outside it; the lead 360 marks overdue tasks too. Then a real browser marks a task done from the page.

Screenshots: /tmp/tasks_page.png, /tmp/lead_tasks_overdue.png and tests/artifacts/console/<backend>/tasks.png,
lead-tasks-overdue.png (look at them).
"""

from __future__ import annotations

import re
import shutil
from datetime import timedelta

from bot.keys import ENGINE, SESSIONS
from storage.models import Lead, LeadTask, utcnow
from storage.repos.teams import add_team, set_member
from tests.sdr_console.console_support import PASSWORD, audit_rows, make_user, sign_in
from tests.support.browser import desktop_browser, screenshots, signed_in_page


async def lead(client, name: str, owner: int | None, company: str = "") -> int:
    async with client.server.app[SESSIONS]() as session, session.begin():
        row = Lead(display_name=name, owner_user_id=owner, profile={"company": company} if company else {})
        session.add(row)
        await session.flush()
        return row.id


async def tasks(client, *rows: tuple[int, str, float | None, int]) -> list[int]:
    """(lead id, title, due in hours or None, assignee) each."""
    now = utcnow()
    async with client.server.app[SESSIONS]() as session, session.begin():
        made = [LeadTask(lead_id=lead_id, title=title, assignee_user_id=who, status="open",
                         due_at=None if hours is None else now + timedelta(hours=hours))
                for lead_id, title, hours, who in rows]
        session.add_all(made)
        await session.flush()
        return [t.id for t in made]


async def team(client, name: str, *members: int) -> None:
    async with client.server.app[SESSIONS]() as session, session.begin():
        found = await add_team(session, name)
        for member in members:
            await set_member(session, found.id, member)


def section(html: str, key: str) -> str:
    match = re.search(rf'id="group-{key}".*?</section>', html, flags=re.S)
    return match[0] if match else ""


async def seeded(client) -> dict[str, int]:
    engine = client.server.app[ENGINE]
    ids = {"sales": await make_user(engine, "wanglei", role="sales", display_name="王磊"),
           "other": await make_user(engine, "zhaomin", role="sales", display_name="赵敏"),
           "tl": await make_user(engine, "zhouqiang", role="team_lead", display_name="周强")}
    await team(client, "华东", ids["sales"], ids["tl"])
    own = await lead(client, "李娜", ids["sales"], "苏州光电")
    foreign = await lead(client, "王芳", ids["other"], "杭州云科")
    # Later in the day than now, whatever the hour: one minute ahead counts as today except just before midnight.
    late, foreign_late, today, later, undated, theirs = await tasks(
        client, (own, "回访：确认预算", -26, ids["sales"]), (foreign, "协助同事准备演示", -2, ids["sales"]),
        (own, "发送报价单", 1 / 60, ids["sales"]), (own, "安排技术交流", 72, ids["sales"]),
        (own, "整理需求文档", None, ids["sales"]), (foreign, "赵敏的任务", -1, ids["other"]))
    return {**ids, "own": own, "foreign": foreign, "late": late, "foreign_late": foreign_late, "today": today,
            "later": later, "undated": undated, "theirs": theirs}


async def test_my_tasks_are_grouped_overdue_first_with_names_and_buttons_as_allowed(app_client) -> None:
    client = await app_client()
    ids = await seeded(client)
    assert (await sign_in(client, "wanglei")).status == 303
    resp = await client.get("/console/tasks")
    html = await resp.text()
    assert resp.status == 200 and '<title>我的任务 · LeadRelay' in html
    assert 'href="/console/tasks" aria-current="page"' in html  # in the navigation, current
    overdue = section(html, "overdue")
    assert html.index('id="group-overdue"') < html.index('id="group-upcoming"') < html.index('id="group-undated"')
    assert "lr-task-overdue" in overdue and "回访：确认预算" in overdue and "逾期 1 天" in overdue
    assert "李娜 · 苏州光电" in overdue
    # 王芳 is another salesperson's lead: the task shows, her name does not, and only its owner's side may edit.
    assert "协助同事准备演示" in overdue and "王芳" not in html and f"潜客 #{ids['foreign']}" in overdue
    assert f'/api/leads/{ids["own"]}/tasks/{ids["late"]}/done' in overdue
    assert f'/tasks/{ids["foreign_late"]}/done' not in html
    assert "安排技术交流" in section(html, "upcoming") and "整理需求文档" in section(html, "undated")
    assert "赵敏的任务" not in html and 'id="task-person"' not in html  # a salesperson sees only their own
    board = await client.get("/console/tasks/board?assignee=me")
    assert board.status == 200 and "<nav" not in (text := await board.text()) and "回访：确认预算" in text


async def test_a_team_lead_sees_a_members_tasks_and_no_one_outside_the_team(app_client) -> None:
    client = await app_client()
    ids = await seeded(client)
    assert (await sign_in(client, "zhouqiang")).status == 303
    resp = await client.get(f"/console/tasks?assignee={ids['sales']}")
    html = await resp.text()
    assert resp.status == 200 and "王磊 的任务" in html and "回访：确认预算" in html
    assert 'id="task-person"' in html and "周强（我）" in html and "赵敏" not in html
    refused = await client.get(f"/console/tasks?assignee={ids['other']}")
    assert refused.status == 403 and "赵敏的任务" not in await refused.text()
    [entry] = await audit_rows(client, outcome="denied")
    assert entry.action == "lead.read" and entry.actor_user_id == ids["tl"]
    assert (await client.get("/console/tasks?assignee=abc")).status == 400


async def test_the_lead_page_marks_overdue_tasks(app_client) -> None:
    client = await app_client()
    ids = await seeded(client)
    assert (await sign_in(client, "wanglei")).status == 303
    html = await (await client.get(f"/console/leads/{ids['own']}")).text()
    late = re.search(r'<li class="[^"]*lr-task-overdue[^"]*">.*?</li>', html, flags=re.S)
    assert late and "回访：确认预算" in late[0] and "已逾期" in late[0]
    assert html.count("lr-task-overdue") == 1  # today's and later tasks are not


async def test_a_salesperson_completes_an_overdue_task_in_a_browser(app_client, backend, playwright_api) -> None:
    client = await app_client()
    ids = await seeded(client)
    await tasks(client, (ids["own"], "补充开票信息", -3, ids["sales"]))
    base = str(client.make_url("")).rstrip("/")
    async with desktop_browser(playwright_api) as context:
        page, errors = await signed_in_page(context, base, "wanglei", PASSWORD)
        await page.click("nav a:has-text('我的任务')")
        await page.wait_for_selector("#group-overdue")
        assert await page.inner_text("#count-overdue") == "3"
        colour = await page.eval_on_selector("#group-overdue .badge.text-bg-danger",
                                             "e => getComputedStyle(e).backgroundColor")
        assert colour == "rgb(220, 53, 69)"  # Bootstrap's danger red: the stylesheet is really there
        shot = screenshots(backend) / "tasks.png"
        await page.screenshot(path=str(shot), full_page=True)
        shutil.copy(shot, "/tmp/tasks_page.png")
        await page.click(f"#task-{ids['late']} button:has-text('完成')")
        await page.wait_for_selector("#task-feedback .alert-success:has-text('任务已完成')")
        await page.wait_for_selector(f"#task-{ids['late']}", state="detached")
        assert await page.inner_text("#count-overdue") == "2"
        # The lead's own tasks tab marks what is still overdue there.
        await page.click(f"#task-{ids['today']} a")
        await page.click("#tab-tasks")
        await page.wait_for_selector("#tasks-list .lr-task-overdue", state="visible")
        await page.wait_for_selector("#pane-tasks.show")
        await page.wait_for_timeout(400)  # Bootstrap's fade-in (0.15 s) before the screenshot
        overdue = await page.inner_text("#tasks-list .lr-task-overdue")
        assert "补充开票信息" in overdue and "已逾期" in overdue and "回访：确认预算" not in overdue  # done now
        await page.screenshot(path=str(screenshots(backend) / "lead-tasks-overdue.png"))
        shutil.copy(screenshots(backend) / "lead-tasks-overdue.png", "/tmp/lead_tasks_overdue.png")
        assert errors == []
    async with client.server.app[SESSIONS]() as session:
        assert (await session.get(LeadTask, ids["late"])).status == "done"


XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


async def test_titles_and_names_are_escaped(app_client) -> None:
    client = await app_client()
    me = await make_user(client.server.app[ENGINE], "wanglei", role="sdr")
    await tasks(client, (await lead(client, XSS, me, XSS), XSS, -1, me))
    assert (await sign_in(client, "wanglei")).status == 303
    for path in ("/console/tasks", "/console/tasks/board"):
        html = await (await client.get(path)).text()
        assert XSS not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html, path
