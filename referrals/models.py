"""Plain data objects of the referral domain."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class Participant:
    """A young person or a relative, with their source and place in the referral graph."""

    id: int
    ref: str
    kind: str
    display_name: str | None
    discord_id: str | None
    code: str | None
    referrer_id: int | None
    campaign_id: int | None
    channel: str
    root_id: int
    wave: int
    joined_at: str
    enrolled_at: str | None
    lang: str | None
    source_set_at: str | None
    erased_at: str | None

    @property
    def name(self) -> str:
        """What to call this person: display name, else the pseudonymous reference."""
        return self.display_name or self.ref

    @property
    def has_source(self) -> bool:
        """True when a referrer or a campaign is recorded."""
        return self.referrer_id is not None or self.campaign_id is not None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Participant:
        """Build from a row selected with ``PARTICIPANT_COLUMNS`` (the fields, in order)."""
        return cls(*row)


PARTICIPANT_COLUMNS = ", ".join(Participant.__dataclass_fields__)


@dataclass(frozen=True)
class Campaign:
    """An outreach action with its own code."""

    id: int
    code: str
    channel: str | None
    created_at: str


@dataclass(frozen=True)
class Chain:
    """A participant's place: ancestors up to the seed, direct recruits, subtree size."""

    participant: Participant
    ancestors: list[Participant]  # referrer first, seed last
    recruits: list[Participant]
    subtree_size: int  # the participant included
    campaign: Campaign | None


@dataclass(frozen=True)
class RedeemResult:
    """Outcome of a successful ``/code``: the peer or the campaign now recorded as source."""

    referrer: Participant | None
    campaign: Campaign | None


@dataclass(frozen=True)
class JoinResult:
    """Outcome of a join: the participant, whether they are new, and who brought them."""

    participant: Participant
    new: bool
    referrer: Participant | None
    campaign: Campaign | None
