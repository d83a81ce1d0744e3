"""``/a/CODE``: the page behind an action's QR code (issue 22), registered beside the landing page.

It tells what the action is and how to be counted present:

- a member already on the server taps "Je suis déjà sur le serveur" (``/a/CODE/ici``): Discord's
  OAuth2 with the ``identify`` scope only tells who they are (the landing page's state, cookie
  and callback, with the purpose ``checkin``), and their presence is recorded, with nothing to
  type. Discord has no link that opens a DM or a slash command with text filled in, so without
  OAuth2 configured the page shows ``/jesuisla CODE`` and a link that opens the server;
- a newcomer joins through the action's landing page (``/r/CODE``: the action becomes their
  source, which counts them present);
- someone without Discord texts the code to the programme's number (two-way sender only).
"""

from __future__ import annotations

import secrets
import sqlite3
from typing import Any

from aiohttp import web

from bot.conversation import Conversation
from bot.landing import LANDING, Landing
from bot.logging import get_logger
from bot.pages import PAGES, install_pages
from bot.ports import Person
from referrals import actions
from referrals.actions import Action, ActionError
from referrals.landing import new_state as _new_state

log = get_logger(__name__)

CHECKIN_SCOPES = "identify"  # who they are; nothing else is asked


class CheckinPage:
    """The check-in page of each action."""

    def __init__(self, conversation: Conversation, app: web.Application) -> None:
        self.conv = conversation
        self.settings = conversation.settings
        self.pages = (
            app[PAGES]
            if PAGES in app
            else install_pages(app, conversation.settings, conversation.texts.messages_dir)
        )
        self.landing: Landing | None = app.get(LANDING)
        if self.landing is not None:
            self.landing.on_checkin = self.identified

    @property
    def oauth(self) -> bool:
        """True when a member can be checked in through Discord OAuth2."""
        return self.landing is not None and self.settings.discord_oauth_configured

    async def _action(self, request: web.Request) -> Action | None:
        code = request.match_info["code"][:40]
        found = await self.conv.db.read(actions.action_by_code, code)
        return None if found is None or found.cancelled else found

    def _page(self, request: web.Request, action: Action, lang: str, **values: Any) -> web.Response:
        settings = self.settings
        shown: dict[str, Any] = {
            "done": False,
            "again": False,
            "name": None,
            "error": None,
            "not_member": False,
        }
        shown.update(values)
        return self.pages.response(
            request,
            "checkin",
            lang=lang,
            a=self.conv.agenda.item(action, lang),
            join_url=f"/r/{action.code}",
            here_url=f"/a/{action.code}/ici" if self.oauth else None,
            server_url=(
                f"https://discord.com/channels/{settings.discord_guild_id}"
                if settings.discord_guild_id
                else None
            ),
            sms_number=settings.twilio_from_number if settings.two_way_sender else None,
            **shown,
        )

    async def page(self, request: web.Request) -> web.StreamResponse:
        """``GET /a/CODE``."""
        try:
            action = await self._action(request)
        except sqlite3.Error:
            log.exception("checkin_page_db_failed")
            return self.pages.response(request, "problem", status=503)
        if action is None:
            return self.pages.response(request, "notfound", status=404)
        return self._page(request, action, self.pages.lang(request))

    async def here(self, request: web.Request) -> web.StreamResponse:
        """``GET /a/CODE/ici``: "Je suis déjà sur le serveur", through Discord's OAuth2."""
        action = await self._action(request)
        if action is None:
            return self.pages.response(request, "notfound", status=404)
        landing = self.landing
        if landing is None or not self.oauth:
            raise web.HTTPSeeOther(f"/a/{action.code}")
        state = secrets.token_urlsafe(32)
        lang = self.pages.lang(request)
        await self.conv.db.write(
            _new_state, state, action.code, lang, landing.clock(), None, "checkin"
        )
        return landing.authorize_redirect(state, CHECKIN_SCOPES)

    async def identified(
        self, request: web.Request, person: Person, on_server: bool, code: str, lang: str | None
    ) -> web.Response:
        """Back from Discord: the member's presence is recorded (a person not on the server is
        offered to join; nothing is written for them)."""
        action = await self.conv.db.read(actions.action_by_code, code)
        page_lang = lang or self.pages.lang(request)
        if action is None or action.cancelled:
            return self.pages.response(request, "notfound", status=404, lang=lang)
        if not on_server:
            return self._page(request, action, page_lang, not_member=True)
        member = await self.conv.member(person)
        try:
            result = await self.conv.db.write(
                actions.check_in, action.code, member.id, self.conv.agenda.now(), False
            )
        except ActionError as exc:
            error = self.conv.t(exc.key, page_lang, **exc.params)
            return self._page(request, action, page_lang, error=error)
        log.info("checkin_by_qr", action=action.id, already=result.already)
        return self._page(
            request, action, page_lang, done=True, again=result.already, name=person.name
        )


def setup_checkin(app: web.Application, *, conversation: Conversation) -> CheckinPage:
    """Add ``/a/CODE`` to ``app`` (after ``setup_landing``, whose OAuth2 callback it uses)."""
    checkin = CheckinPage(conversation, app)
    limited = checkin.landing._limited if checkin.landing is not None else (lambda h: h)
    app.router.add_get("/a/{code}", limited(checkin.page), allow_head=True)
    app.router.add_get("/a/{code}/ici", limited(checkin.here), allow_head=False)
    return checkin
