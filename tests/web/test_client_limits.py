"""Rate limits that count people, not addresses (issue 20): IPv6 by /64, IPv4 by address,
``X-Forwarded-For`` only from ``RELAIS_TRUSTED_PROXIES``; ``/stop/TOKEN`` limited like ``/r/CODE``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from web_support import Recorder, client_for, open_services

from bot.app import App
from bot.clientaddr import RateLimiter, bucket, parse_networks
from bot.landing import setup_landing
from bot.settings import load_settings
from bot.web import create_app
from referrals.errors import ConfigError

PAGE = "/r/ZZZZ-ZZZZ"  # unknown code: 404 when allowed, 429 when limited


def test_buckets() -> None:
    v6 = ipaddress.ip_address
    assert bucket(v6("2001:db8:1:2::1")) == bucket(v6("2001:db8:1:2:ffff:ffff:ffff:ffff"))
    assert bucket(v6("2001:db8:1:2::1")) == "2001:db8:1:2::/64"
    assert bucket(v6("2001:db8:1:3::1")) != bucket(v6("2001:db8:1:2::1"))
    assert bucket(v6("203.0.113.7")) == "203.0.113.7"
    assert bucket(v6("203.0.113.7")) != bucket(v6("203.0.113.8"))
    assert bucket(None) == "unknown"


def test_trusted_proxies_setting() -> None:
    assert load_settings({}, dotenv=None).trusted_proxies == ("127.0.0.0/8", "::1/128")
    assert load_settings({"RELAIS_TRUSTED_PROXIES": ""}, dotenv=None).trusted_proxies == ()
    settings = load_settings({"RELAIS_TRUSTED_PROXIES": "10.0.0.5, fd00::/8"}, dotenv=None)
    assert settings.trusted_proxies == ("10.0.0.5/32", "fd00::/8")
    with pytest.raises(ConfigError):
        load_settings({"RELAIS_TRUSTED_PROXIES": "my-proxy"}, dotenv=None)
    assert parse_networks("172.16.0.0/12") == ("172.16.0.0/12",)


async def _client(tmp_path: Path, **env: str) -> AsyncIterator[TestClient[Any, Any]]:
    recorder = Recorder()
    services: App = await open_services(tmp_path, recorder, **env)
    app = create_app(
        settings=services.settings,
        texts=services.texts,
        db=services.db,
        sms=services.sms,  # type: ignore[arg-type]
        conversation=services.conversation,
        router=services.router,
        limiter=RateLimiter(2, 3600.0),
    )
    setup_landing(app, conversation=services.conversation, limiter=RateLimiter(2, 3600.0))
    try:
        async with client_for(app) as client:
            yield client
    finally:
        await services.close()


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    """Behind the default trusted proxy (loopback: the test client's own address)."""
    async for made in _client(tmp_path):
        yield made


async def statuses(client: TestClient[Any, Any], path: str, *forwarded: str) -> list[int]:
    found = []
    for value in forwarded:
        headers = {"X-Forwarded-For": value} if value else {}
        found.append((await client.get(path, headers=headers)).status)
    return found


async def test_one_ipv6_64_is_one_person(client: TestClient[Any, Any]) -> None:
    same = ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:abcd::9"]
    assert await statuses(client, PAGE, *same) == [404, 404, 429]
    assert await statuses(client, PAGE, "2001:db8:1:3::1") == [404]  # another /64


async def test_ipv4_is_counted_per_address(client: TestClient[Any, Any]) -> None:
    assert await statuses(client, PAGE, "203.0.113.7", "203.0.113.7", "203.0.113.7") == [
        404,
        404,
        429,
    ]
    assert await statuses(client, PAGE, "203.0.113.8") == [404]


async def test_forged_entries_left_of_the_proxy_give_no_fresh_allowance(
    client: TestClient[Any, Any],
) -> None:
    # The client writes what it likes on the left; our proxy appends the real address.
    forged = ["1.1.1.1, 203.0.113.7", "2.2.2.2, 203.0.113.7", "3.3.3.3, 203.0.113.7"]
    assert await statuses(client, PAGE, *forged) == [404, 404, 429]
    # Trusted hops on the right are skipped: a proxy chain on the same machine.
    assert await statuses(client, PAGE, "198.51.100.9, 127.0.0.1") == [404]


async def test_stop_links_are_limited_like_personal_links(client: TestClient[Any, Any]) -> None:
    path = "/stop/abcdefghijklmnopqrstuv"
    assert await statuses(client, path, "203.0.113.7", "203.0.113.7", "203.0.113.7") == [
        404,
        404,
        429,
    ]
    response = await client.get(path, headers={"X-Forwarded-For": "203.0.113.7"})
    assert response.status == 429 and int(response.headers["Retry-After"]) >= 1
    assert await statuses(client, path, "203.0.113.9") == [404]


async def test_forwarded_for_is_ignored_from_an_untrusted_peer(tmp_path: Path) -> None:
    async for client in _client(tmp_path, RELAIS_TRUSTED_PROXIES="10.0.0.0/8"):
        # The test client (127.0.0.1) is not a trusted proxy: every header is the same person.
        assert await statuses(client, PAGE, "203.0.113.1", "203.0.113.2", "203.0.113.3") == [
            404,
            404,
            429,
        ]


async def test_no_proxy_trusted_at_all(tmp_path: Path) -> None:
    async for client in _client(tmp_path, RELAIS_TRUSTED_PROXIES=""):
        assert await statuses(client, "/stop/abcdefghijklmnopqrstuv", "a", "b", "c") == [
            404,
            404,
            429,
        ]
