"""Inbound SMS: keywords, opt-out then silence, relatives joining, CODE, questions, duplicates."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import pytest
from sms_support import (
    LINK,
    MOBILE,
    OTHER_MOBILE,
    Clock,
    RecordingNotifier,
    RecordingTransport,
    add_member,
    inbound,
    make_service,
    paris,
)

from bot.keywords import Keyword, classify
from bot.ports import Person, Reply
from bot.sms.gsm import count_segments, is_gsm
from bot.sms.service import SmsService
from referrals import codes
from referrals.store import Database

RELATIVE = Person("sms", MOBILE, "")


async def invited(db: Database, **env: str) -> tuple[SmsService, int]:
    sms = await make_service(db, **env)
    member = await add_member(db, "Kevin")
    await sms.invite(member, MOBILE, "Sarah", LINK, "fr")
    await sms.dispatch_due()
    return sms, member


def only_text(replies: list[Reply], to: str = MOBILE) -> str:
    # The one SMS answer (a relative's first reply also tells the inviting member, on Discord).
    [reply] = [r for r in replies if r.to.kind == "sms"]
    assert reply.to.id == to
    assert is_gsm(reply.text) and count_segments(reply.text).segments <= 2
    return reply.text


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "stop",
        "Stop !",
        " ARRET ",
        "arrêt",
        "Arrêt.",
        "STOP SMS",
        "stop sms",
        "désabonner",
        "DESABONNER",
        "unsubscribe",
    ],
)
def test_stop_keywords(text: str) -> None:
    assert classify(text) is Keyword.STOP


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("START", Keyword.START),
        ("start", Keyword.START),
        ("aide", Keyword.HELP),
        ("HELP", Keyword.HELP),
        ("Info", Keyword.HELP),
        ("code", Keyword.CODE),
        ("Conseiller", Keyword.PERSON),
        ("stop les messages svp", None),
        ("c'est quoi le code ?", None),
    ],
)
def test_other_keywords(text: str, keyword: Keyword | None) -> None:
    assert classify(text) is keyword


async def test_stop_is_confirmed_once_then_silence_then_start(db: Database) -> None:
    sms, _ = await invited(db)
    assert "START" in only_text(await inbound(sms, RELATIVE, "Arrêt"))
    assert await inbound(sms, RELATIVE, "STOP") == []
    assert await inbound(sms, RELATIVE, "c'est quoi ?") == []
    assert (await db.fetchone("SELECT COUNT(*) FROM opt_outs"))[0] == 1
    assert "STOP" in only_text(await inbound(sms, RELATIVE, "start"))
    assert (await db.fetchone("SELECT COUNT(*) FROM opt_outs"))[0] == 0


async def test_opt_out_keeps_only_the_keyed_hash(db: Database) -> None:
    sms, _ = await invited(db)
    await inbound(sms, RELATIVE, "STOP")
    assert "612345678" not in await db.read(dump_all)


def dump_all(conn: sqlite3.Connection) -> str:
    """Every row of every table, as text."""
    tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return repr([tuple(row) for (t,) in tables for row in conn.execute(f"SELECT * FROM {t}")])


async def test_a_question_does_not_join_but_oui_does(db: Database) -> None:
    sms, member = await invited(db)
    only_text(await inbound(sms, RELATIVE, "Bonjour"))
    assert (await db.fetchone("SELECT COUNT(*) FROM participants"))[0] == 1
    only_text(await inbound(sms, RELATIVE, "Oui"))
    row = await db.fetchone(
        "SELECT id, kind, channel, referrer_id, phone, phone_hash, lang FROM participants"
        " WHERE kind = 'relative'"
    )
    assert row["channel"] == "sms" and row["referrer_id"] == member
    assert row["phone"] is None and row["phone_hash"] == sms.hash(MOBILE)
    assert row["lang"] == "fr"
    inv = await db.fetchone("SELECT joined_participant_id FROM invitations")
    assert inv[0] == row["id"]
    await inbound(sms, RELATIVE, "Merci")
    assert (await db.fetchone("SELECT COUNT(*) FROM participants"))[0] == 2


async def test_stop_as_first_reply_does_not_join(db: Database) -> None:
    sms, _ = await invited(db)
    await inbound(sms, RELATIVE, "STOP")
    assert (await db.fetchone("SELECT COUNT(*) FROM participants"))[0] == 1


async def test_uninvited_number_asking_a_question_is_not_a_participant(db: Database) -> None:
    sms = await make_service(db)
    only_text(await inbound(sms, RELATIVE, "c'est quoi ce programme"))
    assert (await db.fetchone("SELECT COUNT(*) FROM participants"))[0] == 0


async def test_code_gives_the_relative_their_own_code(db: Database) -> None:
    sms, member = await invited(db, PUBLIC_BASE_URL="https://relais.example.fr")
    text = only_text(await inbound(sms, RELATIVE, "CODE"))
    row = await db.fetchone("SELECT code, referrer_id FROM participants WHERE kind = 'relative'")
    formatted = codes.format_code(row["code"])
    assert formatted in text and f"https://relais.example.fr/r/{formatted}" in text
    assert row["referrer_id"] == member
    assert formatted in only_text(await inbound(sms, RELATIVE, "code"))  # same code again


async def test_code_from_an_uninvited_number_creates_an_organic_participant(
    db: Database,
) -> None:
    sms = await make_service(db)
    text = only_text(await inbound(sms, Person("sms", OTHER_MOBILE, ""), "Code"), OTHER_MOBILE)
    row = await db.fetchone("SELECT code, referrer_id, channel FROM participants")
    assert codes.format_code(row["code"]) in text
    assert row["referrer_id"] is None and row["channel"] == "sms"


async def test_help(db: Database) -> None:
    sms, _ = await invited(db)
    text = only_text(await inbound(sms, RELATIVE, "AIDE"))
    assert "STOP" in text and "CODE" in text


@dataclass
class FakeAnswer:
    id: str | None
    score: float = 1.0
    kind: str = "answer"
    text: str = ""


class FakeFaq:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def answer(self, question: str, lang: str = "fr") -> FakeAnswer:
        self.asked.append((question, lang))
        return FakeAnswer("gratuit" if "gratuit" in question else None)

    def short_answer(
        self, entry_id: str, lang: str = "fr", audience: str = "youth", inviter: str | None = None
    ) -> str:
        return "Oui, c'est gratuit ! " + "Vraiment très, très gratuit. " * 40


async def test_questions_are_answered_from_the_faq_within_two_segments(db: Database) -> None:
    faq = FakeFaq()
    sms = await make_service(db, faq=faq)
    text = only_text(await inbound(sms, RELATIVE, "C'est gratuit ?"))
    assert text.startswith("Oui, c'est gratuit") and text.endswith("...")
    assert faq.asked == [("C'est gratuit ?", "fr")]
    unknown = only_text(await inbound(sms, RELATIVE, "Quel temps fait-il à Brest ?"))
    assert "CONSEILLER" in unknown


async def test_english_invitation_gets_english_replies(db: Database) -> None:
    sms = await make_service(db)
    await sms.invite(await add_member(db), MOBILE, None, LINK, "en")
    assert "HELP" in only_text(await inbound(sms, RELATIVE, "qwxz vbnm"))


async def test_asking_for_a_person_notifies_staff(db: Database) -> None:
    notifier = RecordingNotifier()
    sms = await make_service(db, notifier=notifier)
    only_text(await inbound(sms, RELATIVE, "conseiller"))
    [post] = notifier.posts
    assert post.to.kind == "channel" and MOBILE in post.text
    assert (await db.fetchone("SELECT COUNT(*) FROM handoffs"))[0] == 1


async def test_repeated_message_sid_is_handled_once(db: Database) -> None:
    sms, _ = await invited(db)
    assert await inbound(sms, RELATIVE, "Bonjour", "SM" + "a" * 32)
    assert await inbound(sms, RELATIVE, "Bonjour", "SM" + "a" * 32) == []
    assert (await db.fetchone("SELECT COUNT(*) FROM inbound_sms"))[0] == 1


async def test_opt_out_link_token(db: Database) -> None:
    clock = Clock(paris(2026, 3, 9, 22, 0))
    transport = RecordingTransport()
    sms = await make_service(db, clock=clock, transport=transport)
    await sms.invite(await add_member(db), MOBILE, None, LINK, "fr")
    token = (await db.fetchone("SELECT token FROM invitations"))[0]
    assert await sms.opt_out_token("nope-nope") is False
    assert await sms.opt_out_token(token) is True
    assert await sms.opt_out_token(token) is True  # idempotent
    clock.set(paris(2026, 3, 10, 9, 0))
    await sms.dispatch_due()
    assert transport.sent == []  # the waiting invitation was cancelled
    assert (await db.fetchone("SELECT COUNT(*) FROM opt_outs"))[0] == 1


async def test_delivery_statuses_never_move_back(db: Database) -> None:
    sms, _ = await invited(db)
    sid = (await db.fetchone("SELECT provider_sid FROM outbound_sms"))[0]
    await sms.record_status(sid, "delivered", None)
    await sms.record_status(sid, "sent", None)  # late, out of order
    await sms.record_status("SM-unknown", "delivered", None)
    row = await db.fetchone("SELECT o.status, i.status FROM outbound_sms o, invitations i")
    assert tuple(row) == ("delivered", "delivered")


async def test_status_21610_opts_out(db: Database) -> None:
    sms, _ = await invited(db)
    sid = (await db.fetchone("SELECT provider_sid FROM outbound_sms"))[0]
    await sms.record_status(sid, "failed", "21610")
    assert (await db.fetchone("SELECT phone_hash FROM opt_outs"))[0] == sms.hash(MOBILE)
    assert (await db.fetchone("SELECT status FROM invitations"))[0] == "failed"
