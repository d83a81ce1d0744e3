"""Who is asking: the client's address and the bucket its rate limit is counted in.

A person on IPv6 usually holds a whole /64 (their router hands out addresses from it at will), so
IPv6 clients are counted per /64 and IPv4 clients per address. ``X-Forwarded-For`` is believed only
when the connection comes from a proxy listed in ``RELAIS_TRUSTED_PROXIES`` (default: loopback, a
reverse proxy on the same machine); then the rightmost address not itself a trusted proxy is the
client, since entries to its left are written by the client and can say anything.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable

from aiohttp import web

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPV6_PREFIX = 64
MAX_FORWARDED_HOPS = 20  # a longer header is forged; its rightmost entries still count
RATE = 30  # requests per client on /r, /i, /oauth and /stop ...
PER = 60.0  # ... per this many seconds


def parse_networks(value: str) -> tuple[str, ...]:
    """``RELAIS_TRUSTED_PROXIES``: comma-separated addresses or networks; raises ValueError."""
    parts = tuple(part.strip() for part in value.split(",") if part.strip())
    return tuple(str(ipaddress.ip_network(part, strict=False)) for part in parts)


def _networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


def _address(text: str) -> IPAddress | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 203.0.113.7:51234
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def client_address(request: web.Request, trusted_proxies: Iterable[str]) -> IPAddress | None:
    """The client's address: the peer, or behind a trusted proxy the forwarded client."""
    peer = _address(request.remote or "")
    if peer is None:
        return None
    networks = _networks(trusted_proxies)
    if not _trusted(peer, networks):
        return peer
    hops = ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")
    for hop in reversed(hops[-MAX_FORWARDED_HOPS:]):
        address = _address(hop)
        if address is None:
            return peer  # a malformed hop: believe nothing further left
        if not _trusted(address, networks):
            return address
        peer = address
    return peer


def bucket(address: IPAddress | None) -> str:
    """The rate-limit key: an IPv4 address, or the /64 of an IPv6 address."""
    if address is None:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False))
    return str(address)


def client_bucket(request: web.Request, trusted_proxies: Iterable[str]) -> str:
    """The key a request's rate limit is counted under."""
    return bucket(client_address(request, trusted_proxies))


class RateLimiter:
    """In-memory token buckets, one per key (client bucket): ``rate`` requests per ``per`` s."""

    def __init__(
        self,
        rate: int = RATE,
        per: float = PER,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 50_000,
    ) -> None:
        self.rate = rate
        self.per = per
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> float:
        """Spend one token: 0 when allowed, else the seconds to wait for the next one."""
        now = self.clock()
        refill = self.rate / self.per
        tokens, last = self._buckets.get(key, (float(self.rate), now))
        tokens = min(float(self.rate), tokens + (now - last) * refill)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / refill
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > self.max_keys:
            self._prune(now)
        return 0.0

    def _prune(self, now: float) -> None:
        # A bucket idle for a whole period is full again: forgetting it changes nothing.
        for key in [k for k, (_, last) in self._buckets.items() if now - last >= self.per]:
            del self._buckets[key]
