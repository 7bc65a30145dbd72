"""storage/repos/timeline.py on both backends: touchpoints, outbox messages and stage changes merged newest
first; paging by cursor is complete and never repeats a row, even when many rows share one timestamp; other
leads' rows never appear; cursors survive an encode/decode round trip and garbage is refused."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from storage.db import session_factory
from storage.models import Lead, OutboxMessage, StageTransition, Touchpoint
from storage.repos.timeline import OUTBOX, STAGE, TOUCHPOINT, Cursor, timeline_page

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


async def _seed(session, lead_id: int, times: list[datetime], rng: random.Random) -> None:
    for n, at in enumerate(times):
        source = rng.choice((TOUCHPOINT, STAGE, OUTBOX))
        if source == TOUCHPOINT:
            session.add(Touchpoint(lead_id=lead_id, kind="oa_message_text", scene="c", channel="oa", occurred_at=at,
                                   detail={"content": f"m{n}"}))
        elif source == STAGE:
            session.add(StageTransition(lead_id=lead_id, from_stage="lead", to_stage="mql", actor="system",
                                        reason=f"s{n}", occurred_at=at))
        else:
            session.add(OutboxMessage(idempotency_key=f"k-{lead_id}-{n}", target="oa", method="oa.custom_text",
                                      payload={"content": f"o{n}"}, created_at=at, lead_id=lead_id))
    await session.flush()


async def _all_pages(session, lead_id: int, limit: int) -> list[tuple[datetime, str, int]]:
    seen, cursor = [], None
    while True:
        page = await timeline_page(session, lead_id, cursor, limit)
        assert len(page.entries) <= limit
        seen += [e.key() for e in page.entries]
        if page.next is None:
            return seen
        assert len(page.entries) == limit
        cursor = Cursor.decode(page.next.encode())  # as a client would send it back


async def test_pages_are_complete_ordered_and_never_overlap_with_equal_timestamps(engine):
    rng = random.Random(7)
    # Many rows on few instants (three sources at once), plus a spread: the hard case for a cursor.
    times = [T0 + timedelta(seconds=rng.choice((0, 0, 0, 1, 1, 60))) for _ in range(80)]
    times += [T0 + timedelta(microseconds=rng.randrange(10**9)) for _ in range(40)]
    async with session_factory(engine)() as session, session.begin():
        lead, other = Lead(display_name="a"), Lead(display_name="b")
        session.add_all([lead, other])
        await session.flush()
        await _seed(session, lead.id, times, rng)
        await _seed(session, other.id, times[:10], rng)
        lead_id = lead.id
    async with session_factory(engine)() as session:
        full = await _all_pages(session, lead_id, 1000)
        assert len(full) == 120 and len(set(full)) == 120
        assert full == sorted(full, reverse=True)
        for limit in (1, 3, 7, 30):
            assert await _all_pages(session, lead_id, limit) == full


async def test_an_empty_timeline_has_no_next_page(engine):
    async with session_factory(engine)() as session, session.begin():
        lead = Lead(display_name="empty")
        session.add(lead)
        await session.flush()
        page = await timeline_page(session, lead.id, None, 10)
    assert page.entries == [] and page.next is None


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)),
       st.sampled_from((TOUCHPOINT, STAGE, OUTBOX)), st.integers(1, 2**63 - 1))
def test_a_cursor_survives_its_round_trip(at, source, row_id):
    cursor = Cursor(at, source, row_id)
    assert Cursor.decode(cursor.encode()) == cursor


@given(st.text(max_size=40))
def test_garbage_is_no_cursor_or_a_valid_one(raw):
    decoded = Cursor.decode(raw)
    assert decoded is None or Cursor.decode(decoded.encode()) == decoded


def test_malformed_cursors_are_refused():
    for raw in ("", "1", "1.t", "1.x.1", "1.t.-1", "1.t.99999999999999999999", "1.t.1 ", "１.t.1", "1e3.t.1", "1xt.1",
                "999999999999999999.t.1", "-999999999999999999.t.1"):
        assert Cursor.decode(raw) is None, raw
