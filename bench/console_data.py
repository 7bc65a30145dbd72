"""What the console benchmark needs on top of the scoring seed: names, companies, owners, consent, identities.

bench/seed_scoring.py builds the leads (profiles, stages, scores, tags, touchpoints); with ``console=True`` it
asks this module for the columns the console lists and searches. Everything here draws from its own random
generator, so the scoring rows (and bench/scoring.py's figures) are the same with or without it.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

USERS_PER_TEAM, TEAMS = 10, 5  # 50 salespeople and SDRs in 5 teams own the assigned leads
OWNED_SHARE = 0.6  # the rest sit in the pool (owner NULL)
CONSENTS = (("unknown", 0.55), ("granted", 0.35), ("revoked", 0.1))  # leads/lead_filters.py CONSENTS
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华建国志宏俊峰晨雪婷佳琳子轩浩宇欣怡思涵博文"
_CITIES = ("上海", "北京", "深圳", "杭州", "广州", "成都", "苏州", "南京", "武汉", "西安", "天津", "重庆")
_WORDS = ("星辰", "云图", "智联", "华信", "博远", "天成", "恒达", "鼎新", "汇通", "蓝海", "瑞丰", "中科", "正泰",
          "卓越", "宏图", "明德", "安拓", "领航", "新元", "数智", "联创", "远景", "晨光", "凯盛", "佳禾")
_TRADES = ("科技", "信息技术", "软件", "网络", "数据", "智能制造", "医疗器械", "生物科技", "咨询", "物流", "电子")
_SUFFIXES = ("有限公司", "股份有限公司", "集团有限公司")
_LATIN = ("Acme", "Nova", "Orbit", "Pioneer", "Summit", "Vertex", "Zenith", "Apex", "Quantum", "Lumen")
_MAIL_DOMAINS = ("qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "corp.example.cn")


def users(run_hash: str) -> list[tuple]:
    """Team members (id, username, display_name, role, password_hash): sales and SDRs, ids 1..50. They cannot
    sign in (the hash is not a valid scrypt hash): only the bench's own admin does."""
    out = []
    for n in range(1, TEAMS * USERS_PER_TEAM + 1):
        role = "sales" if n % 3 else "sdr"
        out.append((n, f"bench_{role}_{n:02d}", f"{_SURNAMES[n % len(_SURNAMES)]}{_GIVEN[n % len(_GIVEN)]}", role,
                    run_hash))
    return out


def team_members() -> list[tuple[int, int]]:
    """(team_id, user_id): users 1..10 in team 1, 11..20 in team 2, ..."""
    return [(1 + (u - 1) // USERS_PER_TEAM, u) for u in range(1, TEAMS * USERS_PER_TEAM + 1)]


def person_name(rng: random.Random) -> str:
    name = rng.choice(_SURNAMES) + rng.choice(_GIVEN)
    if rng.random() < 0.6:
        name += rng.choice(_GIVEN)
    return name if rng.random() < 0.93 else f"{rng.choice(_LATIN)} {name}"


def company(rng: random.Random) -> str:
    if rng.random() < 0.08:
        return f"{rng.choice(_LATIN)} {rng.choice(_LATIN)} Ltd."
    return rng.choice(_CITIES) + rng.choice(_WORDS) + rng.choice(_TRADES) + rng.choice(_SUFFIXES)


def phone(lead_id: int) -> str:
    """An 11-digit mainland mobile number, unique per lead (7,919 is prime to 10**9: a bijection)."""
    return f"1{3 + lead_id % 7}{(lead_id * 7_919 + 12_345) % 10**9:09d}"


def decorate(rng: random.Random, lead_id: int, profile: dict[str, Any], created: datetime,
             now: datetime) -> tuple[str, str, int | None, datetime]:
    """Adds a company to ``profile`` (70% of leads); returns display name, consent, owner and last activity."""
    if rng.random() < 0.7:
        profile["company"] = company(rng)
    roll, consent = rng.random(), CONSENTS[-1][0]
    for value, share in CONSENTS:
        if roll < share:
            consent = value
            break
        roll -= share
    owner = rng.randint(1, TEAMS * USERS_PER_TEAM) if rng.random() < OWNED_SHARE else None
    active = created + (now - created) * rng.random() ** 0.5  # skewed towards recent activity
    return person_name(rng), consent, owner, min(active, now - timedelta(seconds=1))


def identities(rng: random.Random, lead_id: int, created: datetime) -> list[tuple]:
    """(lead_id, kind, app, value, verified, created_at): an OA OpenID for most leads, a phone for 45%,
    an email for 20%."""
    out = []
    if rng.random() < 0.85:
        out.append((lead_id, "oa_openid", "wxbenchconsole", f"o{lead_id:027x}", True, created))
    if rng.random() < 0.45:
        out.append((lead_id, "phone", "", phone(lead_id), rng.random() < 0.5, created))
    if rng.random() < 0.2:
        out.append((lead_id, "email", "", f"user{lead_id}@{rng.choice(_MAIL_DOMAINS)}", False, created))
    return out


def fragments(seed: int, count: int) -> list[str]:
    """Search fragments a user types: 2-3 character name parts, company words, latin words (varied so no
    one cached answer serves them all)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        kind = i % 4
        if kind == 0:
            out.append(rng.choice(_SURNAMES) + rng.choice(_GIVEN) + rng.choice(_GIVEN))
        elif kind == 1:
            out.append(rng.choice(_WORDS) + rng.choice(_TRADES)[:2])
        elif kind == 2:
            out.append(rng.choice(_CITIES) + rng.choice(_WORDS))
        else:
            out.append(rng.choice(_LATIN).lower()[:4])
    return out
