"""Commands for staff: figures, chains, campaigns, enrolment, export."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime
from typing import TYPE_CHECKING

from bot.commands.registry import Option, command
from bot.ports import Attachment, Person, Reply, Target
from referrals import csvio, stats
from referrals.errors import RelaisError
from referrals.store import now_iso
from referrals.timeutil import day_bounds

if TYPE_CHECKING:
    from bot.conversation import Conversation


def _parse_day(value: str | None) -> date | None:
    if not value:
        return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d/%m/%y", "%d-%m-%Y"):
        try:
            return datetime.strptime(value.strip(), fmt).date()
        except ValueError:
            continue
    raise RelaisError("staff.bad_date", value=value)


@command("stats", Option("depuis", required=False), Option("jusqua", required=False), staff=True)
async def _stats(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    lang = conv.lang(person)
    since, until = _parse_day(args.get("depuis")), _parse_day(args.get("jusqua"))
    low, high = day_bounds(since, until, conv.settings.tz)
    figures = await conv.db.read(stats.compute, low, high)
    refs = [t["participant"] for t in figures["top_referrers"]]
    names = await conv.db.read(_display_names, refs)
    period = ""
    if since or until:
        key = (
            "stats.period_both"
            if since and until
            else ("stats.period_since" if since else "stats.period_until")
        )
        period = conv.t(
            key, lang, since=since and since.isoformat(), until=until and until.isoformat()
        )
    return [conv.reply(person, "stats.report", lang, s=figures, names=names, period=period)]


def _display_names(conn: sqlite3.Connection, refs: list[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    for ref in refs:
        row = conn.execute(
            "SELECT display_name FROM participants WHERE ref = ? AND erased_at IS NULL", (ref,)
        ).fetchone()
        if row and row[0]:
            names[ref] = row[0]
    return names


@command("chaine", Option("membre", rest=True), staff=True)
async def _chaine(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    lang = conv.lang(person)
    found = await conv.referrals.find(args["membre"])
    if found is None:
        return [conv.reply(person, "staff.not_found", lang, who=args["membre"])]
    chain = await conv.referrals.chain(found.id)
    return [
        conv.reply(
            person,
            "chain.report",
            lang,
            me=chain.participant,
            ancestors=chain.ancestors,
            recruits=chain.recruits,
            subtree_size=chain.subtree_size,
            campaign=chain.campaign,
        )
    ]


@command("campagne", Option("nom"), Option("canal", required=False, rest=True), staff=True)
async def _campagne(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    lang = conv.lang(person)
    campaign = await conv.referrals.create_campaign(args["nom"], args.get("canal"), person.name)
    base = conv.settings.public_base_url
    link = f"{base}/r/{campaign.code}" if base else None
    return [conv.reply(person, "staff.campaign_created", lang, code=campaign.code, link=link)]


@command("inscrit", Option("membre", rest=True), staff=True)
async def _inscrit(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    lang = conv.lang(person)
    found = await conv.referrals.find(args["membre"])
    if found is None:
        return [conv.reply(person, "staff.not_found", lang, who=args["membre"])]
    already = found.enrolled_at is not None
    updated = await conv.referrals.enrol(found.id)
    key = "staff.already_enrolled" if already else "staff.enrolled"
    return [conv.reply(person, key, lang, name=updated.name, at=updated.enrolled_at[:10])]


@command("export", staff=True)
async def _export(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    import io

    lang = conv.lang(person)
    buffer = io.StringIO()
    count = await conv.db.read(
        lambda conn: csvio.export_rows(conn, buffer, delimiter=";", bom=True)
    )
    stamp = now_iso()[:10]
    return [
        Reply(
            Target.of(person),
            conv.t("staff.exported", lang, count=count),
            attachments=[
                Attachment(f"relais-export-{stamp}.csv", buffer.getvalue().encode("utf-8"))
            ],
        )
    ]
