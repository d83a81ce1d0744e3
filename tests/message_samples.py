"""Sample values of the analytics texts, shared by the template tests."""

from __future__ import annotations

CAMPAIGN = {
    "code": "VAN-NANTES",
    "channel": "van",
    "direct": 12,
    "brought_in": 30,
    "total": 42,
    "enrollment_rate": 0.25,
}
ROW = {
    "group": "source",
    "name": "peer",
    "participants": 40,
    "share_brought_someone": 0.3,
    "mean_subtree_size": 1.8,
    "enrollment_rate": 0.2,
    "recruits_30d": 0.4,
}
