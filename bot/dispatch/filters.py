"""Filters for routers: small predicates over an InboundEvent."""

from __future__ import annotations

from bot.dispatch.router import Filter


def source(*names: str) -> Filter:
    return lambda ev: ev.source in names


def msg_type(*types: str) -> Filter:
    wanted = {t.lower() for t in types}
    return lambda ev: ev.msg_type in wanted


def event(*names: str) -> Filter:
    wanted = {n.lower() for n in names}
    return lambda ev: ev.event in wanted


def change_type(*names: str) -> Filter:
    """WeCom change_external_contact events, by ChangeType."""
    wanted = set(names)
    return lambda ev: ev.event == "change_external_contact" and ev.get("ChangeType") in wanted

