"""SMS errors: a refused invitation (a rule, shown to the member), a provider failure."""

from __future__ import annotations

from referrals.errors import RelaisError


class SmsRefused(RelaisError):
    """An SMS cannot leave because of a rule; ``key`` names the message in ``sms.yaml``."""

    key = "sms.refused"


class SmsSendError(Exception):
    """The provider did not accept a message.

    ``retryable``: nothing was sent (rate limit, unavailable, connection refused), try again later.
    ``ambiguous``: the request may have reached the provider (timeout): never send it again.
    ``opted_out``: the recipient has opted out at the provider (Twilio error 21610).
    """

    def __init__(
        self,
        reason: str,
        *,
        code: str | None = None,
        status: int | None = None,
        retryable: bool = False,
        ambiguous: bool = False,
        opted_out: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.status = status
        self.retryable = retryable
        self.ambiguous = ambiguous
        self.opted_out = opted_out
        self.retry_after = retry_after
