"""The referral service: participants, sources, codes, campaigns, enrolment, the event log.

Each public coroutine is one transaction in one round-trip to the database thread; the
``_functions`` below it run inside that thread on a plain ``sqlite3.Connection``.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

from referrals import codes
from referrals.errors import CampaignError, CodeRejected, NotFound
from referrals.models import (
    PARTICIPANT_COLUMNS,
    Campaign,
    Chain,
    JoinResult,
    Participant,
    RedeemResult,
)
from referrals.store import Database, now_iso

MAX_FAILED_CODES = 5
CODE_LOCK = timedelta(hours=1)


def new_ref() -> str:
    """A pseudonymous participant reference, stable and meaningless."""
    return "p-" + secrets.token_hex(5)


def log_event(
    conn: sqlite3.Connection,
    kind: str,
    participant_id: int | None = None,
    other_id: int | None = None,
    at: str | None = None,
    **data: Any,
) -> None:
    """Append one event to the log."""
    conn.execute(
        "INSERT INTO events (at, kind, participant_id, other_id, data) VALUES (?, ?, ?, ?, ?)",
        (at or now_iso(), kind, participant_id, other_id, json.dumps(data) if data else None),
    )


def get_participant(conn: sqlite3.Connection, participant_id: int) -> Participant:
    """The participant with this id."""
    row = conn.execute(
        f"SELECT {PARTICIPANT_COLUMNS} FROM participants WHERE id = ?", (participant_id,)
    ).fetchone()
    if row is None:
        raise NotFound("error.participant_not_found", who=str(participant_id))
    return Participant.from_row(row)


def _one(conn: sqlite3.Connection, where: str, params: tuple[Any, ...]) -> Participant | None:
    row = conn.execute(
        f"SELECT {PARTICIPANT_COLUMNS} FROM participants WHERE {where}", params
    ).fetchone()
    return Participant.from_row(row) if row else None


def by_discord_id(conn: sqlite3.Connection, discord_id: str) -> Participant | None:
    """The participant with this Discord identity, if any."""
    return _one(conn, "discord_id = ?", (discord_id,))


def by_phone_hash(conn: sqlite3.Connection, phone_hash: str) -> Participant | None:
    """The participant with this keyed phone hash, if any."""
    return _one(conn, "phone_hash = ?", (phone_hash,))


def get_campaign(conn: sqlite3.Connection, campaign_id: int) -> Campaign:
    """The campaign with this id."""
    row = conn.execute(
        "SELECT id, code, channel, created_at FROM campaigns WHERE id = ?", (campaign_id,)
    ).fetchone()
    if row is None:
        raise NotFound("error.campaign_not_found", code=str(campaign_id))
    return Campaign(*row)


def campaign_by_code(conn: sqlite3.Connection, code: str) -> Campaign | None:
    """The campaign with this code (any case), if any."""
    normalized = codes.normalize_campaign(code)
    if normalized is None:
        return None
    row = conn.execute(
        "SELECT id, code, channel, created_at FROM campaigns WHERE code = ?", (normalized,)
    ).fetchone()
    return Campaign(*row) if row else None


def find_participant(conn: sqlite3.Connection, text: str) -> Participant | None:
    """Find a participant by personal code, reference, Discord id, or display name."""
    text = text.strip().lstrip("@")
    if not text:
        return None
    if (code := codes.normalize_personal(text)) is not None and (
        found := _one(conn, "code = ?", (code,))
    ):
        return found
    for where in ("ref = ?", "discord_id = ?", "display_name = ? COLLATE NOCASE"):
        if found := _one(
            conn, where + " AND erased_at IS NULL" if "name" in where else where, (text,)
        ):
            return found
    return None


def delay_seconds(joined_at: str, referrer_joined_at: str) -> float:
    """Seconds from the referrer's join to this join (``referral_delay_s``, for the stats)."""
    delta = datetime.fromisoformat(joined_at) - datetime.fromisoformat(referrer_joined_at)
    return round(delta.total_seconds(), 3)


def insert_participant(
    conn: sqlite3.Connection,
    *,
    joined_at: str,
    ref: str | None = None,
    kind: str = "youth",
    display_name: str | None = None,
    discord_id: str | None = None,
    phone: str | None = None,
    phone_hash: str | None = None,
    lang: str | None = None,
    referrer_id: int | None = None,
    campaign_id: int | None = None,
    channel: str = "unknown",
    enrolled_at: str | None = None,
    referrer: Participant | None = None,
) -> Participant:
    """Create a participant with its source; wave and root come from the referrer.

    ``referrer`` may be passed when the caller has already read it.
    """
    wave, root_id, delay = 0, None, None
    if referrer_id is not None:
        if referrer is None or referrer.id != referrer_id:
            referrer = get_participant(conn, referrer_id)
        wave, root_id = referrer.wave + 1, referrer.root_id
        delay = delay_seconds(joined_at, referrer.joined_at)
    source_set_at = joined_at if (referrer_id or campaign_id) else None
    # The single writer holds the lock (BEGIN IMMEDIATE), so the next id is ours: a seed's root
    # (itself) is known before the insert, and the row is written once.
    pid = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM participants").fetchone()[0]
    ref = ref or new_ref()
    conn.execute(
        _INSERT_PARTICIPANT,
        (
            pid,
            ref,
            kind,
            display_name,
            discord_id,
            phone,
            phone_hash,
            lang,
            referrer_id,
            campaign_id,
            channel,
            source_set_at,
            root_id or pid,
            wave,
            joined_at,
            enrolled_at,
            delay,
        ),
    )
    log_event(conn, "joined", pid, referrer_id, at=joined_at, channel=channel, campaign=campaign_id)
    return Participant(
        id=pid,
        ref=ref,
        kind=kind,
        display_name=display_name,
        discord_id=discord_id,
        code=None,
        referrer_id=referrer_id,
        campaign_id=campaign_id,
        channel=channel,
        root_id=root_id or pid,
        wave=wave,
        joined_at=joined_at,
        enrolled_at=enrolled_at,
        lang=lang,
        source_set_at=source_set_at,
        erased_at=None,
    )


_INSERT_PARTICIPANT = (
    "INSERT INTO participants (id, ref, kind, display_name, discord_id, phone, phone_hash, lang,"
    " referrer_id, campaign_id, channel, source_set_at, root_id, wave, joined_at, enrolled_at,"
    " referral_delay_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def set_source(
    conn: sqlite3.Connection,
    participant: Participant,
    *,
    referrer: Participant | None = None,
    campaign: Campaign | None = None,
    channel: str,
) -> None:
    """Fix a participant's source once, and move their whole subtree in the graph."""
    if participant.has_source:
        raise CodeRejected("code.already_has_source")
    wave, root_id = (referrer.wave + 1, referrer.root_id) if referrer else (0, participant.id)
    conn.execute(
        "UPDATE participants SET referrer_id = ?, campaign_id = ?, channel = ?,"
        " source_set_at = ? WHERE id = ?",
        (
            referrer.id if referrer else None,
            campaign.id if campaign else None,
            channel,
            now_iso(),
            participant.id,
        ),
    )
    if referrer is not None:
        # The participant was a seed; their recruits follow them one level down a new tree.
        conn.execute(
            "WITH RECURSIVE sub(id, depth) AS ("
            "  SELECT ?, 0"
            "  UNION ALL SELECT p.id, sub.depth + 1 FROM participants p JOIN sub"
            "  ON p.referrer_id = sub.id)"
            " UPDATE participants SET root_id = ?,"
            "  wave = ? + (SELECT depth FROM sub WHERE sub.id = participants.id)"
            " WHERE id IN (SELECT id FROM sub)",
            (participant.id, root_id, wave),
        )
    log_event(
        conn,
        "source_set",
        participant.id,
        referrer.id if referrer else None,
        channel=channel,
        campaign=campaign.id if campaign else None,
    )


def _redeem(
    conn: sqlite3.Connection, participant_id: int, text: str
) -> RedeemResult | CodeRejected:
    """Redeem in one transaction; a wrong code is *returned*, so that its count is committed."""
    me = get_participant(conn, participant_id)
    now = datetime.now(UTC)
    locked_until = conn.execute(
        "SELECT code_locked_until FROM participants WHERE id = ?", (participant_id,)
    ).fetchone()[0]
    if locked_until and datetime.fromisoformat(locked_until) > now:
        raise CodeRejected("code.locked", until=locked_until)
    if me.has_source:
        raise CodeRejected("code.already_has_source")
    personal = codes.normalize_personal(text)
    owner = _one(conn, "code = ?", (personal,)) if personal else None
    campaign = None if owner else campaign_by_code(conn, text)
    if owner is None and campaign is None:
        failures = conn.execute(
            "UPDATE participants SET failed_codes = failed_codes + 1 WHERE id = ?"
            " RETURNING failed_codes",
            (participant_id,),
        ).fetchone()[0]
        log_event(conn, "code_failed", participant_id)
        if failures >= MAX_FAILED_CODES:
            until = (now + CODE_LOCK).replace(microsecond=0).isoformat()
            conn.execute(
                "UPDATE participants SET failed_codes = 0, code_locked_until = ? WHERE id = ?",
                (until, participant_id),
            )
            log_event(conn, "code_locked", participant_id)
            return CodeRejected("code.locked_now", minutes=int(CODE_LOCK.total_seconds() // 60))
        # Raising here would roll back the count: the lock would never come.
        left = MAX_FAILED_CODES - failures
        return CodeRejected("code.unknown", code=text.strip()[:32], left=left)
    if owner is not None:
        if owner.id == me.id:
            raise CodeRejected("code.own")
        if owner.root_id == me.id:
            # Nobody with a source is a root, so the redeemer is the seed of the owner's tree.
            raise CodeRejected("code.cycle", name=owner.name)
        set_source(conn, me, referrer=owner, channel="code")
    else:
        assert campaign is not None
        set_source(conn, me, campaign=campaign, channel=f"campaign:{campaign.code}")
    conn.execute("UPDATE participants SET failed_codes = 0 WHERE id = ?", (participant_id,))
    return RedeemResult(owner, campaign)


class ReferralService:
    """Async facade over the referral functions; one transaction per call."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def participant(self, participant_id: int) -> Participant:
        """The participant with this id."""
        return await self.db.read(get_participant, participant_id)

    async def by_discord_id(self, discord_id: str) -> Participant | None:
        """The participant with this Discord identity."""
        return await self.db.read(by_discord_id, discord_id)

    async def find(self, text: str) -> Participant | None:
        """A participant by code, reference, Discord id or display name."""
        return await self.db.read(find_participant, text)

    async def ensure_member(
        self, discord_id: str, display_name: str, lang: str | None = None
    ) -> tuple[Participant, bool]:
        """The member with this Discord identity, created as organic on first contact."""

        def run(conn: sqlite3.Connection) -> tuple[Participant, bool]:
            found = by_discord_id(conn, discord_id)
            if found is not None:
                if found.display_name != display_name and found.erased_at is None:
                    conn.execute(
                        "UPDATE participants SET display_name = ? WHERE id = ?",
                        (display_name, found.id),
                    )
                    found = get_participant(conn, found.id)
                return found, False
            created = insert_participant(
                conn,
                joined_at=now_iso(),
                display_name=display_name,
                discord_id=discord_id,
                lang=lang,
            )
            return created, True

        # Most calls are from a member already known under the same name: a read on the reader
        # connection answers them without taking the writer. The write re-checks (a concurrent
        # first contact, a renamed member).
        found = await self.db.read(by_discord_id, discord_id)
        if found is not None and (found.display_name == display_name or found.erased_at):
            return found, False
        return await self.db.write(run)

    async def join(
        self,
        discord_id: str,
        display_name: str,
        *,
        link_code: str | None = None,
        referrer_id: int | None = None,
        campaign_id: int | None = None,
        channel: str = "unknown",
        lang: str | None = None,
    ) -> JoinResult:
        """A member joins the server, through a personal or campaign link or none.

        A rejoin (already known) is never a new referral.
        """

        def run(conn: sqlite3.Connection) -> JoinResult:
            nonlocal referrer_id, campaign_id, channel
            existing = by_discord_id(conn, discord_id)
            if existing is not None:
                conn.execute("UPDATE participants SET left_at = NULL WHERE id = ?", (existing.id,))
                log_event(conn, "rejoined", existing.id)
                return JoinResult(existing, False, None, None)
            if link_code is not None:
                link = conn.execute(
                    "UPDATE links SET uses = uses + 1 WHERE code = ?"
                    " RETURNING participant_id, campaign_id, kind",
                    (link_code,),
                ).fetchone()
                if link is not None:
                    referrer_id, campaign_id = link["participant_id"], link["campaign_id"]
                    channel = "discord_invite" if link["kind"] == "discord_invite" else "link"
            campaign = get_campaign(conn, campaign_id) if campaign_id else None
            if campaign is not None and referrer_id is None:
                channel = f"campaign:{campaign.code}"
            referrer = get_participant(conn, referrer_id) if referrer_id else None
            created = insert_participant(
                conn,
                joined_at=now_iso(),
                display_name=display_name,
                discord_id=discord_id,
                lang=lang,
                referrer_id=referrer_id,
                campaign_id=None if referrer_id else campaign_id,
                channel=channel,
                referrer=referrer,
            )
            return JoinResult(created, True, referrer, campaign if not referrer_id else None)

        return await self.db.write(run)

    async def personal_code(self, participant_id: int) -> str:
        """The participant's personal code, created on first use."""

        def run(conn: sqlite3.Connection) -> str:
            me = get_participant(conn, participant_id)
            if me.code:
                return me.code
            while True:
                code = codes.new_code()
                try:
                    conn.execute(
                        "UPDATE participants SET code = ? WHERE id = ?", (code, participant_id)
                    )
                except sqlite3.IntegrityError:
                    continue  # astronomically rare collision: draw again
                log_event(conn, "code_created", participant_id)
                return code

        return await self.db.write(run)

    async def redeem(self, participant_id: int, text: str) -> RedeemResult:
        """``/code``: record who (or which campaign) brought this participant."""
        result = await self.db.write(_redeem, participant_id, text)
        if isinstance(result, CodeRejected):
            raise result  # after the commit of the failure count
        return result

    async def create_campaign(
        self, code: str, channel: str | None = None, created_by: str | None = None
    ) -> Campaign:
        """Create a campaign code chosen by staff."""
        normalized = codes.normalize_campaign(code)
        if normalized is None:
            raise CampaignError("campaign.malformed", code=code.strip()[:40])
        if codes.is_valid(normalized.replace("-", "")) and len(normalized.replace("-", "")) == 8:
            raise CampaignError("campaign.looks_personal", code=normalized)

        def run(conn: sqlite3.Connection) -> Campaign:
            if campaign_by_code(conn, normalized) is not None:
                raise CampaignError("campaign.exists", code=normalized)
            at = now_iso()
            cursor = conn.execute(
                "INSERT INTO campaigns (code, channel, created_at, created_by) VALUES (?, ?, ?, ?)",
                (normalized, channel, at, created_by),
            )
            assert cursor.lastrowid is not None
            log_event(conn, "campaign_created", campaign=normalized, channel=channel)
            return Campaign(cursor.lastrowid, normalized, channel, at)

        return await self.db.write(run)

    async def campaign(self, code: str) -> Campaign | None:
        """The campaign with this code."""
        return await self.db.read(campaign_by_code, code)

    async def enrol(self, participant_id: int, at: str | None = None) -> Participant:
        """Record that the participant entered the programme (first date kept)."""

        def run(conn: sqlite3.Connection) -> Participant:
            me = get_participant(conn, participant_id)
            if me.enrolled_at is None:
                conn.execute(
                    "UPDATE participants SET enrolled_at = ? WHERE id = ?",
                    (at or now_iso(), participant_id),
                )
                log_event(conn, "enrolled", participant_id)
            return get_participant(conn, participant_id)

        return await self.db.write(run)

    async def link_for(self, participant_id: int, kind: str) -> str | None:
        """The participant's existing link code of this kind, if any."""
        row = await self.db.fetchone(
            "SELECT code FROM links WHERE participant_id = ? AND kind = ?", (participant_id, kind)
        )
        return row[0] if row else None

    async def add_link(
        self,
        code: str,
        kind: str,
        participant_id: int | None = None,
        campaign_id: int | None = None,
        uses: int = 0,
    ) -> None:
        """Record a personal or campaign link (a Discord invite or a landing token)."""

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR IGNORE INTO links (code, participant_id, campaign_id, kind, uses,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (code, participant_id, campaign_id, kind, uses, now_iso()),
            )

        await self.db.write(run)

    async def chain(self, participant_id: int) -> Chain:
        """Ancestors up to the seed, direct recruits and subtree size."""
        return await self.db.read(chain_of, participant_id)

    async def set_banned(self, discord_id: str, banned: bool) -> bool:
        """Ban (or unban) a member from the bot; False when nobody has that Discord id."""

        def run(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "UPDATE participants SET banned = ? WHERE discord_id = ? RETURNING id",
                (int(banned), discord_id),
            ).fetchone()
            if row is not None:
                log_event(conn, "banned" if banned else "unbanned", row[0])
            return row is not None

        return await self.db.write(run)

    async def member_left(self, discord_id: str) -> bool:
        """A member left the server: noted (a later rejoin is still not a new referral)."""

        def run(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "UPDATE participants SET left_at = ? WHERE discord_id = ? RETURNING id",
                (now_iso(), discord_id),
            ).fetchone()
            if row is not None:
                log_event(conn, "left", row[0])
            return row is not None

        return await self.db.write(run)

    async def event(self, kind: str, participant_id: int | None = None, **data: Any) -> None:
        """Append one event to the log."""
        await self.db.write(lambda conn: log_event(conn, kind, participant_id, **data))


def chain_of(conn: sqlite3.Connection, participant_id: int) -> Chain:
    """Ancestors (referrer first, seed last), direct recruits and subtree size."""
    me = get_participant(conn, participant_id)
    ancestors = [
        Participant.from_row(row)
        for row in conn.execute(
            "WITH RECURSIVE up(id, n) AS ("
            "  SELECT referrer_id, 1 FROM participants WHERE id = ? AND referrer_id IS NOT NULL"
            "  UNION ALL SELECT p.referrer_id, up.n + 1 FROM participants p JOIN up"
            "  ON p.id = up.id WHERE p.referrer_id IS NOT NULL)"
            f" SELECT {', '.join('p.' + c.strip() for c in PARTICIPANT_COLUMNS.split(','))}"
            " FROM up JOIN participants p ON p.id = up.id ORDER BY up.n",
            (participant_id,),
        )
    ]
    recruits = [
        Participant.from_row(row)
        for row in conn.execute(
            f"SELECT {PARTICIPANT_COLUMNS} FROM participants WHERE referrer_id = ?"
            " ORDER BY joined_at, id",
            (participant_id,),
        )
    ]
    size = conn.execute(
        "WITH RECURSIVE sub(id) AS (SELECT ? UNION ALL"
        " SELECT p.id FROM participants p JOIN sub ON p.referrer_id = sub.id)"
        " SELECT COUNT(*) FROM sub",
        (participant_id,),
    ).fetchone()[0]
    seed = ancestors[-1] if ancestors else me
    campaign = get_campaign(conn, seed.campaign_id) if seed.campaign_id else None
    return Chain(me, ancestors, recruits, size, campaign)
