"""One WeCom task per member and at most 10,000 customers per call."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from leads.batches.chunks import MAX_PER_TASK, chunk_by_member

pairs = st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 10**9)), max_size=300)


@given(pairs, st.integers(1, 50))
@settings(max_examples=200)
def test_chunks_cover_every_recipient_once_within_the_size_and_of_their_own_member(items, size) -> None:
    tagged = [(member, (n, value)) for n, (member, value) in enumerate(items)]
    chunks = chunk_by_member(tagged, size)
    assert all(1 <= len(c.items) <= size for c in chunks)
    seen = [(c.member, item) for c in chunks for item in c.items]
    assert sorted(seen) == sorted(tagged)  # each exactly once, with its own member
    for member in {m for m, _ in tagged}:
        mine = [c for c in chunks if c.member == member]
        assert [c.n for c in mine] == list(range(1, len(mine) + 1))
        assert [i for c in mine for i in c.items] == [i for m, i in tagged if m == member]  # order kept


def test_a_member_with_25_001_customers_gets_three_tasks_of_at_most_10_000() -> None:
    chunks = chunk_by_member([("alice", i) for i in range(25_001)] + [("bob", 0)])
    assert [(c.member, c.n, len(c.items)) for c in chunks] == [
        ("alice", 1, MAX_PER_TASK), ("alice", 2, MAX_PER_TASK), ("alice", 3, 5_001), ("bob", 1, 1)]
