"""One WeCom task per member and ≤ 10,000 customers: WeCom routes a mass message only through the member who
has the customer, and takes at most 10,000 external_userid per ``add_msg_template`` call."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
MAX_PER_TASK = 10_000


@dataclass(frozen=True, slots=True)
class Chunk(Generic[T]):
    member: str
    n: int  # 1, 2 ... among this member's chunks
    items: list[T]


def chunk_by_member(pairs: Iterable[tuple[str, T]], size: int = MAX_PER_TASK) -> list[Chunk[T]]:
    """Items grouped by member (members in order of first appearance, items in order), cut into chunks of at most
    ``size``: every item lands in exactly one chunk, of its own member."""
    if size < 1:
        raise ValueError("size must be at least 1")
    grouped: dict[str, list[T]] = {}
    for member, item in pairs:
        grouped.setdefault(member, []).append(item)
    return [Chunk(member, i // size + 1, items[i:i + size])
            for member, items in grouped.items() for i in range(0, len(items), size)]
