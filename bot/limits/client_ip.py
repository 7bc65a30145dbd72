"""Who a request comes from, for per-IP limits: the peer, or the client a trusted proxy says it forwarded.

The forwarding headers are believed only from a peer in ``server.trusted_proxies`` (nginx on the same host by
default): from anyone else they are whatever the client chose to write. X-Forwarded-For is read from the right,
where each trusted proxy appended the address it saw; the first address that is not a trusted proxy is the
client. Entries further left were written by the client and are never used.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import web

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse(value: str | None) -> IPAddress | None:
    if not value:
        return None
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _key(ip: IPAddress) -> str:
    # One IPv6 host usually holds a whole /64: counting per address would let it pick a fresh one per request.
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class ClientAddress:
    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self._trusted = tuple(ipaddress.ip_network(p.strip(), strict=False) for p in trusted_proxies)

    def _is_trusted(self, ip: IPAddress) -> bool:
        return any(ip in net for net in self._trusted)

    def of(self, request: web.BaseRequest) -> str:
        """The client's address (an IPv6 client's /64), as a string to count by."""
        peer = _parse(request.remote)
        if peer is None:
            return "unknown"
        client = peer
        if self._is_trusted(peer):
            hops = [h for line in request.headers.getall("X-Forwarded-For", ()) for h in line.split(",")]
            for hop in reversed(hops):
                ip = _parse(hop)
                if ip is None:
                    break  # garbage a trusted proxy passed on: the last address it vouched for stands
                client = ip
                if not self._is_trusted(ip):
                    break
            if not hops:
                client = _parse(request.headers.get("X-Real-IP")) or peer
        return _key(client)
