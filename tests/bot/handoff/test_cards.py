"""The hand-off's WeCom messages: template card, textcard and digest shapes, within WeCom's byte limits."""

from __future__ import annotations

import json
import re

import pytest

from bot.handoff import cards
from bot.handoff.cards import CardLead

BASE = "https://leads.example.com/"
LEAD = CardLead(lead_id=42, name="张伟", company="华东精密制造有限公司", ability=80, motivation=51.5,
                quadrant_label="高能力·高意向（转销售）", reasons=("visit_pricing +20", "job_title：vp_plus +30",
                                                              "webinar_attend +20", "email_open +5"),
                source="expo / event")
LONG = CardLead(lead_id=7, name="欧阳" * 80, company="某某" * 200, ability=None, motivation=None,
                quadrant_label="未评分", reasons=("理由" * 300,), source="渠道" * 100)


def utf8(text: str) -> int:
    return len(text.encode("utf-8"))


def test_the_template_card_is_a_button_interaction_card_with_accept_and_a_return_link():
    task_id = cards.new_task_id(9)
    card = cards.template_card(LEAD, 9, base_url=BASE, task_id=task_id)
    assert card["card_type"] == "button_interaction" and card["task_id"] == task_id
    assert card["main_title"]["title"] == "张伟 · 华东精密制造有限公司"
    assert card["main_title"]["desc"] == "能力 80 · 意向 51.5 · 高能力·高意向（转销售）"
    assert {row["keyname"]: row["value"] for row in card["horizontal_content_list"]} == {
        "评分": "能力 80 · 意向 51.5", "象限": "高能力·高意向（转销售）", "来源": "expo / event"}
    # The top three reasons only, in the score explanation's order.
    assert card["sub_title_text"] == "评分理由：visit_pricing +20；job_title：vp_plus +30；webinar_attend +20"
    assert card["card_action"] == {"type": 1, "url": "https://leads.example.com/m/leads/42"}
    accept, give_back = card["button_list"]
    assert accept == {"text": "接受", "style": 1, "key": "accept:9"}
    # 退回 needs a reason and text: it opens the return form instead of calling back.
    assert give_back == {"text": "退回", "style": 2, "type": 1, "url": "https://leads.example.com/m/leads/42?return=1"}
    assert cards.parse_button_key(accept["key"]) == ("accept", 9)


def test_task_ids_are_unique_and_in_wecoms_alphabet():
    ids = {cards.new_task_id(123456789) for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"[0-9A-Za-z_\-@]{1,128}", i) for i in ids)


@pytest.mark.parametrize("key", ["", "accept:", "accept:x", "reject:1", "accept:1;drop", None, "accept:" + "9" * 40])
def test_foreign_button_keys_are_not_parsed(key):
    assert cards.parse_button_key(key) is None


def test_long_texts_are_cut_on_character_boundaries_within_the_byte_budgets():
    card = cards.template_card(LONG, 1, base_url=BASE, task_id="t1")
    assert utf8(card["main_title"]["title"]) <= cards.TITLE_BYTES and card["main_title"]["title"].endswith("…")
    assert utf8(card["main_title"]["desc"]) <= cards.DESC_BYTES
    assert utf8(card["sub_title_text"]) <= cards.SUB_TITLE_BYTES
    assert all(utf8(r["value"]) <= cards.VALUE_BYTES for r in card["horizontal_content_list"])
    json.dumps(card, ensure_ascii=False).encode("utf-8")  # no half characters anywhere


@pytest.mark.parametrize("limit", range(0, 12))
def test_fit_never_splits_a_character(limit):
    text = "线索a分配🙂b"
    out = cards.fit(text, limit)
    assert utf8(out) <= limit
    assert out == text or out.endswith("…") or out == ""
    assert text.startswith(out.removesuffix("…"))


def test_the_textcard_variant_fits_wecoms_limits_and_links_to_the_lead():
    card = cards.textcard(LEAD, base_url=BASE)
    assert card["title"] == "新线索：张伟 · 华东精密制造有限公司"
    assert card["url"] == "https://leads.example.com/m/leads/42" and card["btntxt"] == "详情"
    assert "<div>象限：高能力·高意向（转销售）</div>" in card["description"]
    long = cards.textcard(LONG, base_url=BASE)
    assert utf8(long["title"]) <= 128 and utf8(long["description"]) <= 512
    assert long["description"].startswith("<div>") and long["description"].endswith("</div>")
    assert long["description"].count("<div>") == long["description"].count("</div>")


def test_textcard_text_is_escaped_for_its_html():
    lead = CardLead(1, "<b>A&B</b>", "", None, None, "未评分", (), "")
    card = cards.textcard(lead, base_url=BASE)
    assert "<b>" not in card["description"] and card["title"] == "新线索：<b>A&B</b>"


def test_a_digest_lists_the_leads_of_the_cards_and_digests_it_replaces():
    first = cards.card_payload("sales_chen", "template_card", {}, LEAD, 9, base_url=BASE)
    second = cards.card_payload("sales_chen", "textcard", {}, LONG, 10, base_url=BASE)
    earlier = cards.digest_payload([first, second])
    third = cards.card_payload("sales_chen", "template_card", {}, LEAD, 11, base_url=BASE)
    digest = cards.digest_payload([earlier, third])
    assert digest["userid"] == "sales_chen" and digest["msgtype"] == "template_card"
    assert [i["assignment_id"] for i in digest["items"]] == [9, 10, 11]
    card = digest["card"]
    assert card["card_type"] == "text_notice" and card["emphasis_content"]["title"] == "3"
    assert card["card_action"] == {"type": 1, "url": "https://leads.example.com/m/?tab=pending"}
    assert card["sub_title_text"].splitlines()[0] == "· 张伟 · 华东精密制造有限公司"
    assert utf8(card["sub_title_text"]) <= cards.SUB_TITLE_BYTES


def test_a_long_digest_counts_what_it_cannot_name():
    items = [{"lead_id": n, "assignment_id": n, "title": f"线索{n}"} for n in range(20)]
    card = cards.digest_card(items, url="https://x/m/?tab=pending")
    lines = card["sub_title_text"].splitlines()
    assert lines[:2] == ["· 线索0", "· 线索1"] and lines[-1] == "等 20 条"


def test_the_decided_label_names_who_did_it_within_a_buttons_length():
    assert cards.decided_label("accept", "张三") == "已接受 · 张三"
    assert cards.decided_label("return", "") == "已退回"
    assert utf8(cards.decided_label("accept", "欧阳" * 20)) <= cards.BUTTON_BYTES
