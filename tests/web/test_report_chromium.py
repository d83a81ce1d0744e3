"""The HTML report in a real headless Chromium at phone size (390 px wide): no horizontal
scroll, every table and chart within the screen, text no smaller than 12 px.

Skipped when ``/usr/bin/chromium`` is absent, as ``test_landing_chromium.py``. Headless
Chromium will not make a window narrower than 500 px, so the report (served on 127.0.0.1 with
one same-origin measuring script) is shown in a 390 px iframe; the script writes its
measurements into the parent page for ``--dump-dom``.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot import charts, cli

CHROMIUM = Path("/usr/bin/chromium")
WIDTH, HEIGHT = 390, 844

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="headless Chromium not installed (/usr/bin/chromium)"
)

MEASURE_JS = """
(function () {
  var doc = document.documentElement;
  var widest = 0, smallest = 1000;
  document.querySelectorAll('body *').forEach(function (element) {
    var r = element.getBoundingClientRect();
    if (r.width > 0 && r.height > 0) { widest = Math.max(widest, r.right); }
    var style = getComputedStyle(element);
    var own = Array.prototype.some.call(element.childNodes, function (n) {
      return n.nodeType === 3 && n.textContent.trim();
    });
    if (own && style.display !== 'none') {
      smallest = Math.min(smallest, parseFloat(style.fontSize));
    }
  });
  var out = {innerWidth: window.innerWidth, scrollWidth: doc.scrollWidth,
             bodyScrollWidth: document.body.scrollWidth, widest: widest, smallest: smallest,
             images: document.images.length,
             imageScale: Array.prototype.map.call(document.images, function (image) {
               return image.getBoundingClientRect().width / image.naturalWidth;
             })};
  var pre = window.parent.document.createElement('pre');
  pre.id = 'measure';
  pre.textContent = JSON.stringify(out);
  window.parent.document.body.appendChild(pre);
})();
"""


async def run_chromium(*args: str, user_data: Path) -> bytes:
    process = await asyncio.create_subprocess_exec(
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={user_data}",
        f"--window-size={WIDTH},{HEIGHT}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(120):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]
    return stdout


def build_report(tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RELAIS_DB", raising=False)
    monkeypatch.setenv("RELAIS_TZ", "Europe/Paris")
    db = tmp_path / "report.db"
    assert cli.main(["import", str(data), "--db", str(db)]) == 0
    out = tmp_path / "report.html"
    assert cli.main(["report", "--out", str(out), "--db", str(db)]) == 0
    return out.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["rds-fauxtime.csv", "rds-fauxmadrona.csv"])
async def test_report_fits_a_phone(
    name: str, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # cli.main runs its own event loop: in a worker thread, as a shell would run it.
    html = await asyncio.to_thread(build_report, tmp_path, data_dir / name, monkeypatch)
    measured = html.replace("</body>", '<script src="/measure.js"></script></body>')

    async def frame(request: web.Request) -> web.Response:
        return web.Response(
            text=f'<!doctype html><html><body style="margin:0"><iframe src="/report"'
            f' width="{WIDTH}" height="{HEIGHT}" style="border:0;display:block"></iframe>'
            "</body></html>",
            content_type="text/html",
        )

    async def report(request: web.Request) -> web.Response:
        return web.Response(text=measured, content_type="text/html")

    async def script(request: web.Request) -> web.Response:
        return web.Response(text=MEASURE_JS, content_type="application/javascript")

    app = web.Application()
    app.router.add_routes(
        [web.get("/", frame), web.get("/report", report), web.get("/measure.js", script)]
    )
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        dom = await run_chromium(
            "--virtual-time-budget=5000",
            "--dump-dom",
            str(server.make_url("/")),
            user_data=tmp_path / "chrome",
        )
    finally:
        await server.close()
    match = re.search(r'<pre id="measure">(.*?)</pre>', dom.decode(), re.S)
    assert match, dom.decode()[-1500:]
    m: dict[str, Any] = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert m["innerWidth"] == WIDTH, m
    assert m["scrollWidth"] <= WIDTH and m["bodyScrollWidth"] <= WIDTH, m  # no sideways scroll
    assert m["widest"] <= WIDTH + 0.5, m
    assert m["smallest"] >= 12, m
    assert m["images"] == 3, m
    # The charts' smallest text (points at the PNG's DPI), as drawn at the image's shown width.
    chart_px = charts.MIN_TEXT_SIZE * charts.DPI / 72
    assert all(chart_px * scale >= charts.MIN_PHONE_PX for scale in m["imageScale"]), m
