"""Synthetic but realistic scoring data, shared by bench/seed_scoring.py and bench/scoring.py.

Profiles use the form codes (leads/form_fields.py), some fields missing; touchpoint kinds mix what the
default rules score (bot/config/scoring.py) with what they do not, in roughly the proportions a WeChat
lead base produces (menu clicks and messages dominate); activity per lead is skewed (lognormal).
Everything is derived from a seed, so two processes build the same leads and the same pools.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from leads.form_fields import COMPANY_SIZES, COMPANY_TYPES, DEPARTMENTS, INDUSTRIES, JOB_LEVELS, REGIONS

DAYS = 180
# kind: (weight, channel, scene, detail pool name)
KINDS: dict[str, tuple[float, str, str, str]] = {
    # scored by the default rules
    "content_view": (22, "wechat_oa", "content", "content"),
    "content_download": (5, "wechat_oa", "content", "content"),
    "email_open": (10, "email", "newsletter", ""),
    "email_click": (2.5, "email", "newsletter", ""),
    "visit_pricing": (3, "website", "pricing", ""),
    "request_demo": (0.4, "website", "form", "form"),
    "webinar_register": (2, "wechat_oa", "event", "webinar"),
    "webinar_attend": (1, "wechat_oa", "event", "webinar"),
    "interaction_complete": (1, "miniprogram", "interaction", "interaction"),
    "event_attend": (0.5, "expo", "event", ""),
    "oa_unsubscribe": (0.6, "wechat_oa", "unfollow", ""),
    "visit_careers": (0.3, "website", "careers", ""),
    # not scored
    "oa_message_text": (25, "wechat_oa", "conversation", "message"),
    "oa_click": (12, "wechat_oa", "menu", "menu"),
    "oa_view": (8, "wechat_oa", "menu", "menu"),
    "oa_subscribe": (4, "wechat_oa", "follow", "qrcode"),
    "wecom_add_contact": (2, "wecom", "contact_me", ""),
    "form_submit": (1, "website", "form", "form"),
    "oa_scan": (1, "wechat_oa", "qrcode", "qrcode"),
    "consent_granted": (0.3, "wechat_oa", "conversation", ""),
}
_STAGES = ("awareness", "consideration", "decision")
_TEXTS = ("价格多少", "怎么收费", "可以预约演示吗", "你好", "有案例吗", "发一下白皮书", "人工客服", "谢谢")


def detail_pools(rng: random.Random) -> dict[str, list[str]]:
    """Detail JSON texts per pool; "message" is formatted per row (a unique msg_id)."""
    content = []
    for i in range(40):
        kind = ("whitepaper", "article", "case")[i % 3]
        content.append(json.dumps({"content_id": f"{kind[:2]}-{i:02d}", "content_kind": kind,
                                   "key": kind == "whitepaper" and rng.random() < 0.4,
                                   "stage": rng.choice(_STAGES), "title": f"内容 {i}"}, ensure_ascii=False))
    return {
        "": ["{}"], "content": content,
        "webinar": [json.dumps({"content_id": f"webinar-{i:02d}"}) for i in range(12)],
        "interaction": [json.dumps({"content_id": f"quiz-{i}"}) for i in range(6)],
        "form": [json.dumps({"form_id": f, "source": "website"}) for f in ("demo", "trial", "contact")],
        "menu": [json.dumps({"event_key": k}) for k in ("MENU_PRICING", "MENU_CASES", "MENU_DEMO", "MENU_CONTACT")],
        "qrcode": [json.dumps({"event_key": f"qrscene_expo{i}"}) for i in range(5)],
        "message": [json.dumps({"msg_id": "%d", "content": t}, ensure_ascii=False) for t in _TEXTS],
    }


def profile(rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, choices, present in (("job_title", JOB_LEVELS, 0.8), ("department", DEPARTMENTS, 0.75),
                                   ("company_size", COMPANY_SIZES, 0.7), ("company_type", COMPANY_TYPES, 0.65),
                                   ("industry", INDUSTRIES, 0.55), ("region", REGIONS, 0.5)):
        if rng.random() < present:
            out[name] = rng.choice(choices)[0]
    if rng.random() < 0.6:
        out["oa_following"] = rng.random() < 0.9
    return out


def lead_stage(rng: random.Random) -> str:
    roll = rng.random()
    for stage, upto in (("mql", 0.03), ("sal", 0.05), ("sql", 0.06), ("opportunity", 0.065), ("customer", 0.07),
                        ("recycled", 0.08), ("unsubscribed", 0.09)):
        if roll < upto:
            return stage
    return "lead"


def activity_weights(rng: random.Random, n: int, merged: set[int]) -> list[float]:
    """Cumulative weights of leads 1..n for drawing touchpoints: lognormal, capped; merged leads get none."""
    total, out = 0.0, []
    for lead_id in range(1, n + 1):
        total += 0.0 if lead_id in merged else min(rng.lognormvariate(0.0, 1.1), 60.0)
        out.append(total)
    return out


def merged_ids(seed: int, n: int) -> dict[int, int]:
    """About 1% of leads were absorbed by an older lead: merged id -> survivor id."""
    rng = random.Random(seed * 7 + 1)
    out: dict[int, int] = {}
    for lead_id in range(2, n + 1):
        if rng.random() < 0.01:
            survivor = rng.randint(1, lead_id - 1)
            out[lead_id] = out.get(survivor, survivor)
    return out


def start_time(now: datetime) -> datetime:
    return (now - timedelta(days=DAYS)).replace(microsecond=0)


def touchpoint_rows(seed: int, first_id: int, count: int, total: int, cum: list[float],
                    start: datetime) -> list[tuple[Any, ...]]:
    """Touchpoints ``first_id .. first_id + count - 1`` of ``total``: ids follow time (as in production,
    where rows are inserted as they happen), so one lead's touchpoints are scattered over the table."""
    rng = random.Random(seed * 1_000_003 + first_id)
    pools = detail_pools(random.Random(seed))
    names = list(KINDS)
    kinds = rng.choices(names, weights=[KINDS[k][0] for k in names], k=count)
    leads = rng.choices(range(1, len(cum) + 1), cum_weights=cum, k=count)
    span = DAYS * 86_400 / total
    out = []
    for i in range(count):
        tid = first_id + i
        kind = kinds[i]
        _, channel, scene, pool = KINDS[kind]
        texts = pools[pool]
        detail = texts[int(rng.random() * len(texts))]
        if pool == "message":
            detail = detail % tid
        at = start + timedelta(seconds=tid * span + rng.random() * 30)
        out.append((tid, leads[i], kind, scene, channel, at, detail))
    return out


def event_stream(seed: int, leads: int, per_lead: int, scored: frozenset[str]) -> list[tuple[Any, ...]]:
    """Events of the ``scored`` kinds only, each lead's in time order, leads one after the other:
    (touchpoint_id, kind, occurred_at, channel, scene, detail)."""
    rng = random.Random(seed)
    pools = {k: [json.loads(t) for t in v] for k, v in detail_pools(random.Random(seed)).items()}
    names = [k for k in KINDS if k in scored]
    weights = [KINDS[k][0] for k in names]
    start = start_time(datetime.now(UTC))
    out, tid = [], 0
    for _ in range(leads):
        times = sorted(rng.random() * DAYS * 86_400 for _ in range(per_lead))
        for at, kind in zip(times, rng.choices(names, weights=weights, k=per_lead), strict=True):
            tid += 1
            _, channel, scene, pool = KINDS[kind]
            out.append((tid, kind, start + timedelta(seconds=at), channel, scene, rng.choice(pools[pool])))
    return out
