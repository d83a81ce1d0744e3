"""Join attribution: the pure comparison (the joins themselves are driven through the gateway in
``test_gateway_joins``)."""

from __future__ import annotations

from bot.discord_join import Attribution, InviteLedger, InviteUse, used_invites

# ---------------------------------------------------------------- the pure comparison


def ledger(*invites: InviteUse, vanity: int | None = None) -> InviteLedger:
    book = InviteLedger()
    book.load(invites, vanity)
    return book


def test_one_invite_up_is_certain_none_up_is_unknown() -> None:
    book = ledger(InviteUse("a", 3), InviteUse("b", 0))
    assert book.joined([InviteUse("a", 4), InviteUse("b", 0)], None, 0) == Attribution(
        "certain", ("a",)
    )
    assert book.joined([InviteUse("a", 4), InviteUse("b", 0)], None, 1) == Attribution("unknown")


def test_two_joins_on_different_invites_seen_at_once_are_both_ambiguous() -> None:
    book = ledger(InviteUse("a", 0), InviteUse("b", 0))
    fresh = [InviteUse("a", 1), InviteUse("b", 1)]
    first = book.joined(fresh, None, 0)
    second = book.joined(fresh, None, 0.1)  # no change since: matched with the pool
    assert first == second == Attribution("ambiguous", ("a", "b"))
    assert book.joined(fresh, None, 0.2) == Attribution("unknown")  # pool used up


def test_two_joins_on_the_same_invite_are_both_certain() -> None:
    book = ledger(InviteUse("a", 0))
    fresh = [InviteUse("a", 2)]
    assert book.joined(fresh, None, 0) == Attribution("certain", ("a",))
    assert book.joined(fresh, None, 0.1) == Attribution("certain", ("a",))


def test_vanity_url() -> None:
    book = ledger(InviteUse("a", 0), vanity=10)
    assert book.joined([InviteUse("a", 0)], 11, 0) == Attribution("vanity")


def test_invite_deleted_on_its_last_use() -> None:
    assert used_invites({"a": InviteUse("a", 4, 5)}, {}) == {"a": 1}
    assert used_invites({"a": InviteUse("a", 2, 5)}, {}) == {}  # deleted by hand: not a use
    book = ledger(InviteUse("a", 4, 5), InviteUse("b", 1))
    assert book.joined([InviteUse("b", 1)], None, 0) == Attribution("certain", ("a",))
    # The delete event may arrive before the join event.
    book = ledger(InviteUse("a", 4, 5), InviteUse("b", 1))
    book.deleted("a", 0)
    assert book.joined([InviteUse("b", 1)], None, 0.1) == Attribution("certain", ("a",))


def test_unmatched_uses_expire() -> None:
    book = ledger(InviteUse("a", 0), InviteUse("b", 0))
    book.joined([InviteUse("a", 1), InviteUse("b", 1)], None, 0)
    late = book.joined([InviteUse("a", 1), InviteUse("b", 1)], None, 1000)
    assert late == Attribution("unknown")


def test_new_invite_used_before_its_create_event() -> None:
    book = ledger()
    assert book.joined([InviteUse("n", 1)], None, 0) == Attribution("certain", ("n",))


def test_a_join_on_an_unloaded_cache_is_unknown_and_sets_the_baseline() -> None:
    book = InviteLedger()  # nothing loaded yet: every invite ever used would look used now
    assert book.joined([InviteUse("a", 7), InviteUse("b", 3)], None, 0) == Attribution("unknown")
    assert book.joined([InviteUse("a", 8), InviteUse("b", 3)], None, 1) == Attribution(
        "certain", ("a",)
    )


def test_loading_forgets_unmatched_uses() -> None:
    book = ledger(InviteUse("a", 0), InviteUse("b", 0))
    book.joined([InviteUse("a", 1), InviteUse("b", 1)], None, 0)  # one use left in the pool
    book.load([InviteUse("a", 1), InviteUse("b", 1), InviteUse("c", 0)])
    assert book.joined([InviteUse("a", 1), InviteUse("b", 1), InviteUse("c", 1)], None, 1) == (
        Attribution("certain", ("c",))
    )


def test_the_ambiguity_window_does_not_slide_with_each_join() -> None:
    book = ledger(InviteUse("a", 0), InviteUse("b", 0), InviteUse("c", 0))
    book.joined([InviteUse("a", 1), InviteUse("b", 1)], None, 0)  # ambiguous, one left over
    # A steady trickle of joins, each through c, every 100 s: the old use still expires at 120 s.
    assert book.joined([InviteUse("a", 1), InviteUse("b", 1), InviteUse("c", 1)], None, 100) == (
        Attribution("ambiguous", ("a", "b", "c"))
    )
    assert book.joined([InviteUse("a", 1), InviteUse("b", 1), InviteUse("c", 2)], None, 200) == (
        Attribution("certain", ("c",))
    )


def test_a_failed_fetch_unloads_the_cache() -> None:
    book = ledger(InviteUse("a", 0))
    book.unload()  # the join whose fetch failed used "a"; the next join must not get it
    assert book.joined([InviteUse("a", 2)], None, 0) == Attribution("unknown")
