"""Each slash command's callback, called with a mocked interaction: deferral, content, privacy."""

from __future__ import annotations

import re
import sys
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import discord
import pytest
from discord import app_commands
from discord_support import Recorder, Users, button_ids, make_interaction, sent

from bot.cogs.base import RelaisButton, staff_check
from bot.discord_app import RelaisBot
from bot.discord_tree import handle_error
from referrals.errors import CodeRejected


def cog(bot: RelaisBot, name: str) -> Any:
    """A loaded cog (extensions are loaded by the bot: use its classes, not a fresh import)."""
    found = bot.get_cog(name)
    assert found is not None
    return found


async def test_parrainage_defers_privately_then_gives_code_and_personal_invite(
    bot: RelaisBot, recorder: Recorder
) -> None:
    interaction = make_interaction(bot)
    referral = cog(bot, "ReferralCog")
    await referral.parrainage.callback(referral, interaction)
    interaction.response.defer.assert_awaited_once_with(ephemeral=True, thinking=True)
    assert interaction.calls[0] == "defer"
    [message] = sent(interaction)
    assert message["ephemeral"] is True
    assert "https://discord.gg/inv1" in message["content"]
    assert re.search(r"[0-9A-Z]{4}-[0-9A-Z]{4}", message["content"])
    # The member's invite is created once, then reused.
    again = make_interaction(bot)
    await referral.parrainage.callback(referral, again)
    assert recorder.invites == ["inv1"]


async def test_code_refusal_is_the_templated_message(bot: RelaisBot) -> None:
    referral = cog(bot, "ReferralCog")
    interaction = make_interaction(bot)
    await referral.code.callback(referral, interaction, "ZZZZ-ZZZZ")
    [message] = sent(interaction)
    texts = bot.app.texts  # type: ignore[union-attr]
    assert message["content"].startswith(
        texts.render("code.unknown", "fr", code="ZZZZ-ZZZZ", left=4)[:20]
    )


async def test_a_dm_closed_by_the_referrer_is_ignored(bot: RelaisBot, users: Users) -> None:
    referral = cog(bot, "ReferralCog")
    first = make_interaction(bot, 1001, "lea")
    await referral.parrainage.callback(referral, first)
    code = re.search(r"[0-9A-Z]{4}-[0-9A-Z]{4}", sent(first)[0]["content"]).group(0)  # type: ignore[union-attr]
    users.get(1001).send.side_effect = discord.Forbidden(MagicMock(status=403), "closed")
    second = make_interaction(bot, 1002, "sam")
    await referral.code.callback(referral, second, code)
    assert len(sent(second)) == 1  # the newcomer still gets their answer


async def test_inviter_with_number_asks_consent_with_persistent_buttons(
    bot: RelaisBot, recorder: Recorder
) -> None:
    invites = cog(bot, "InvitesCog")
    interaction = make_interaction(bot)
    await invites.inviter.callback(invites, interaction, "06 12 34 56 78", "Nina")
    [message] = sent(interaction)
    assert interaction.calls[0] == "defer"
    assert "Nina" in message["content"] and message["ephemeral"] is True
    ids = button_ids(message)
    assert re.fullmatch(r"confirm:\d+:yes", ids[0]) and ids[1].endswith(":no")
    assert message["view"].timeout is None
    assert all(isinstance(item, RelaisButton) for item in message["view"].children)
    # The click, after a restart: the item is rebuilt from its custom id alone.
    match = re.fullmatch(RelaisButton.__discord_ui_compiled_template__, ids[0])
    assert match is not None
    click = make_interaction(bot)
    rebuilt = await RelaisButton.from_custom_id(click, MagicMock(label="Oui"), match)
    await rebuilt.callback(click)
    click.response.edit_message.assert_awaited_once_with(view=None)
    [answer] = sent(click)
    assert "Nina" in answer["content"] and answer["ephemeral"] is True
    await bot.app.sms.dispatch_due()  # type: ignore[union-attr]
    assert recorder.sms and recorder.sms[0][0] == "+33612345678"


async def test_inviter_without_number_opens_the_modal_and_consent_sends(
    bot: RelaisBot, recorder: Recorder
) -> None:
    invites = cog(bot, "InvitesCog")
    interaction = make_interaction(bot)
    await invites.inviter.callback(invites, interaction, None, None)
    interaction.response.defer.assert_not_awaited()
    modal = interaction.response.send_modal.await_args.args[0]
    assert type(modal).__name__ == "InviteModal"
    assert any(isinstance(item, discord.ui.TextDisplay) for item in modal.children)
    modal.number._value = "0612345679"
    modal.first_name._value = "Yanis"
    modal.consent._value = True
    submit = make_interaction(bot)
    await modal.on_submit(submit)
    assert submit.calls[0] == "defer"
    [message] = sent(submit)
    assert "Yanis" in message["content"] and "view" not in message  # sent, no second question
    await bot.app.sms.dispatch_due()  # type: ignore[union-attr]
    assert recorder.sms[0][0] == "+33612345679"


async def test_modal_without_the_box_ticked_asks_with_buttons(bot: RelaisBot) -> None:
    invites = cog(bot, "InvitesCog")
    modal = sys.modules[type(invites).__module__].InviteModal(invites, "en")
    modal.number._value = "0612345670"
    modal.first_name._value = ""
    modal.consent._value = False
    submit = make_interaction(bot, locale=discord.Locale.british_english)
    await modal.on_submit(submit)
    [message] = sent(submit)
    assert button_ids(message)[0].endswith(":yes")


async def test_inviter_bad_number_is_refused_in_words(bot: RelaisBot) -> None:
    invites = cog(bot, "InvitesCog")
    interaction = make_interaction(bot)
    await invites.inviter.callback(invites, interaction, "123456", None)
    [message] = sent(interaction)
    assert message["content"] and "view" not in message


async def test_question_answers_privately_with_feedback_buttons(bot: RelaisBot) -> None:
    faq = cog(bot, "FaqCog")
    interaction = make_interaction(bot)
    await faq.question.callback(faq, interaction, "c'est quoi le contrat d'engagement jeune ?")
    assert interaction.calls[0] == "defer"
    [message] = sent(interaction)
    assert message["ephemeral"] is True
    assert "faq:useful:cej" in button_ids(message)
    click = make_interaction(bot)
    await RelaisButton("faq:useful:cej", "👍").callback(click)
    assert sent(click)[0]["ephemeral"] is True


async def test_aide_and_mesdonnees_and_oublier(bot: RelaisBot) -> None:
    faq = cog(bot, "FaqCog")
    privacy = cog(bot, "PrivacyCog")
    interaction = make_interaction(bot, locale=discord.Locale.american_english)
    await faq.aide.callback(faq, interaction)
    assert "/parrainage" in sent(interaction)[0]["content"]
    interaction = make_interaction(bot)
    await privacy.mesdonnees.callback(privacy, interaction)
    assert interaction.calls[0] == "defer"
    first = sent(interaction)[0]
    assert first["ephemeral"] is True
    referral = cog(bot, "ReferralCog")
    await referral.parrainage.callback(referral, make_interaction(bot))
    interaction = make_interaction(bot)
    await privacy.mesdonnees.callback(privacy, interaction)
    [message] = sent(interaction)
    assert message["ephemeral"] is True
    assert [f.filename for f in message["files"]] == ["mes-donnees.json"]
    interaction = make_interaction(bot)
    await privacy.oublier.callback(privacy, interaction)
    yes = next(i for i in button_ids(sent(interaction)[0]) if i.endswith(":yes"))
    click = make_interaction(bot)
    await RelaisButton(yes, "ok").callback(click)
    texts = bot.app.texts  # type: ignore[union-attr]
    assert sent(click)[0]["content"] == texts.render("privacy.forgotten", "fr")
    assert sent(click)[0]["ephemeral"] is True


async def test_staff_commands_run_for_staff(bot: RelaisBot) -> None:
    staff = cog(bot, "StaffCog")
    interaction = make_interaction(bot, 9001, "claire", staff=True)
    assert await staff_check(interaction) is True
    await staff.stats.callback(staff, interaction, None, None)
    assert interaction.calls[0] == "defer"
    assert sent(interaction)[0]["ephemeral"] is True
    interaction = make_interaction(bot, 9001, "claire", staff=True)
    await staff.campagne.callback(staff, interaction, "VAN-NANTES", "van")
    assert "VAN-NANTES" in sent(interaction)[0]["content"]
    interaction = make_interaction(bot, 9001, "claire", staff=True)
    await staff.export.callback(staff, interaction)
    assert sent(interaction)[0]["files"][0].filename.endswith(".csv")


async def test_staff_check_refuses_others_with_the_templated_message(bot: RelaisBot) -> None:
    interaction = make_interaction(bot, 1001, "lea")
    with pytest.raises(app_commands.CheckFailure) as failure:
        await staff_check(interaction)
    await bot.tree.on_error(interaction, failure.value)
    texts = bot.app.texts  # type: ignore[union-attr]
    interaction.response.send_message.assert_awaited_once_with(
        texts.render("staff.refused", "fr"), ephemeral=True
    )
    # Even if the role check were bypassed (server admins can change default_permissions),
    # the engine refuses the staff command for a non-staff person.
    staff = cog(bot, "StaffCog")
    interaction = make_interaction(bot, 1001, "lea")
    await staff.export.callback(staff, interaction)
    assert sent(interaction)[0]["content"] == texts.render("staff.refused", "fr")


async def test_generated_registry_command_attribution(bot: RelaisBot) -> None:
    command = bot.tree.get_command("attribution")
    assert isinstance(command, app_commands.Command)
    interaction = make_interaction(bot, 9001, "claire", staff=True)
    await command.callback(interaction, numero=None, parrain=None)  # type: ignore[call-arg]
    assert interaction.calls[0] == "defer"
    texts = bot.app.texts  # type: ignore[union-attr]
    assert sent(interaction)[0]["content"] == texts.render("attribution.list", "fr", items=[])


async def test_errors_answer_by_response_or_followup_and_unexpected_are_logged(
    bot: RelaisBot,
) -> None:
    texts = bot.app.texts  # type: ignore[union-attr]
    fresh = make_interaction(bot, locale=discord.Locale.american_english)
    error = app_commands.CommandInvokeError(MagicMock(), CodeRejected("code.own"))
    await handle_error(fresh, error)
    fresh.response.send_message.assert_awaited_once_with(
        texts.render("code.own", "en"), ephemeral=True
    )
    deferred = make_interaction(bot)
    await deferred.response.defer(ephemeral=True)
    await handle_error(deferred, RuntimeError("boom"))
    deferred.response.send_message.assert_not_awaited()
    assert sent(deferred)[0]["content"] == texts.render("bot.error", "fr")
    # An expired interaction cannot be answered: no exception escapes.
    gone = make_interaction(bot)
    gone.response.send_message = AsyncMock(side_effect=discord.NotFound(MagicMock(status=404), "x"))
    await handle_error(gone, RuntimeError("late"))


async def test_dm_free_text_is_answered_bots_and_guild_messages_ignored(bot: RelaisBot) -> None:
    faq = cog(bot, "FaqCog")

    def message(guild: object | None, is_bot: bool = False) -> MagicMock:
        msg = MagicMock(spec=discord.Message)
        msg.guild = guild
        msg.content = "c'est gratuit ?"
        msg.author = MagicMock(spec=discord.User)
        msg.author.id = 1001
        msg.author.display_name = "lea"
        msg.author.bot = is_bot
        msg.channel = MagicMock()
        msg.channel.send = AsyncMock()
        msg.channel.typing = MagicMock()
        msg.channel.typing.return_value.__aenter__ = AsyncMock()
        msg.channel.typing.return_value.__aexit__ = AsyncMock(return_value=False)
        return msg

    for ignored in (message(MagicMock()), message(None, is_bot=True)):
        await faq.on_message(ignored)
        ignored.channel.send.assert_not_awaited()
    dm = message(None)
    await faq.on_message(dm)
    dm.channel.send.assert_awaited()
    assert "faq:useful:gratuit" in [
        i.custom_id for i in dm.channel.send.await_args.kwargs["view"].children
    ]
