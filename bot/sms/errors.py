"""SMS errors: a refused invitation (a rule, shown to the member), a provider failure."""

from __future__ import annotations

from referrals.sms_queue import SmsRefused

__all__ = ["SmsRefused", "SmsSendError"]

# Twilio errors that say the account or the sender cannot send at all: the queue pauses (its
# messages are not at fault) and staff are alerted once. 20003: authentication failed (HTTP 401);
# 20005: account not active (suspended, closed); 21606 / 21608: the sender cannot send (not an
# SMS number of the account / a trial account's unverified recipient).
ACCOUNT_CODES = frozenset({"20003", "20005", "21606", "21608"})
# The number itself is wrong: 21211 invalid 'To', 21614 not a mobile number.
INVALID_NUMBER_CODES = frozenset({"21211", "21614"})


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

    @property
    def account(self) -> bool:
        """The account or the sender is at fault, not the message: pause the queue."""
        return self.code in ACCOUNT_CODES or (self.status == 401 and not self.code)

    @property
    def invalid_number(self) -> bool:
        """The recipient's number cannot receive SMS."""
        return self.code in INVALID_NUMBER_CODES
