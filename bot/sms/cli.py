"""``relais sms test NUMBER``: one test SMS through the configured provider."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from bot.sms.errors import SmsRefused, SmsSendError

if TYPE_CHECKING:
    from bot.context import Context


async def cmd_sms_test(ctx: Context) -> int:
    """Send one test SMS; print its SID on stdout; exit non-zero with the reason otherwise."""
    from bot.context import CliError
    from bot.runner import LogNotifier
    from bot.sms.service import SmsService
    from bot.sms.twilio_transport import TwilioTransport, missing_settings

    settings = ctx.settings
    missing = missing_settings(settings)
    if missing:
        raise CliError(ctx.t("sms.missing_settings", names=", ".join(missing)))
    transport = TwilioTransport(settings)
    db = await ctx.open_db()
    try:
        sms = SmsService(db, settings, ctx.texts, transport, LogNotifier())
        await sms.start()
        try:
            sid = await sms.send_test(ctx.args.number, ctx.lang)
        except SmsRefused as exc:
            raise CliError(ctx.t(exc.key, **exc.params)) from None
        except SmsSendError as exc:
            if exc.ambiguous:
                raise CliError(ctx.t("sms.provider_unknown")) from None
            raise CliError(ctx.t("sms.provider_error", code=exc.code, reason=exc.reason)) from None
    finally:
        await transport.close()
        await db.close()
    print(sid)
    print(ctx.t("sms.test_sent", sid=sid), file=sys.stderr)
    return 0
