"""H5 forms through the real app and the fake WeChat API: rendering, storing, refusing, OA web OAuth."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from bot.ingress.simulate import oa_event
from bot.keys import ENGINE
from tests.support.calls import send_oa
from tests.support.forms import (
    NOTHING,
    PLAIN_UA,
    WECHAT_UA,
    capture_config,
    csrf_of,
    field_names,
    identities,
    leads,
    stored_counts,
    touchpoints,
)
from tests.support.helpers import API_TOKEN, OA_APP_ID, free_port, lead_ids, wait_processed

DEMO_FIELDS = {"name", "phone", "email", "company", "job_title", "department", "company_size", "company_type"}
GOOD = {"name": "张伟", "phone": "+86 138-0013-8000", "email": "ZW@Corp.cn", "company": "上海某某科技有限公司",
        "job_title": "director", "department": "hr", "company_size": "500_999", "company_type": "b2b",
        "consent": "yes"}
SCRIPT = "<script>alert(1)</script>"
PLAIN = {"User-Agent": PLAIN_UA}
IN_WECHAT = {"User-Agent": WECHAT_UA}


@pytest.fixture
async def client(app_client, backend, fake):
    # A known port, so server.public_url (where WeChat sends the visitor back) is this test server.
    port = free_port()
    config = capture_config(backend, api_base_url=fake.base_url, public_url=f"http://127.0.0.1:{port}")
    return await app_client(config, port=port)


async def open_form(client, url: str = "/f/demo", headers: dict | None = None) -> str:
    resp = await client.get(url, headers=headers or PLAIN)
    assert resp.status == 200, await resp.text()
    return await resp.text()


async def submit(client, url: str, data: dict, headers: dict | None = None, csrf: str | None = None):
    if csrf is None:
        csrf = csrf_of(await open_form(client, url, headers))
    return await client.post(url, data={**data, "csrf": csrf}, headers=headers or PLAIN)


async def test_the_form_page_is_a_chinese_mobile_page_with_every_field(client):
    resp = await client.get("/f/demo", headers=PLAIN)
    page = await resp.text()
    assert resp.status == 200 and resp.content_type == "text/html"
    assert '<html lang="zh-CN">' in page and 'name="viewport" content="width=device-width' in page
    assert field_names(page) == DEMO_FIELDS
    for text in ("预约产品演示", "姓名", "手机号码", "工作邮箱", "公司名称", "职级", "总监", "所在部门", "人力资源",
                 "公司规模", "500–999人", "公司类型", "B2B（面向企业）", "非营利组织", "《隐私政策》", "提交"):
        assert text in page, text
    assert 'type="checkbox" name="consent"' in page
    cookie = resp.headers["Set-Cookie"]
    assert "lr_form=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "script-src" not in resp.headers["Content-Security-Policy"]  # no scripts at all (default-src 'none')


async def test_a_valid_submission_stores_the_lead_its_source_and_the_score_event(client):
    engine = client.server.app[ENGINE]
    url = "/f/demo?src=expo2026&utm_source=baidu&utm_medium=cpc&utm_campaign=spring&utm_term=hr+saas"
    resp = await submit(client, url, GOOD)
    page = await resp.text()
    assert resp.status == 200 and "提交成功" in page and "张伟，预约成功" in page

    (lead,) = await leads(engine)
    assert lead.display_name == "张伟" and lead.consent == "granted" and lead.consent_updated_at is not None
    assert await identities(engine) == {("phone", "", "13800138000", False), ("email", "", "zw@corp.cn", False)}
    assert {k: v for k, v in lead.profile.items() if k != "consent"} == {
        "name": "张伟", "company": "上海某某科技有限公司", "job_title": "director", "department": "hr",
        "company_size": "500_999", "company_type": "b2b"}
    assert lead.profile["consent"]["state"] == "granted" and lead.profile["consent"]["form"] == "demo"
    assert len(lead.profile["consent"]["privacy_version"]) == 16
    submit_tp, score_tp = await touchpoints(engine)
    assert (submit_tp.kind, submit_tp.channel, submit_tp.scene, submit_tp.source_code) == (
        "form_submit", "expo", "event", "expo2026")
    assert submit_tp.detail == {"form": "demo", "via": "h5", "utm_source": "baidu", "utm_medium": "cpc",
                                "utm_campaign": "spring", "utm_term": "hr saas", "fields": sorted(DEMO_FIELDS)}
    assert (score_tp.kind, score_tp.channel, score_tp.lead_id) == ("request_demo", "expo", lead.id)


async def test_without_src_the_form_channel_or_h5_is_the_source_and_unknown_codes_are_kept(client):
    engine = client.server.app[ENGINE]
    assert (await submit(client, "/f/demo", GOOD)).status == 200
    assert (await submit(client, "/f/newsletter?src=poster_9", {"email": "a@b.cn", "consent": "yes"})).status == 200
    assert (await submit(client, "/f/newsletter", {"email": "c@d.cn", "consent": "yes"})).status == 200
    got = [(t.kind, t.channel, t.scene) for t in await touchpoints(engine)]
    assert got == [("form_submit", "website", "form"), ("request_demo", "website", "form"),
                   ("form_submit", "unknown:poster_9", "form"), ("form_submit", "h5", "form")]


async def test_a_bad_phone_shows_the_form_again_with_the_error_and_stores_nothing(client):
    engine = client.server.app[ENGINE]
    resp = await submit(client, "/f/demo", {**GOOD, "phone": "1380013", "company": SCRIPT})
    page = await resp.text()
    assert resp.status == 400
    assert "请输入正确的手机号码" in page and "手机" in page and "提交未成功" in page
    assert field_names(page) == DEMO_FIELDS
    assert 'value="1380013"' in page and 'value="张伟"' in page  # what was typed is kept
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and SCRIPT not in page
    assert await stored_counts(engine) == NOTHING


async def test_missing_consent_or_required_fields_store_nothing(client):
    engine = client.server.app[ENGINE]
    resp = await submit(client, "/f/demo", {k: v for k, v in GOOD.items() if k != "consent"})
    assert resp.status == 400 and "请阅读并勾选同意隐私政策" in await resp.text()
    resp = await submit(client, "/f/demo", {**GOOD, "name": " ", "company": "", "email": "bad@"})
    page = await resp.text()
    assert resp.status == 400
    assert all(m in page for m in ("请填写姓名", "请填写公司名称", "请输入正确的邮箱地址"))
    assert await stored_counts(engine) == NOTHING


async def test_unknown_form_is_404(client):
    for resp in (await client.get("/f/nope"), await client.post("/f/nope", data={"csrf": "x"})):
        assert resp.status == 404 and "表单不存在" in await resp.text()


async def test_forged_foreign_or_missing_csrf_is_refused_and_stores_nothing(client):
    engine = client.server.app[ENGINE]
    mine = csrf_of(await open_form(client))
    forged = mine.rsplit(".", 1)[0] + ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    other_form = csrf_of(await open_form(client, "/f/newsletter"))
    for token in (forged, other_form, "", "1.2", "n~1.2"):
        resp = await client.post("/f/demo", data={**GOOD, "csrf": token})
        assert resp.status == 403 and "页面已过期" in await resp.text()
    # Another browser (a fresh session cookie) cannot use this session's token: it is bound to the session.
    client.session.cookie_jar.clear()
    await open_form(client)
    resp = await client.post("/f/demo", data={**GOOD, "csrf": mine})
    assert resp.status == 403
    client.session.cookie_jar.clear()
    assert (await client.post("/f/demo", data={**GOOD, "csrf": mine})).status == 403  # no cookie at all
    assert await stored_counts(engine) == NOTHING


async def test_a_double_submit_is_recorded_once(client):
    engine = client.server.app[ENGINE]
    csrf = csrf_of(await open_form(client))
    assert (await submit(client, "/f/demo", GOOD, csrf=csrf)).status == 200
    second = await submit(client, "/f/demo", GOOD, csrf=csrf)
    assert second.status == 409 and "请勿重复提交" in await second.text()
    assert [t.kind for t in await touchpoints(engine)] == ["form_submit", "request_demo"]


async def test_script_payloads_are_stored_as_text_and_rendered_escaped(client):
    engine = client.server.app[ENGINE]
    resp = await submit(client, "/f/demo", {**GOOD, "name": "<b>王</b>", "company": SCRIPT})
    page = await resp.text()
    assert resp.status == 200 and "&lt;b&gt;王&lt;/b&gt;" in page and "<b>王</b>" not in page
    (lead,) = await leads(engine)
    assert lead.display_name == "<b>王</b>" and lead.profile["company"] == SCRIPT
    api = await client.get(f"/api/leads/{lead.id}", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert api.content_type == "application/json" and (await api.json())["profile"]["company"] == SCRIPT


async def wechat_callback_url(client, fake, url: str = "/f/demo") -> str:
    """Open the form in WeChat up to WeChat's redirect back: the URL carrying ``code`` and ``state``."""
    first = await client.get(url, headers=IN_WECHAT, allow_redirects=False)
    assert first.status == 302
    authorize = first.headers["Location"]
    assert authorize.startswith(fake.base_url + "/connect/oauth2/authorize?")
    assert authorize.endswith("#wechat_redirect")
    back = await client.session.get(authorize, allow_redirects=False)
    assert back.status == 302
    return back.headers["Location"]


async def test_in_wechat_the_openid_is_bound_silently_and_linked_to_the_follower(client, fake):
    engine = client.server.app[ENGINE]
    fake.state.register_user("o_follower", unionid="u_follower")
    await send_oa(client, oa_event("o_follower", "subscribe", "qrscene_expo2026"))
    await wait_processed(engine, expected=1)
    (follower_id,) = await lead_ids(engine)
    fake.state.oauth_openid = "o_follower"

    resp = await client.get("/f/demo?src=sales_card", headers=IN_WECHAT)  # follows WeChat's redirects
    assert resp.status == 200 and "code=" not in str(resp.url) and resp.url.query["src"] == "sales_card"
    (authorize,) = fake.state.requests_to("/connect/oauth2/authorize")
    assert authorize.query["scope"] == "snsapi_base" and authorize.query["appid"] == OA_APP_ID
    assert authorize.query["redirect_uri"] == f"{client.make_url('/f/demo')}?src=sales_card"
    assert fake.state.count("/sns/oauth2/access_token") == 1

    resp = await client.post("/f/demo?src=sales_card", data={**GOOD, "csrf": csrf_of(await resp.text())},
                             headers=IN_WECHAT)
    assert resp.status == 200
    assert await lead_ids(engine) == [follower_id]  # the follower's lead, not a new one
    assert {(k, v) for k, _, v, _ in await identities(engine)} == {
        ("oa_openid", "o_follower"), ("unionid", "u_follower"), ("phone", "13800138000"), ("email", "zw@corp.cn")}
    kinds = [(t.kind, t.channel) for t in await touchpoints(engine)]
    assert ("form_submit", "referral") in kinds and ("request_demo", "referral") in kinds
    assert kinds[0][1] == "expo"  # the subscribe touch that brought the lead in stays first


async def test_a_bound_visitor_is_not_asked_again_for_what_they_gave(client, fake):
    engine = client.server.app[ENGINE]
    fake.state.oauth_openid = "o_returning"
    page = await open_form(client, headers=IN_WECHAT)
    assert field_names(page) == DEMO_FIELDS
    assert (await submit(client, "/f/demo", {"name": "李娜", "phone": "13900001111", "company": "某公司",
                                             "consent": "yes"}, IN_WECHAT, csrf_of(page))).status == 200

    page = await open_form(client, headers=IN_WECHAT)  # second visit: the cookie carries the OpenID
    assert fake.state.count("/connect/oauth2/authorize") == 1
    assert field_names(page) == DEMO_FIELDS - {"name", "phone", "company"}
    assert "无需重复填写" in page
    resp = await submit(client, "/f/demo", {"email": "ln@corp.cn", "department": "finance", "consent": "yes"},
                        IN_WECHAT, csrf_of(page))
    assert resp.status == 200
    (lead,) = await leads(engine)
    assert lead.profile["department"] == "finance" and lead.profile["name"] == "李娜"
    assert {k for k, *_ in await identities(engine)} == {"oa_openid", "phone", "email"}


async def test_a_reused_oauth_code_is_refused_before_wechat_is_asked(client, fake):
    engine = client.server.app[ENGINE]
    callback = await wechat_callback_url(client, fake)
    first = await client.session.get(callback, allow_redirects=False)
    assert first.status == 302 and "code=" not in first.headers["Location"]
    again = await client.session.get(callback, allow_redirects=False)
    assert again.status == 400 and "已使用" in await again.text()
    assert fake.state.count("/sns/oauth2/access_token") == 1
    # In another browser the same URL fails on the state: it belongs to the session that started it.
    client.session.cookie_jar.clear()
    foreign = await client.session.get(callback, allow_redirects=False)
    assert foreign.status == 400 and "授权链接无效" in await foreign.text()
    assert await stored_counts(engine) == NOTHING


async def test_an_expired_or_elsewhere_used_code_is_an_error_page(client, fake):
    engine = client.server.app[ENGINE]
    callback = await wechat_callback_url(client, fake)
    fake.state.expire_oauth_codes()
    resp = await client.session.get(callback, allow_redirects=False)
    assert resp.status == 400 and "授权已失效" in await resp.text()
    # Nothing was bound: the next visit goes through OAuth again.
    assert (await client.get("/f/demo", headers=IN_WECHAT, allow_redirects=False)).status == 302

    callback = await wechat_callback_url(client, fake)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    used = await client.session.get(f"{fake.base_url}/sns/oauth2/access_token", params={
        "appid": OA_APP_ID, "secret": "oa-secret", "code": code, "grant_type": "authorization_code"})
    assert (await used.json())["openid"]
    resp = await client.session.get(callback, allow_redirects=False)  # WeChat answers 40163
    assert resp.status == 400 and "授权已失效" in await resp.text()
    assert await stored_counts(engine) == NOTHING


async def test_sandbox_mode_never_redirects_to_wechat(app_client, backend):
    client = await app_client(capture_config(backend))
    resp = await client.get("/f/demo?code=abc&state=1.x", headers=IN_WECHAT, allow_redirects=False)
    assert resp.status == 200 and field_names(await resp.text()) == DEMO_FIELDS
