"""Where a touch came from: a QR scene, WeCom State or form source code mapped to channel and scene."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


class ChannelEntry(Protocol):
    channel: str
    scene: str


@dataclass(frozen=True, slots=True)
class Source:
    channel: str
    scene: str
    code: str | None = None


def resolve_source(code: str | None, channels: Mapping[str, ChannelEntry], default: Source) -> Source:
    """Known codes map through the configured table; unknown ones are kept verbatim, never dropped."""
    if not code:
        return default
    entry = channels.get(code)
    if entry is None:
        return Source(channel=f"unknown:{code}", scene=default.scene, code=code)
    return Source(channel=entry.channel, scene=entry.scene, code=code)


def oa_scene_code(event: str | None, event_key: str | None) -> str | None:
    """The QR scene of an OA event: ``qrscene_<x>`` on subscribe, the bare value on SCAN."""
    if not event_key:
        return None
    if event in ("subscribe", "subscribe_scan") and event_key.startswith("qrscene_"):
        return event_key[len("qrscene_"):] or None
    if event == "scan":
        return event_key
    return None
