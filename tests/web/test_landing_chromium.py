"""The landing page in a real headless Chromium at phone size (390×844): layout and screenshot.

Skipped when ``/usr/bin/chromium`` is absent. The page's CSP forbids inline scripts, so layout is
measured on a test-only copy of the very same HTML that loads one same-origin script, which
writes its measurements into the DOM for ``--dump-dom``. Headless Chromium will not make a window
narrower than 500 px, so that copy is shown in a 390×844 iframe (the screenshot itself is taken
at 390×844). Set ``RELAIS_SCREENSHOT_DIR`` to keep the screenshot.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from web_support import (
    BOT_TOKEN,
    CLIENT_ID,
    CLIENT_SECRET,
    GUILD,
    Recorder,
    add_member,
    client_for,
    make_app,
    open_services,
    read_png,
)

CHROMIUM = Path("/usr/bin/chromium")
WIDTH, HEIGHT = 390, 844
BLURPLE = (0x58, 0x65, 0xF2)

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="headless Chromium not installed (/usr/bin/chromium)"
)

MEASURE_JS = """
(function () {
  function box(selector) {
    var element = document.querySelector(selector);
    if (!element) { return null; }
    var r = element.getBoundingClientRect();
    var style = getComputedStyle(element);
    return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width,
            height: r.height, visible: style.visibility !== 'hidden' && style.display !== 'none',
            fontSize: parseFloat(style.fontSize)};
  }
  var out = {
    innerWidth: window.innerWidth, innerHeight: window.innerHeight,
    scrollWidth: document.documentElement.scrollWidth,
    bodyScrollWidth: document.body.scrollWidth,
    join: box('#join'), noDiscord: box('#rappel summary'), h1: box('h1'),
    submit: box('#rappel button[type=submit]'), consent: box('#consentement'),
    phone: box('#telephone')
  };
  var top = window.parent.document;
  var pre = top.createElement('pre');
  pre.id = 'measure';
  pre.textContent = JSON.stringify(out);
  top.body.appendChild(pre);
})();
"""


async def run_chromium(*args: str, user_data: Path) -> bytes:
    """Run headless Chromium (without blocking the loop); its stdout."""
    process = await asyncio.create_subprocess_exec(
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--hide-scrollbars",
        "--accept-lang=fr-FR,fr",
        f"--user-data-dir={user_data}",
        f"--window-size={WIDTH},{HEIGHT}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(90):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]
    return stdout


def measuring_routes(base: list[str], code: str) -> list[web.RouteDef]:
    """Test-only: the landing HTML as served, plus one same-origin script that measures it."""

    async def frame(request: web.Request) -> web.Response:
        variant = request.match_info["variant"]
        html = (
            '<!doctype html><html><body style="margin:0">'
            f'<iframe src="/__measure/{variant}/page" width="{WIDTH}" height="{HEIGHT}"'
            ' style="border:0;display:block"></iframe></body></html>'
        )
        return web.Response(
            text=html,
            content_type="text/html",
            headers={"Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'"},
        )

    async def page(request: web.Request) -> web.Response:
        async with aiohttp.ClientSession() as session:
            if request.match_info["variant"] == "form":
                # The form opened with errors (consent missing): the longest state of the page.
                upstream = await session.post(
                    f"{base[0]}/r/{code}/rappel", data={"prenom": "", "telephone": "12"}
                )
            else:
                upstream = await session.get(f"{base[0]}/r/{code}")
            html = await upstream.text()
            csp = upstream.headers["Content-Security-Policy"]
        html = html.replace("</body>", '<script src="/__measure.js"></script></body>')
        csp = csp.replace("frame-ancestors 'none'", "frame-ancestors 'self'")
        return web.Response(
            text=html,
            content_type="text/html",
            headers={
                "Content-Security-Policy": csp + "; script-src 'self'",
                "X-Frame-Options": "SAMEORIGIN",
            },
        )

    async def script(request: web.Request) -> web.Response:
        return web.Response(text=MEASURE_JS, content_type="application/javascript")

    return [
        web.get("/__measure/{variant}", frame),
        web.get("/__measure/{variant}/page", page),
        web.get("/__measure.js", script),
    ]


def blurple_box(rows: list[bytes]) -> tuple[int, int, int, int, int]:
    """Count and bounding box (left, top, right, bottom) of Discord-coloured pixels."""
    count, left, top, right, bottom = 0, WIDTH, HEIGHT, -1, -1
    for y, row in enumerate(rows):
        for x in range(0, len(row), 3):
            r, g, b = row[x], row[x + 1], row[x + 2]
            if abs(r - BLURPLE[0]) < 12 and abs(g - BLURPLE[1]) < 12 and abs(b - BLURPLE[2]) < 12:
                count += 1
                left, right = min(left, x // 3), max(right, x // 3)
                top, bottom = min(top, y), max(bottom, y)
    return count, left, top, right, bottom


async def test_landing_page_at_phone_size(tmp_path: Path) -> None:
    recorder = Recorder()
    services = await open_services(
        tmp_path,
        recorder,
        PUBLIC_BASE_URL="http://relais.test",
        DISCORD_TOKEN=BOT_TOKEN,
        DISCORD_GUILD_ID=GUILD,
        DISCORD_CLIENT_ID=CLIENT_ID,
        DISCORD_CLIENT_SECRET=CLIENT_SECRET,
    )
    try:
        _, code = await add_member(services, "Maëlle-Anne Dupont-Lefebvre")
        base: list[str] = []
        app = make_app(services, recorder)
        app.router.add_routes(measuring_routes(base, code))
        async with client_for(app) as client:
            base.append(str(client.make_url("")).rstrip("/"))
            for variant in ("landing", "form"):
                dom = await run_chromium(
                    "--virtual-time-budget=3000",
                    "--dump-dom",
                    f"{base[0]}/__measure/{variant}",
                    user_data=tmp_path / f"chrome-{variant}",
                )
                check_layout(variant, dom.decode())
            shot = tmp_path / "landing.png"
            await run_chromium(
                f"--screenshot={shot}",
                f"{base[0]}/r/{code}",
                user_data=tmp_path / "chrome-shot",
            )
            form_shot = tmp_path / "form.png"
            await run_chromium(
                f"--screenshot={form_shot}",
                f"{base[0]}/__measure/form",
                user_data=tmp_path / "chrome-form-shot",
            )
        keep = os.environ.get("RELAIS_SCREENSHOT_DIR")
        if keep:
            shutil.copy(shot, Path(keep) / "landing-390x844.png")
            shutil.copy(form_shot, Path(keep) / "landing-form-390x844.png")
        check_screenshot(shot.read_bytes())
        width, height, _rows = read_png(form_shot.read_bytes())
        assert (width, height) == (WIDTH, HEIGHT)
    finally:
        await services.close()


def check_layout(variant: str, dom: str) -> None:
    match = re.search(r'<pre id="measure">(.*?)</pre>', dom, re.S)
    assert match, f"the measuring script did not run ({variant}):\n{dom[-1500:]}"
    m: dict[str, Any] = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert m["innerWidth"] == WIDTH, m
    # No horizontal scroll.
    assert m["scrollWidth"] <= m["innerWidth"] and m["bodyScrollWidth"] <= m["innerWidth"], m
    for name in ("join", "noDiscord", "h1", "submit", "consent", "phone"):
        element = m[name]
        assert element is not None, f"{name} missing ({variant})"
        if variant == "landing" and name in ("submit", "consent", "phone"):
            continue  # inside the closed <details>
        assert element["left"] >= 0 and element["right"] <= WIDTH, (variant, name, element)
    for name in ("join", "noDiscord"):
        button = m[name]
        # Big, thumb-sized, full-width buttons.
        assert button["height"] >= 48 and button["width"] >= WIDTH * 0.75, (name, button)
        assert button["fontSize"] >= 16, (name, button)
    if variant == "landing":
        # Both choices visible without scrolling on a phone.
        assert m["join"]["bottom"] <= m["innerHeight"], m["join"]
        assert m["noDiscord"]["bottom"] <= m["innerHeight"], m["noDiscord"]
    else:
        assert m["submit"]["height"] >= 48 and m["consent"]["width"] >= 20, m


def check_screenshot(data: bytes) -> None:
    width, height, rows = read_png(data)
    assert (width, height) == (WIDTH, HEIGHT)
    colours = {row[x : x + 3] for row in rows[::8] for x in range(0, len(row), 24)}
    assert len(colours) > 20, "the screenshot looks blank"
    count, left, top, right, bottom = blurple_box(rows)
    # The "Rejoindre sur Discord" button: a wide blurple block, fully on screen.
    assert count > 8000, count
    assert right - left >= WIDTH * 0.75 and 40 <= bottom - top <= 120, (left, top, right, bottom)
    assert bottom < HEIGHT
