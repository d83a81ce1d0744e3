"""Export of the event log as CSV, with pseudonymous references and no personal data."""

from __future__ import annotations

import io
import json
import sqlite3

from referrals.csvio import write_csv

EVENT_COLUMNS = ("at", "kind", "participant", "other", "data")
# Only these keys of an event's JSON data leave the database: none of them can hold a name,
# a phone number or a message. A key added later stays inside until it is listed here.
SAFE_DATA_KEYS = ("channel", "campaign", "via", "invitation", "outbound", "count")


def export_events(
    conn: sqlite3.Connection,
    out: io.TextIOBase | io.StringIO,
    *,
    delimiter: str = ",",
    bom: bool = False,
) -> int:
    """Write every event as ``at, kind, participant ref, other ref, data``; returns the rows."""
    cursor = conn.execute(
        "SELECT e.at, e.kind, p.ref, o.ref, e.data FROM events e"
        " LEFT JOIN participants p ON p.id = e.participant_id"
        " LEFT JOIN participants o ON o.id = e.other_id ORDER BY e.id"
    )
    return write_csv(
        out,
        EVENT_COLUMNS,
        cursor,
        lambda r: (r[0], r[1], r[2] or "", r[3] or "", _safe_data(r[4])),
        delimiter=delimiter,
        bom=bom,
    )


def _safe_data(data: str | None) -> str:
    if not data:
        return ""
    try:
        parsed = json.loads(data)
    except ValueError:
        return ""
    if not isinstance(parsed, dict):
        return ""
    kept = {key: parsed[key] for key in SAFE_DATA_KEYS if parsed.get(key) is not None}
    return json.dumps(kept, ensure_ascii=False, sort_keys=True) if kept else ""
