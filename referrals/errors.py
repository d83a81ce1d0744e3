"""Domain errors: plain exceptions that carry a message key and its parameters.

Adapters turn them into the person's language with the templates of ``messages/``.
"""

from __future__ import annotations

from typing import Any


class RelaisError(Exception):
    """Base of every domain error; ``key`` names its message template."""

    key = "error.generic"

    def __init__(self, key: str | None = None, **params: Any) -> None:
        self.key = key or type(self).key
        self.params = params
        super().__init__(f"{self.key} {params}" if params else self.key)


class NotFound(RelaisError):
    """A participant, code or campaign does not exist."""

    key = "error.not_found"


class CodeRejected(RelaisError):
    """A referral code could not be redeemed (see ``key`` for the rule)."""

    key = "code.invalid"


class CampaignError(RelaisError):
    """A campaign code is malformed or already taken."""

    key = "campaign.invalid"


class RateLimited(RelaisError):
    """Too many attempts in a short time."""

    key = "error.rate_limited"


class ImportProblem:
    """One problem of an imported file, with its line number."""

    __slots__ = ("key", "line", "params")

    def __init__(self, key: str, line: int | None = None, **params: Any) -> None:
        self.key = key
        self.line = line
        self.params = params

    def __repr__(self) -> str:
        return f"ImportProblem({self.key!r}, line={self.line}, {self.params})"


class ImportRejected(RelaisError):
    """The whole file was refused; ``problems`` lists each reason with its line."""

    key = "import.rejected"

    def __init__(self, problems: list[ImportProblem], **params: Any) -> None:
        self.problems = problems
        super().__init__(count=len(problems), **params)


class ConfigError(RelaisError):
    """A configuration value is missing or invalid."""

    key = "config.invalid"
