"""Commands for staff: figures, chains, campaigns, enrolment, export."""

from __future__ import annotations

import asyncio
import functools
import io
import sqlite3
from datetime import date, datetime
from typing import TYPE_CHECKING

from bot import labels as labels_module
from bot.commands.registry import Option, command
from bot.ports import Attachment, Person, Reply, Target
from referrals import actions, analytics, csvio, dialogue, eventlog, relatives, sms_queue
from referrals.errors import RelaisError
from referrals.store import now_iso
from referrals.timeutil import day_bounds

if TYPE_CHECKING:
    from bot.conversation import Conversation


# A drawing helps from four people on (the person and three recruits, or a chain of four).
TREE_DRAWING_FROM = 4


def _parse_day(value: str | None) -> date | None:
    if not value:
        return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d/%m/%y", "%d-%m-%Y"):
        try:
            return datetime.strptime(value.strip(), fmt).date()
        except ValueError:
            continue
    raise RelaisError("staff.bad_date", value=value)


def _period_words(conv: Conversation, lang: str, since: date | None, until: date | None) -> str:
    """The period's words ("since …", "until …" or both); empty for the whole period."""
    if not (since or until):
        return ""
    key = (
        "stats.period_both"
        if since and until
        else ("stats.period_since" if since else "stats.period_until")
    )
    return conv.t(key, lang, since=since and since.isoformat(), until=until and until.isoformat())


@command("stats", Option("depuis", required=False), Option("jusqua", required=False), staff=True)
async def _stats(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    from bot import charts  # matplotlib: imported when a chart or poster is made

    lang = conv.lang(person)
    since, until = _parse_day(args.get("depuis")), _parse_day(args.get("jusqua"))
    low, high = day_bounds(since, until, conv.settings.tz)
    figures, extra = await conv.db.read(analytics.staff_figures, low, high, conv.settings.tz)
    refs = [t["participant"] for t in figures["top_referrers"]]
    names = await conv.db.read(dialogue.display_names, refs)
    period = _period_words(conv, lang, since, until)
    labels = charts.chart_labels(lambda key: conv.t(key, lang))
    timeline_png, cohorts_png, waves_png = await asyncio.gather(
        charts.timeline_chart_async(extra["timeline"], labels),
        charts.cohorts_chart_async(extra["cohorts"], labels),
        charts.waves_chart_async(figures["waves"], labels),
    )
    render = functools.partial(conv.t, lang=lang)
    parts = [
        conv.t(
            "stats.report",
            lang,
            s=figures,
            names=names,
            period=period,
            channel_names=labels_module.channel_names(figures["channels"], render),
        )
    ]
    if extra["campaigns"]:
        parts.append(conv.t("analytics.campaigns", lang, campaigns=extra["campaigns"]))
    if per_action := await conv.db.read(actions.results, low, high):
        parts.append(
            conv.t(
                "actions.results", lang, results=per_action, compare=actions.comparison(per_action)
            )
        )
    sms_figures = await conv.db.read(sms_queue.figures, low, high, conv.settings.tz)
    if sms_figures["count"]:  # delivered / failed / filtered / unknown, segments (issue 17)
        parts.append(conv.t("sms.stats", lang, f=sms_figures))
    kin = await conv.db.read(relatives.figures, low, high)
    if kin["relatives"] or kin["via_relative"]:  # relatives as prescribers (issue 17)
        parts.append(conv.t("relatives.stats", lang, f=kin))
    parts.append(conv.t("analytics.chart_attached", lang))
    stamp = now_iso()[:10]
    timeline_title = labels[f"chart_timeline_title_{extra['timeline']['bucket']}"]
    return [
        Reply(
            Target.of(person),
            "\n\n".join(parts),
            attachments=[
                Attachment(f"relais-timeline-{stamp}.png", timeline_png, timeline_title),
                Attachment(
                    f"relais-cohorts-{stamp}.png", cohorts_png, labels["chart_cohorts_title"]
                ),
                Attachment(f"relais-waves-{stamp}.png", waves_png, labels["chart_waves_title"]),
            ],
        ),
        conv.reply(
            person,
            "analytics.comparison",
            lang,
            rows=extra["channel_comparison"],
            source_names=labels_module.source_names(render),
        ),
    ]


@command("chaine", Option("membre", rest=True), staff=True)
async def _chaine(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    from bot import charts  # matplotlib: imported when a chart or poster is made

    lang = conv.lang(person)
    found = await conv.referrals.find(args["membre"])
    if found is None:
        return [conv.reply(person, "staff.not_found", lang, who=args["membre"])]
    chain = await conv.referrals.chain(found.id)
    reply = conv.reply(
        person,
        "chain.report",
        lang,
        me=chain.participant,
        ancestors=chain.ancestors,
        recruits=chain.recruits,
        subtree_size=chain.subtree_size,
        campaign=chain.campaign,
    )
    if chain.subtree_size >= TREE_DRAWING_FROM:
        nodes = await conv.db.read(analytics.subtree, found.id, charts.TREE_MAX_NODES)
        hidden = chain.subtree_size - len(nodes)
        png = await charts.tree_chart_async(
            nodes,
            charts.chart_labels(lambda key: conv.t(key, lang)),
            title=conv.t("analytics.chart_tree_named", lang, name=chain.participant.name),
            note=conv.t("analytics.chart_tree_more", lang, n=hidden) if hidden > 0 else None,
        )
        reply.text += "\n\n" + conv.t("analytics.tree_attached", lang, n=chain.subtree_size)
        reply.attachments.append(Attachment(f"relais-chain-{chain.participant.ref}.png", png))
    return [reply]


@command("campagne", Option("nom"), Option("canal", required=False, rest=True), staff=True)
async def _campagne(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    from bot import poster  # matplotlib: imported when a chart or poster is made

    lang = conv.lang(person)
    if (result := await conv.db.read(actions.result_of, args["nom"])) is not None:
        return [conv.reply(person, "actions.result_one", lang, r=result)]  # an action's results
    campaign = await conv.referrals.create_campaign(args["nom"], args.get("canal"), person.name)
    link = await _campaign_link(conv, campaign.id, campaign.code)
    text = poster.PosterText(
        programme=conv.settings.programme_name,
        line=conv.t("analytics.poster_line" if link else "analytics.poster_line_no_qr", lang),
        code_caption=conv.t("analytics.poster_code_caption", lang),
        code_line=conv.t("analytics.poster_code_line", lang, code=campaign.code),
        audience=conv.t("analytics.poster_audience", lang),
        offer=conv.t("analytics.poster_offer", lang),
        where=conv.t("analytics.poster_where", lang),
    )
    pdf = await poster.poster_pdf_async(text, campaign.code, link)
    reply = conv.reply(
        person,
        "staff.campaign_created",
        lang,
        code=campaign.code,
        link=link,
        public=bool(conv.settings.public_base_url),
    )
    reply.text += "\n" + conv.t(
        "analytics.poster_attached" if link else "analytics.poster_no_link", lang
    )
    reply.attachments.append(Attachment(f"relais-poster-{campaign.code}.pdf", pdf))
    return [reply]


async def _campaign_link(conv: Conversation, campaign_id: int, code: str) -> str | None:
    """The landing page when the server is public, else a never-expiring Discord invite
    recorded for the campaign (joins through it are attributed to the campaign)."""
    base = conv.settings.public_base_url
    if base:
        return f"{base}/r/{code}"
    if conv.invites is None:
        return None
    invite = await conv.invites.create_invite(code)
    await conv.referrals.add_link(invite, "discord_invite", campaign_id=campaign_id)
    return f"https://discord.gg/{invite}"


@command("inscrit", Option("membre", rest=True), staff=True)
async def _inscrit(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    lang = conv.lang(person)
    found = await conv.referrals.find(args["membre"])
    if found is None:
        return [conv.reply(person, "staff.not_found", lang, who=args["membre"])]
    already = found.enrolled_at is not None
    updated = await conv.referrals.enrol(found.id)
    key = "staff.already_enrolled" if already else "staff.enrolled"
    return [conv.reply(person, key, lang, name=updated.name, at=(updated.enrolled_at or "")[:10])]


@command("export", staff=True)
async def _export(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    lang = conv.lang(person)
    participants, events = io.StringIO(), io.StringIO()

    # Excel in French reads semicolons, and UTF-8 only with a BOM.
    def run(conn: sqlite3.Connection) -> tuple[int, int]:
        return (
            csvio.export_rows(
                conn, participants, delimiter=";", bom=True, excel_tz=conv.settings.tz
            ),
            eventlog.export_events(conn, events, delimiter=";", bom=True),
        )

    count, event_count = await conv.db.read(run)
    stamp = now_iso()[:10]
    text = conv.t("staff.exported", lang, count=count)
    text += "\n" + conv.t("analytics.events_exported", lang, count=event_count)
    return [
        Reply(
            Target.of(person),
            text,
            attachments=[
                Attachment(f"relais-export-{stamp}.csv", participants.getvalue().encode("utf-8")),
                Attachment(f"relais-events-{stamp}.csv", events.getvalue().encode("utf-8")),
            ],
        )
    ]


@command("rapport", Option("depuis", required=False), Option("jusqua", required=False), staff=True)
async def _rapport(conv: Conversation, person: Person, args: dict[str, str]) -> list[Reply]:
    """The HTML report of ``relais report``, attached: staff need no shell on the server."""
    from zoneinfo import ZoneInfo

    from bot.report import build_report

    lang = conv.lang(person)
    since, until = _parse_day(args.get("depuis")), _parse_day(args.get("jusqua"))
    low, high = day_bounds(since, until, conv.settings.tz)
    period = _period_words(conv, lang, since, until)
    generated = datetime.now(ZoneInfo(conv.settings.tz)).strftime("%Y-%m-%d %H:%M")
    html = await build_report(
        conv.db,
        lang=lang if lang in ("fr", "en") else "fr",
        programme=conv.settings.programme_name,
        render=functools.partial(conv.t, lang=lang),
        since=low,
        until=high,
        period=period,
        generated=generated,
        tz=conv.settings.tz,
    )
    stamp = now_iso()[:10]
    reply = conv.reply(person, "analytics.report_attached", lang)
    reply.attachments.append(Attachment(f"relais-rapport-{stamp}.html", html.encode("utf-8")))
    return [reply]
