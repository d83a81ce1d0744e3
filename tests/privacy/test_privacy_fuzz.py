"""Property-based fuzzing of every parser of outside input: never an unexpected exception."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from privacy_support import Session
from twilio.request_validator import RequestValidator

from bot.console import _handle
from bot.conversation import parse_command_line
from bot.ports import Person
from bot.settings import DEFAULT_COUNTRIES
from bot.sms.errors import SmsRefused
from bot.sms.phone import canonical, normalize_mobile
from bot.web import create_app
from referrals import codes
from referrals.csvio import import_rows
from referrals.errors import ImportRejected

# No deadline and no "too slow" health check: both measure wall-clock time (a loaded machine).
FAST = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
NASTY = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",))
    | st.sampled_from(list("/,;\"'\n\r\t\x00\u200b\u202e -+0123456789oOiIlL")),
    max_size=120,
)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A private event loop: hypothesis drives synchronous functions."""
    event_loop = asyncio.new_event_loop()
    try:
        yield event_loop
    finally:
        event_loop.close()


# ---------------------------------------------------------------- codes


@FAST
@given(NASTY)
def test_personal_code_parser(text: str) -> None:
    result = codes.normalize_personal(text)
    assert result is None or (len(result) == 8 and codes.is_valid(result))


@FAST
@given(st.text(alphabet=CROCKFORD, min_size=7, max_size=7), st.data())
def test_any_typed_form_of_a_code_comes_back(data7: str, data: st.DataObject) -> None:
    code = data7 + codes.check_symbol(data7)
    typed = codes.format_code(code)
    if data.draw(st.booleans()):
        typed = typed.lower()
    if data.draw(st.booleans()):
        typed = typed.replace("-", data.draw(st.sampled_from(["", " ", "  "])))
    typed = typed.replace("0", data.draw(st.sampled_from(["0", "O", "o"])))
    typed = typed.replace("1", data.draw(st.sampled_from(["1", "I", "l", "L"])))
    assert codes.normalize_personal(f"  {typed} ") == code


@FAST
@given(NASTY)
def test_campaign_code_parser(text: str) -> None:
    result = codes.normalize_campaign(text)
    assert result is None or re.fullmatch(r"[A-Z0-9-]{3,24}", result)


# ---------------------------------------------------------------- phone numbers


@FAST
@given(NASTY | st.from_regex(r"\A(\+33|0033|0)[1-9]([ .-]?[0-9][0-9]){4}\Z"))
def test_phone_parsers(text: str) -> None:
    assert isinstance(canonical(text), str)
    try:
        number = normalize_mobile(text, DEFAULT_COUNTRIES)
    except SmsRefused:
        return
    assert re.fullmatch(r"\+\d{8,15}", number)


@FAST
@given(st.from_regex(r"\A0[67][0-9]{8}\Z"))
def test_french_mobiles_are_accepted(text: str) -> None:
    try:
        number = normalize_mobile(text, DEFAULT_COUNTRIES)
    except SmsRefused as exc:
        assert exc.key == "sms.invalid_number"  # unallocated ranges (07 0x...)
        return
    # Metropolitan, or an overseas department whose numbers are also written 06 / 07.
    assert number.startswith("+") and number.endswith(text[1:])


# ---------------------------------------------------------------- CSV rows

COLUMNS = ["participant", "referrer", "joined_at", "channel", "kind", "enrolled_at", "x"]
CELL = st.one_of(
    st.sampled_from(["a", "b", "c", "", "youth", "relative", "campaign:VAN", "2026-01-05"]),
    st.sampled_from(["2026-01-05T09:00:00", "2026-13-01", "2026-01-05 09:00+02:00", "a;b"]),
    st.text(max_size=12),
)


@st.composite
def csv_texts(draw: st.DrawFn) -> str:
    sep = draw(st.sampled_from([",", ";", "\t"]))
    header = draw(st.lists(st.sampled_from(COLUMNS), min_size=0, max_size=7))
    rows = draw(st.lists(st.lists(CELL, max_size=8), max_size=8))
    lines = [sep.join(header)] + [sep.join(row) for row in rows]
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines)
    return draw(st.sampled_from(["", "\ufeff"])) + text


async def _import(session: Session, text: str) -> None:
    try:
        count = await session.app.db.call(import_rows, text)
    except ImportRejected:
        return
    assert isinstance(count, int)


def test_csv_import_only_rejects(tmp_path: Path, loop: asyncio.AbstractEventLoop) -> None:
    session = loop.run_until_complete(Session.open(tmp_path))
    try:

        @FAST
        @given(csv_texts() | NASTY)
        def check(text: str) -> None:
            loop.run_until_complete(_import(session, text))

        check()
        conn_ok = loop.run_until_complete(session.app.db.fetchone("PRAGMA integrity_check"))
        assert conn_ok is not None and conn_ok[0] == "ok"
    finally:
        loop.run_until_complete(session.close())


# ---------------------------------------------------------------- webhook forms

PUBLIC = "https://relais.example.fr"
TOKEN = "f" * 32
FIELD = st.sampled_from(["From", "To", "Body", "MessageSid", "MessageStatus", "ErrorCode", "x"])


def test_webhooks_never_500(
    tmp_path: Path, loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    session = loop.run_until_complete(
        Session.open(tmp_path, public_base_url=PUBLIC, twilio_auth_token=TOKEN)
    )
    app = create_app(
        settings=session.app.settings,
        texts=session.app.texts,
        db=session.app.db,
        sms=session.app.sms,
        conversation=session.app.conversation,
        router=session.app.router,
    )
    client: TestClient = TestClient(TestServer(app, host="127.0.0.1"), loop=loop)  # type: ignore[type-arg]
    loop.run_until_complete(client.start_server())

    async def post(path: str, form: dict[str, str], signed: bool, raw: bytes | None) -> int:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if signed:
            signature = RequestValidator(TOKEN).compute_signature(PUBLIC + path, form)
            headers["X-Twilio-Signature"] = signature
        body = raw if raw is not None else urlencode(form).encode("utf-8")
        async with client.post(path, data=body, headers=headers) as response:
            await response.read()
            return response.status

    try:

        @FAST
        @given(
            path=st.sampled_from(["/twilio/sms", "/twilio/status", "/stop/abc"]),
            form=st.dictionaries(FIELD | st.text(max_size=8), NASTY, max_size=6),
            signed=st.booleans(),
            raw=st.none() | st.binary(max_size=200),
        )
        def check(path: str, form: dict[str, str], signed: bool, raw: bytes | None) -> None:
            status = loop.run_until_complete(post(path, form, signed, raw))
            assert status < 500

        with caplog.at_level(logging.ERROR):
            check()
        assert not [r for r in caplog.records if "web_unexpected_error" in str(r.msg)]
    finally:
        loop.run_until_complete(client.close())
        loop.run_until_complete(session.close())


# ---------------------------------------------------------------- slash commands, text, console


@FAST
@given(NASTY)
def test_command_line_parser(text: str) -> None:
    for line in (text, "/" + text, "/code " + text, "/inviter " + text):
        parsed = parse_command_line(line)
        if parsed is not None:
            name, args = parsed
            assert isinstance(name, str)
            assert all(isinstance(v, str) for v in args.values())


def test_conversation_always_answers(tmp_path: Path, loop: asyncio.AbstractEventLoop) -> None:
    session = loop.run_until_complete(Session.open(tmp_path))
    conversation = session.app.conversation
    try:

        @FAST
        @given(
            who=st.sampled_from(["kim", "noa", "lou"]),
            text=NASTY
            | st.builds(
                lambda cmd, rest: f"/{cmd} {rest}",
                st.sampled_from(
                    [
                        "code",
                        "inviter",
                        "question",
                        "conseiller",
                        "parrainage",
                        "mesdonnees",
                        "oublier",
                        "aide",
                        "stats",
                        "xyz",
                    ]
                ),
                NASTY,
            ),
        )
        def check(who: str, text: str) -> None:
            replies = loop.run_until_complete(conversation.text(Person("discord", who, who), text))
            assert replies and all(reply.text.strip() for reply in replies)

        check()
    finally:
        loop.run_until_complete(session.close())


def test_console_lines_never_raise(tmp_path: Path, loop: asyncio.AbstractEventLoop) -> None:
    session = loop.run_until_complete(Session.open(tmp_path))
    try:

        @FAST
        @given(
            st.one_of(
                NASTY,
                st.builds(
                    lambda kind, who, text: f"{kind}:{who} {text}",
                    st.sampled_from(["discord", "staff", "sms", "join discord"]),
                    st.text(min_size=1, max_size=12).filter(
                        lambda s: not any(c.isspace() for c in s)
                    ),
                    NASTY,
                ),
                st.builds(lambda link: f"join discord:zoe via {link}", NASTY),
            )
        )
        def check(line: str) -> None:
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                return
            result = loop.run_until_complete(
                _handle(session.app.conversation, session.output, stripped, session.app.settings)
            )
            assert isinstance(result, list)

        check()
    finally:
        loop.run_until_complete(session.close())
