"""storage/repos/erasure.py and tombstones.py on both backends: keyed tombstones (rotation included), and the
identity values of merges, conflicts and duplicate suggestions erased with the person."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.crypto.keyring import KeyRing, Purpose
from leads.identity import EMAIL, OA_OPENID, PHONE, IdentityKey
from storage.db import session_factory
from storage.models import DuplicateSuggestion, Identity, IdentityTombstone, Lead, MergeConflict, utcnow
from storage.repos.erasure import erase_lead
from storage.repos.tombstones import bury, last_erased

OLD = KeyRing([b"old-tombstone-key-0123456789abcdefghijklmn"])
ROTATED = KeyRing([b"new-tombstone-key-0123456789abcdefghijklmn", b"old-tombstone-key-0123456789abcdefghijklmn"])
PERSON = IdentityKey(OA_OPENID, "wx1", "o_person")


async def test_tombstones_are_keyed_move_forward_and_survive_rotation(engine):
    sessions = session_factory(engine)
    now = utcnow()
    async with sessions() as session, session.begin():
        assert await last_erased(session, [PERSON], OLD.hasher(Purpose.TOMBSTONE)) is None
        await bury(session, [PERSON], OLD.hasher(Purpose.TOMBSTONE), now - timedelta(days=1))
    async with sessions() as session, session.begin():
        await bury(session, [PERSON], OLD.hasher(Purpose.TOMBSTONE), now)  # erased again later
    async with sessions() as session:
        (row,) = (await session.execute(select(IdentityTombstone))).scalars()
        assert row.erased_at == now and "o_person" not in row.digest
        # After a rotation the tombstone written under the old key is still found; another key finds nothing.
        assert await last_erased(session, [PERSON], ROTATED.hasher(Purpose.TOMBSTONE)) == now
        other = KeyRing([b"unrelated-key-0123456789abcdefghijklmnopq"])
        assert await last_erased(session, [PERSON], other.hasher(Purpose.TOMBSTONE)) is None
        assert await last_erased(session, [IdentityKey(OA_OPENID, "wx2", "o_person")],
                                 OLD.hasher(Purpose.TOMBSTONE)) is None  # another app's OpenID


async def test_erasure_blanks_suggestions_and_conflicts_that_involve_the_person(engine):
    sessions = session_factory(engine)
    now = utcnow()
    async with sessions() as session, session.begin():
        erased, other, bystander = Lead(profile={"name": "甲"}), Lead(profile={}), Lead(profile={})
        session.add_all([erased, other, bystander])
        await session.flush()
        session.add_all([Identity(lead_id=erased.id, kind=PHONE, app="", value="13800000001"),
                         Identity(lead_id=erased.id, kind=EMAIL, app="", value="a@corp.cn")])
        # Two suggestions between the same leads on the same kind: blanking must keep them distinct.
        for value in ("13800000001", "13800000002"):
            session.add(DuplicateSuggestion(lead_id=other.id, other_lead_id=erased.id, identity_kind=PHONE,
                                            identity_value=value, created_at=now))
        session.add(DuplicateSuggestion(lead_id=other.id, other_lead_id=bystander.id, identity_kind=EMAIL,
                                        identity_value="b@corp.cn", created_at=now))
        session.add(MergeConflict(lead_id=erased.id, other_lead_id=other.id, identity_kind=PHONE,
                                  identity_value="13800000001", reason="r", created_at=now))
        ids = (erased.id, other.id, bystander.id)
    async with sessions() as session, session.begin():
        assert await erase_lead(session, ids[0], now, hasher=OLD.hasher(Purpose.TOMBSTONE))
    async with sessions() as session:
        suggestions = (await session.execute(select(DuplicateSuggestion).order_by(DuplicateSuggestion.id))).scalars()
        rows = [(s.other_lead_id, s.identity_value, s.status) for s in suggestions]
        conflict_values = set((await session.execute(select(MergeConflict.identity_value))).scalars())
        digests = set((await session.execute(select(IdentityTombstone.digest))).scalars())
    first, second, untouched = rows
    assert first[1].startswith("erased:") and second[1].startswith("erased:") and first[1] != second[1]
    assert first[2] == second[2] == "dismissed"
    assert untouched == (ids[2], "b@corp.cn", "open")  # not about the erased person
    assert conflict_values == {"erased"}
    assert digests == {OLD.digest(Purpose.TOMBSTONE, f"{PHONE}\x1f\x1f13800000001"),
                       OLD.digest(Purpose.TOMBSTONE, f"{EMAIL}\x1f\x1fa@corp.cn")}
    async with sessions() as session, session.begin():  # a merged or unknown lead is not erased
        assert not await erase_lead(session, 999_999, now, hasher=OLD.hasher(Purpose.TOMBSTONE))
