"""A small hand-computed referral graph shared by the analytics tests."""

from __future__ import annotations

HEADER = "participant,referrer,joined_at,channel,kind,enrolled_at\n"
# Trees: A{B{D},C} from campaign VAN, E{F} organic (F a relative invited by SMS),
# G{H} from campaign TIKTOK. Weeks (Monday): 2026-01-05 has A B C E, 2026-01-12 nobody,
# 2026-01-19 has D F G H. Enrolled: A, B, F.
GRAPH = HEADER + (
    "A,,2026-01-05T09:00:00+00:00,campaign:VAN,,2026-01-15T00:00:00+00:00\n"
    "B,A,2026-01-06T09:00:00+00:00,code,,2026-01-16T00:00:00+00:00\n"
    "C,A,2026-01-07T09:00:00+00:00,,,\n"
    "D,B,2026-01-20T09:00:00+00:00,code,,\n"
    "E,,2026-01-08T09:00:00+00:00,,,\n"
    "F,E,2026-01-21T09:00:00+00:00,sms,relative,2026-01-25T00:00:00+00:00\n"
    "G,,2026-01-22T09:00:00+00:00,campaign:TIKTOK,,\n"
    "H,G,2026-01-23T09:00:00+00:00,discord_invite,,\n"
)
