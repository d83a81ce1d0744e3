"""HTML pages of the web server: templates, language, security headers.

Pages are jinja2 templates in ``messages/<lang>/web/*.html.j2`` (autoescaped), sharing one base
layout with its CSS inline. The CSS carries a per-response nonce, so the Content-Security-Policy
allows no inline script and no other style. Every response of the app gets the security headers
(``install_pages`` registers them), HSTS included when ``PUBLIC_BASE_URL`` is https.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import jinja2
import yaml
from aiohttp import web

from bot.logging import get_logger
from bot.settings import Settings
from bot.texts import LANGS, MESSAGES_DIR

log = get_logger(__name__)

# The page's CSP nonce, kept on the request for the headers hook (RequestKey: aiohttp >= 3.12).
NONCE: Any = web.RequestKey("csp_nonce", str) if hasattr(web, "RequestKey") else "csp_nonce"
HSTS = "max-age=31536000"
_LANG_RANGE = re.compile(r"^\s*([A-Za-z]{1,8})(?:[-_][A-Za-z0-9]{1,8})*\s*$")


def negotiate_lang(accept_language: str | None, default: str) -> str:
    """The supported language the ``Accept-Language`` header prefers most, else ``default``."""
    best: tuple[float, int, str] | None = None
    for position, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.partition(";")
        match = _LANG_RANGE.match(tag)
        if not match:
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        lang = match.group(1).lower()
        if lang not in LANGS or quality <= 0:
            continue
        # Highest quality first; among equals, the first listed.
        if best is None or quality > best[0]:
            best = (quality, position, lang)
    return best[2] if best else default


def _facts(messages_dir: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load((messages_dir / "facts.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        log.warning("facts_unreadable")
        return {}
    return data if isinstance(data, dict) else {}


def _in_lang(value: Any, lang: str) -> Any:
    if isinstance(value, dict) and lang in value:
        return value[lang]
    return value


class Pages:
    """Renders the HTML pages in French or English."""

    def __init__(
        self, messages_dir: Path = MESSAGES_DIR, default_lang: str = "fr", programme: str = "Relais"
    ) -> None:
        self.default_lang = default_lang if default_lang in LANGS else "fr"
        self.programme = programme
        self.facts = _facts(messages_dir)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(messages_dir)),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def lang(self, request: web.Request) -> str:
        """The page language for this request (French unless the browser prefers English)."""
        return negotiate_lang(request.headers.get("Accept-Language"), self.default_lang)

    def render(self, template: str, lang: str, nonce: str = "", **params: Any) -> str:
        """Render ``messages/<lang>/web/<template>.html.j2``."""
        facts = {key: _in_lang(value, lang) for key, value in self.facts.items()}
        page = self.env.get_template(f"{lang}/web/{template}.html.j2")
        return page.render(programme=self.programme, facts=facts, nonce=nonce, lang=lang, **params)

    def response(
        self,
        request: web.Request,
        template: str,
        *,
        status: int = 200,
        lang: str | None = None,
        headers: dict[str, str] | None = None,
        **params: Any,
    ) -> web.Response:
        """An HTML response for this page, with its CSP nonce and no caching."""
        lang = lang or self.lang(request)
        nonce = secrets.token_urlsafe(16)
        request[NONCE] = nonce
        body = self.render(template, lang, nonce=nonce, **params)
        all_headers = {
            "Cache-Control": "no-store",
            "X-Robots-Tag": "noindex, nofollow",
            "Content-Language": lang,
        }
        all_headers.update(headers or {})
        return web.Response(
            text=body, status=status, content_type="text/html", charset="utf-8", headers=all_headers
        )


PAGES = web.AppKey("pages", Pages)


def content_security_policy(nonce: str | None) -> str:
    """The CSP of a page: no script at all, only the page's own nonce-tagged style."""
    style = f"'nonce-{nonce}'" if nonce else "'none'"
    return (
        "default-src 'none'; "
        f"style-src {style}; "
        "img-src 'self' data:; "
        "form-action 'self'; "
        "frame-ancestors 'none'; "
        "base-uri 'none'"
    )


def security_headers(settings: Settings) -> Any:
    """An ``on_response_prepare`` hook adding the security headers to every response."""
    https = bool(settings.public_base_url and settings.public_base_url.startswith("https://"))

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", content_security_policy(request.get(NONCE)))
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if https:
            headers.setdefault("Strict-Transport-Security", HSTS)

    return add_headers


def install_pages(app: web.Application, settings: Settings, messages_dir: Path) -> Pages:
    """Give the app its page renderer and security headers (once; later calls reuse them)."""
    if PAGES in app:
        return app[PAGES]
    pages = Pages(messages_dir, settings.lang, settings.programme_name)
    app[PAGES] = pages
    app.on_response_prepare.append(security_headers(settings))
    return pages
