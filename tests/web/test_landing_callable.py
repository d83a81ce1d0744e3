"""The call-back form takes mobile and fixed numbers only: staff never call a premium-rate,
shared-cost or toll-free number left on the page (issue 20)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from web_support import Recorder, add_member, client_for, make_app, open_services

from bot.app import App


@pytest.fixture
async def landing(tmp_path: Path) -> AsyncIterator[tuple[App, TestClient[Any, Any]]]:
    recorder = Recorder()
    services = await open_services(tmp_path, recorder, PUBLIC_BASE_URL="https://r.example.fr")
    try:
        async with client_for(make_app(services, recorder)) as client:
            yield services, client
    finally:
        await services.close()


@pytest.mark.parametrize(
    ("phone", "accepted"),
    [
        ("0899 123456", False),  # premium-rate
        ("0810 12 34 56", False),  # shared-cost
        ("0800 12 34 56", False),  # toll-free
        ("06 12 34 56 78", True),
        ("01 44 55 66 77", True),
        ("09 70 12 34 56", True),
    ],
)
async def test_callback_form(
    landing: tuple[App, TestClient[Any, Any]], phone: str, accepted: bool
) -> None:
    services, client = landing
    _member, code = await add_member(services, "Sofiane")
    form = {"prenom": "Inès", "telephone": phone, "consentement": "oui"}
    response = await client.post(f"/r/{code}/rappel", data=form, allow_redirects=False)
    rows = await services.db.fetchone("SELECT COUNT(*) FROM callback_requests")
    assert rows is not None
    if accepted:
        assert response.status == 303 and rows[0] == 1
    else:
        page = await response.text()
        assert response.status == 400 and rows[0] == 0
        assert "numéro spécial" in page and 'id="telephone-error"' in page
        assert "ne semble pas valide" not in page


async def test_the_english_page_says_it_too(landing: tuple[App, TestClient[Any, Any]]) -> None:
    services, client = landing
    _member, code = await add_member(services, "Sofiane")
    form = {"prenom": "Ines", "telephone": "0899 123456", "consentement": "oui"}
    response = await client.post(
        f"/r/{code}/rappel", data=form, headers={"Accept-Language": "en"}, allow_redirects=False
    )
    assert response.status == 400 and "special number" in await response.text()
