"""Discord scheduled events mirror the agenda of actions (issue 22).

Each action staff create with ``/action`` becomes an event of the server (Events tab), changed and
cancelled with it; an event staff create directly in Discord is imported as an action; a click on
"Intéressé" is recorded for the action. (The timed messages of the agenda leave through the
delivery router, like every reply addressed to someone else.)
"""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import discord
from discord.ext import commands

from bot.agenda import asked_type
from bot.cogs.base import RelaisCog
from bot.logging import get_logger
from referrals import actions
from referrals.actions import Action, ActionError, ActionInput

if TYPE_CHECKING:
    from bot.discord_app import RelaisBot

log = get_logger(__name__)

DEFAULT_LENGTH = timedelta(hours=2)  # an imported event without an end
NAME_MAX = 100
LOCATION_MAX = 100


class EventsCog(RelaisCog):
    """Scheduled events <-> actions."""

    async def cog_load(self) -> None:
        """Become the agenda's scheduled events."""
        if self.bot.has_app:
            self.conversation.agenda.events = self

    async def cog_unload(self) -> None:
        """Stop mirroring."""
        if self.bot.has_app and self.conversation.agenda.events is self:
            self.conversation.agenda.events = None

    # ------------------------------------------------------------ agenda -> Discord

    def _description(self, action: Action) -> str:
        lang = self.bot.settings.lang
        item = self.conversation.agenda.item(action, lang)
        return self.conversation.t("actions.event_description", lang, a=item)[:1000]

    def _location(self, action: Action) -> str:
        return (action.place or self.bot.settings.programme_name)[:LOCATION_MAX]

    async def _event(self, action: Action) -> discord.ScheduledEvent | None:
        guild = self.bot.guild()
        if guild is None or not action.discord_event_id:
            return None
        event_id = int(action.discord_event_id)
        return guild.get_scheduled_event(event_id) or await guild.fetch_scheduled_event(event_id)

    async def create_event(self, action: Action) -> str | None:
        """The server's event for a new action; its id (None without a server)."""
        guild = self.bot.guild()
        if guild is None:
            return None
        event = await guild.create_scheduled_event(
            name=action.title[:NAME_MAX],
            start_time=action.start,
            end_time=action.end,
            entity_type=discord.EntityType.external,
            privacy_level=discord.PrivacyLevel.guild_only,
            location=self._location(action),
            description=self._description(action),
        )
        return str(event.id)

    async def update_event(self, action: Action) -> None:
        """Change the event like the action."""
        event = await self._event(action)
        if event is not None:
            await event.edit(
                name=action.title[:NAME_MAX],
                start_time=action.start,
                end_time=action.end,
                entity_type=discord.EntityType.external,
                location=self._location(action),
                description=self._description(action),
            )

    async def cancel_event(self, action: Action) -> None:
        """Cancel the event of a cancelled action."""
        event = await self._event(action)
        if event is not None and event.status is discord.EventStatus.scheduled:
            await event.cancel()

    # ------------------------------------------------------------ Discord -> agenda

    def _ours(self, event: discord.ScheduledEvent) -> bool:
        me = self.bot.user
        return me is not None and event.creator_id == me.id

    def _wanted(self, event: discord.ScheduledEvent) -> bool:
        wanted = self.bot.settings.discord_guild_id
        return not wanted or event.guild_id == wanted

    @commands.Cog.listener()
    async def on_scheduled_event_create(self, event: discord.ScheduledEvent) -> None:
        """An event staff created in Discord becomes an action (ours already are)."""
        if self._ours(event) or not self._wanted(event):
            return
        if await self.conversation.db.read(actions.action_by_event, str(event.id)):
            return
        start = event.start_time.astimezone(UTC)
        end = (event.end_time or start + DEFAULT_LENGTH).astimezone(UTC)
        tz = self.bot.settings.tz
        local = "%Y-%m-%d %H:%M"
        values = ActionInput(
            type=asked_type(f"{event.name} {event.description or ''}") or "autre",
            title=event.name,
            place=event.location,
            start=start.astimezone(ZoneInfo(tz)).strftime(local),
            end=end.astimezone(ZoneInfo(tz)).strftime(local),
        )
        try:
            action = await self.conversation.db.write(
                actions.create_action,
                values,
                tz=tz,
                now=self.conversation.agenda.now(),
                created_by=str(event.creator_id or ""),
                discord_event_id=str(event.id),
            )
        except ActionError as exc:  # a past or malformed event: not an action
            log.info("scheduled_event_not_imported", event_id=event.id, reason=exc.key)
            return
        log.info("scheduled_event_imported", event_id=event.id, action=action.id)

    @commands.Cog.listener()
    async def on_scheduled_event_update(
        self, before: discord.ScheduledEvent, after: discord.ScheduledEvent
    ) -> None:
        """Cancelled in Discord: the action is cancelled too; changed (name, place, times):
        the action follows (our own changes come back unchanged)."""
        if after.status is discord.EventStatus.cancelled:
            await self._cancel_from_discord(after)
        elif after.status is discord.EventStatus.scheduled:
            await self._update_from_discord(after)

    async def _update_from_discord(self, event: discord.ScheduledEvent) -> None:
        action = await self.conversation.db.read(actions.action_by_event, str(event.id))
        if action is None or action.cancelled:
            return
        tz = self.bot.settings.tz
        start = event.start_time.astimezone(UTC)
        end = (event.end_time or start + (action.end - action.start)).astimezone(UTC)
        local = "%Y-%m-%d %H:%M"
        values = ActionInput(
            title=event.name if event.name != action.title else None,
            # Our events show the programme's name when the action has no place.
            place=event.location
            if (event.location or None) not in (action.place, self._location(action))
            else None,
            start=start.astimezone(ZoneInfo(tz)).strftime(local) if start != action.start else None,
            end=end.astimezone(ZoneInfo(tz)).strftime(local) if end != action.end else None,
        )
        try:
            await self.conversation.db.write(
                actions.update_action,
                action.code,
                values,
                tz=tz,
                now=self.conversation.agenda.now(),
            )
        except ActionError as exc:  # a date in the past...: the action stays as it was
            log.info("scheduled_event_update_ignored", event_id=event.id, reason=exc.key)

    @commands.Cog.listener()
    async def on_scheduled_event_delete(self, event: discord.ScheduledEvent) -> None:
        """Deleted in Discord: the action is cancelled (kept for the figures)."""
        await self._cancel_from_discord(event)

    async def _cancel_from_discord(self, event: discord.ScheduledEvent) -> None:
        action = await self.conversation.db.read(actions.action_by_event, str(event.id))
        if action is None or action.cancelled:
            return
        await self.conversation.db.write(
            actions.cancel_action, action.code, self.conversation.agenda.now()
        )

    @commands.Cog.listener()
    async def on_scheduled_event_user_add(
        self, event: discord.ScheduledEvent, user: discord.User
    ) -> None:
        """ "Intéressé": recorded for the action (the member is known from now on)."""
        await self._interest(event, user, on=True)

    @commands.Cog.listener()
    async def on_scheduled_event_user_remove(
        self, event: discord.ScheduledEvent, user: discord.User
    ) -> None:
        """ "Intéressé" taken back."""
        await self._interest(event, user, on=False)

    async def _interest(self, event: discord.ScheduledEvent, user: discord.User, on: bool) -> None:
        if user.bot:
            return
        action = await self.conversation.db.read(actions.action_by_event, str(event.id))
        if action is None:
            return
        member, _ = await self.conversation.referrals.ensure_member(
            str(user.id), user.display_name, None
        )
        await self.conversation.db.write(
            actions.interested, action.id, member.id, self.conversation.agenda.now(), on
        )


async def setup(bot: RelaisBot) -> None:
    """Extension entry point."""
    await bot.add_cog(EventsCog(bot))
