"""The landing page's data: what a link's code stands for, OAuth2 states, call-back requests.

Called by ``bot.landing`` (the web adapter) through ``Database.read``/``write``.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from referrals import codes
from referrals.service import campaign_by_code, log_event

STATE_TTL = timedelta(minutes=10)
RETENTION_DAYS = 30  # a call-back number is cleared after this many days
_CODE_RE = re.compile(r"[A-Za-z0-9-]{3,32}")
# What an invitation's token may look like (as ``bot.sms.service.TOKEN_RE``).
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{4,64}")


@dataclass(frozen=True)
class Invite:
    """What a link's code stands for: a member's personal code or a campaign."""

    kind: str  # personal | campaign
    code: str  # display form: K7PM-4QXB or VAN-NANTES
    referrer_id: int | None
    campaign_id: int | None
    first_name: str | None  # of the member who invites (set by the adapter); None for a campaign
    staff_label: str | None  # full display name (member) or campaign code, for staff only
    invite_url: str | None  # a Discord invite of that member or campaign, if one exists


def resolve_invite(conn: sqlite3.Connection, raw: str) -> Invite | None:
    """The invite behind a code of a URL, or None when unknown."""
    if not _CODE_RE.fullmatch(raw):
        return None
    personal = codes.normalize_personal(raw)
    if personal is not None:
        row = conn.execute(
            "SELECT id, display_name FROM participants"
            " WHERE code = ? AND erased_at IS NULL AND banned = 0",
            (personal,),
        ).fetchone()
        if row is not None:
            link = conn.execute(
                "SELECT code FROM links WHERE participant_id = ? AND kind = 'discord_invite'"
                " ORDER BY created_at LIMIT 1",
                (row[0],),
            ).fetchone()
            return Invite(
                "personal",
                codes.format_code(personal),
                row[0],
                None,
                None,  # the adapter shows the first word of the name only
                row[1],
                f"https://discord.gg/{link[0]}" if link else None,
            )
    campaign = campaign_by_code(conn, raw)
    if campaign is None:
        return None
    link = conn.execute(
        "SELECT code FROM links WHERE campaign_id = ? AND kind = 'discord_invite'"
        " ORDER BY created_at LIMIT 1",
        (campaign.id,),
    ).fetchone()
    return Invite(
        "campaign",
        campaign.code,
        None,
        campaign.id,
        None,
        campaign.code,
        f"https://discord.gg/{link[0]}" if link else None,
    )


def resolve_invitation(conn: sqlite3.Connection, token: str) -> Invite | None:
    """The inviting member's invite behind the link of an invitation SMS (``/i/TOKEN``)."""
    if not _TOKEN_RE.fullmatch(token):
        return None
    row = conn.execute(
        "SELECT p.code FROM invitations i JOIN participants p ON p.id = i.member_id"
        " WHERE i.token = ? AND p.code IS NOT NULL",
        (token,),
    ).fetchone()
    # None as well when the member was erased or banned since.
    return resolve_invite(conn, row[0]) if row is not None else None


def invitation_of(conn: sqlite3.Connection, token: str, member_id: int | None) -> int | None:
    """The id of this member's invitation with this token, if any."""
    if member_id is None or not _TOKEN_RE.fullmatch(token):
        return None
    row = conn.execute(
        "SELECT id FROM invitations WHERE token = ? AND member_id = ?", (token, member_id)
    ).fetchone()
    return row[0] if row else None


def invitation_joined(conn: sqlite3.Connection, invitation_id: int, discord_id: str) -> None:
    """Count the invitation as joined by the participant who just joined through its link.

    Only when that participant was brought by the member who invited (a person Relais already
    knew keeps their source) and the invitation is not counted yet.
    """
    row = conn.execute(
        "UPDATE invitations SET joined_participant_id = p.id FROM participants p"
        " WHERE invitations.id = ? AND invitations.joined_participant_id IS NULL"
        " AND p.discord_id = ? AND p.referrer_id = invitations.member_id"
        " RETURNING member_id, joined_participant_id",
        (invitation_id, discord_id),
    ).fetchone()
    if row is not None:
        member_id, participant_id = row
        log_event(
            conn,
            "sms_relative_joined",
            participant_id,
            member_id,
            via="discord",
            invitation=invitation_id,
        )


def new_state(
    conn: sqlite3.Connection,
    state: str,
    code: str,
    lang: str,
    now: datetime,
    invitation_id: int | None = None,
    purpose: str = "join",
) -> None:
    """A new single-use OAuth2 state (expired ones are removed); ``purpose``: ``join`` (a link's
    landing page) or ``checkin`` (an action's QR code, for a member already on the server)."""
    conn.execute("DELETE FROM oauth_states WHERE expires_at < ?", (now.isoformat(),))
    conn.execute(
        "INSERT INTO oauth_states (state, code, lang, expires_at, invitation_id, purpose)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (state, code, lang, (now + STATE_TTL).isoformat(), invitation_id, purpose),
    )


def take_state(
    conn: sqlite3.Connection, state: str
) -> tuple[str, str | None, str, int | None, str] | None:
    """Consume a state (single use): its code, language, expiry, invitation and purpose."""
    row = conn.execute(
        "DELETE FROM oauth_states WHERE state = ?"
        " RETURNING code, lang, expires_at, invitation_id, purpose",
        (state,),
    ).fetchone()
    return (row[0], row[1], row[2], row[3], row[4]) if row else None


def store_callback(
    conn: sqlite3.Connection,
    *,
    first_name: str,
    phone: str,
    phone_hash: str,
    invite: Invite,
    lang: str,
    now: datetime,
) -> tuple[int, bool]:
    """Record a call-back request (one open request per number); returns (number, created)."""
    cutoff = (now - timedelta(days=RETENTION_DAYS)).isoformat()
    # Minimal data: numbers older than the retention period are cleared on every new request.
    conn.execute(
        "UPDATE callback_requests SET phone = NULL WHERE at < ? AND phone IS NOT NULL", (cutoff,)
    )
    existing = conn.execute(
        "SELECT id FROM callback_requests WHERE phone_hash = ? AND status = 'open' AND at >= ?",
        (phone_hash, cutoff),
    ).fetchone()
    if existing is not None:
        return existing[0], False
    at = now.isoformat()
    cursor = conn.execute(
        "INSERT INTO callback_requests (at, first_name, phone, phone_hash, referrer_id,"
        " campaign_id, lang) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (at, first_name, phone, phone_hash, invite.referrer_id, invite.campaign_id, lang),
    )
    assert cursor.lastrowid is not None
    log_event(
        conn, "callback_requested", None, invite.referrer_id, at=at, campaign=invite.campaign_id
    )
    return cursor.lastrowid, True
