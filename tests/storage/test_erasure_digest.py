"""PIPL erasure and digest cards (storage/repos/handoff_cards.py ``erase_from_digests``): a digest row lists many
leads by "name · company" and has no lead_id, so the erased person's items and titles must be taken out of it by
content, the other leads left as they were — on both backends, with the rows written by the real digest merge
(bot/outbox/digest.py) from real card payloads (bot/handoff/cards.py)."""

from __future__ import annotations

import dataclasses
import json

from sqlalchemy import select

from bot.crypto.keyring import KeyRing, Purpose
from bot.handoff import cards
from bot.handoff.cards import CardLead
from bot.outbox.digest import merge_waiting
from bot.outbox.enqueue import enqueue
from bot.outbox.methods import METHODS, OutboxMethod
from storage.db import session_factory
from storage.models import Lead, OutboxMessage, utcnow
from storage.repos.erasure import erase_lead
from storage.repos.handoff_cards import DIGEST_METHOD, REDACTED

HASHER = KeyRing([b"digest-erasure-key-0123456789abcdefghijkl"]).hasher(Purpose.TOMBSTONE)
BASE = "https://leads.example.com"
ERASED_NAME, ERASED_COMPANY = "赵敏", "明教光明顶总坛圣火堂"


def _methods() -> dict[str, OutboxMethod]:
    """The real methods without the digest's timeline hook (it writes assignment events: no assignments here)."""
    return {name: dataclasses.replace(m, digest=dataclasses.replace(m.digest, merged=None))
            if m.digest is not None else m for name, m in METHODS.items()}


async def _lead(session, name: str, company: str, *, merged_into: int | None = None) -> int:
    lead = Lead(display_name=name, profile={"name": name, "company": company}, merged_into_id=merged_into)
    session.add(lead)
    await session.flush()
    return lead.id


async def _card(session, lead_id: int, name: str, company: str, assignment_id: int) -> int:
    lead = CardLead(lead_id, name, company, 60, 55, "高能力·高意向（转销售）", ("visit_pricing +20",), "expo / event")
    card = cards.template_card(lead, assignment_id, base_url=BASE, task_id=cards.new_task_id(assignment_id))
    row_id = await enqueue(session, target="wecom", method="wecom.template_card", sandbox=False, lead_id=lead_id,
                           idempotency_key=f"card:{assignment_id}",
                           payload=cards.card_payload("sales_chen", "template_card", card, lead, assignment_id,
                                                      base_url=BASE))
    assert row_id is not None
    return row_id


async def _merge(session, row_id: int) -> int:
    """What the sender does with a card told to wait while the member has others waiting."""
    row = await session.get(OutboxMessage, row_id)
    digest_id = await merge_waiting(session, row, _methods(), None, now=utcnow(),
                                    locking=session.get_bind().dialect.name == "postgresql")
    assert digest_id is not None
    return digest_id


async def _digests(sessions) -> list[OutboxMessage]:
    async with sessions() as session:
        return list((await session.execute(select(OutboxMessage).where(OutboxMessage.method == DIGEST_METHOD)
                                           .order_by(OutboxMessage.id))).scalars())


def test_storage_names_the_digest_method_the_outbox_uses() -> None:
    assert {m.digest.method for m in METHODS.values() if m.digest is not None} == {DIGEST_METHOD}


async def test_erasure_takes_the_person_out_of_digests_and_leaves_the_others(engine) -> None:
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        erased = await _lead(session, ERASED_NAME, ERASED_COMPANY)
        other = await _lead(session, "周芷若", "峨眉派")
        third = await _lead(session, "张无忌", "武当山")
        first = await _card(session, erased, ERASED_NAME, ERASED_COMPANY, 1)
        await _card(session, other, "周芷若", "峨眉派", 2)
        older = await _merge(session, first)
    # A later card merges with the unsent digest: the older digest ends "merged", holding the names still.
    async with sessions() as session, session.begin():
        newer = await _merge(session, await _card(session, third, "张无忌", "武当山", 3))
    before = json.dumps([d.payload for d in await _digests(sessions)], ensure_ascii=False)
    assert before.count(f"{ERASED_NAME} · {ERASED_COMPANY}") >= 4  # items and card lists of both digests

    async with sessions() as session, session.begin():
        assert await erase_lead(session, erased, utcnow(), hasher=HASHER)

    rows = await _digests(sessions)
    assert [r.id for r in rows] == [older, newer]
    stored = json.dumps([[r.payload, r.response, r.last_error] for r in rows], ensure_ascii=False)
    assert ERASED_NAME not in stored and ERASED_COMPANY not in stored  # nowhere
    assert "周芷若 · 峨眉派" in stored and "张无忌 · 武当山" in stored  # the others': untouched
    merged, pending = rows
    assert (merged.status, pending.status) == ("merged", "pending")  # others remain: still to be sent
    assert [i["lead_id"] for i in pending.payload["items"]] == [other, third] and pending.payload["erased"] == 1
    assert [i["lead_id"] for i in merged.payload["items"]] == [other] and merged.payload["erased"] == 1
    assert pending.payload["card"]["sub_title_text"] == f"· {REDACTED}\n· 周芷若 · 峨眉派\n· 张无忌 · 武当山"


async def test_a_title_cut_at_the_cards_byte_limit_is_erased_too(engine) -> None:
    sessions = session_factory(engine)
    filler = "甲" * 32  # "客户N · 甲…甲": 107 bytes, four such lines leave 30 bytes of the card's 480 for the fifth
    async with sessions() as session, session.begin():
        rows = []
        for n in range(1, 5):
            rows.append(await _card(session, await _lead(session, f"客户{n}", filler), f"客户{n}", filler, n))
        erased = await _lead(session, ERASED_NAME, ERASED_COMPANY)
        await _card(session, erased, ERASED_NAME, ERASED_COMPANY, 5)
        await _merge(session, rows[0])
    (digest,) = await _digests(sessions)
    listed = digest.payload["card"]["sub_title_text"]
    assert listed.endswith(f"\n· {ERASED_NAME} · 明教光明顶总…")  # only part of the company made it in

    async with sessions() as session, session.begin():
        assert await erase_lead(session, erased, utcnow(), hasher=HASHER)

    (digest,) = await _digests(sessions)
    stored = json.dumps(digest.payload, ensure_ascii=False)
    assert ERASED_NAME not in stored and "明教" not in stored
    assert digest.payload["card"]["sub_title_text"].endswith(f"\n· {REDACTED}…")
    assert all(f"客户{n} · {filler}" in stored for n in range(1, 5))
    assert len(digest.payload["items"]) == 4 and digest.status == "pending"


async def test_a_digest_of_the_erased_person_alone_is_cancelled(engine) -> None:
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        erased = await _lead(session, ERASED_NAME, ERASED_COMPANY)
        absorbed = await _lead(session, "敏敏特穆尔", "汝阳王府", merged_into=erased)  # the same person
        first = await _card(session, absorbed, "敏敏特穆尔", "汝阳王府", 1)
        await _card(session, erased, ERASED_NAME, ERASED_COMPANY, 2)
        await _merge(session, first)

    async with sessions() as session, session.begin():
        assert await erase_lead(session, erased, utcnow(), hasher=HASHER)

    (digest,) = await _digests(sessions)
    stored = json.dumps(digest.payload, ensure_ascii=False)
    assert all(s not in stored for s in (ERASED_NAME, ERASED_COMPANY, "敏敏特穆尔", "汝阳王府"))
    assert digest.payload["items"] == [] and digest.payload["erased"] == 2
    assert digest.status == "cancelled"  # never sent with nobody in it
