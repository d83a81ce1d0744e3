"""``/a/CODE``: the page behind an action's QR code (issue 22), registered beside the landing page.

It tells what the action is and how to be counted present: a newcomer joins through the action's
landing page (``/r/CODE``: the action becomes their source, which counts them present); a member
already on the server types ``/jesuisla CODE`` to the bot. Read-only: nothing is written here.
"""

from __future__ import annotations

import sqlite3

from aiohttp import web

from bot.conversation import Conversation
from bot.logging import get_logger
from bot.pages import PAGES, install_pages
from referrals import actions

log = get_logger(__name__)


class CheckinPage:
    """The check-in page of each action."""

    def __init__(self, conversation: Conversation, app: web.Application) -> None:
        self.conv = conversation
        self.pages = (
            app[PAGES]
            if PAGES in app
            else install_pages(app, conversation.settings, conversation.texts.messages_dir)
        )

    async def page(self, request: web.Request) -> web.StreamResponse:
        """``GET /a/CODE``."""
        code = request.match_info["code"][:40]
        try:
            action = await self.conv.db.read(actions.action_by_code, code)
        except sqlite3.Error:
            log.exception("checkin_page_db_failed")
            return self.pages.response(request, "problem", status=503)
        if action is None or action.cancelled:
            return self.pages.response(request, "notfound", status=404)
        lang = self.pages.lang(request)
        return self.pages.response(
            request,
            "checkin",
            lang=lang,
            a=self.conv.agenda.item(action, lang),
            join_url=f"/r/{action.code}",
        )


def setup_checkin(app: web.Application, *, conversation: Conversation) -> CheckinPage:
    """Add ``/a/CODE`` to ``app`` (after ``setup_landing``, which installs the pages)."""
    checkin = CheckinPage(conversation, app)
    app.router.add_get("/a/{code}", checkin.page, allow_head=True)
    return checkin
