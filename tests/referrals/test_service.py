"""The referral service: joins, codes, the redeem rules of SPEC §4, enrolment, the event log."""

from __future__ import annotations

import sqlite3

import pytest

from referrals import codes, stats
from referrals.errors import CampaignError, CodeRejected
from referrals.models import Participant
from referrals.service import MAX_FAILED_CODES, ReferralService
from referrals.store import Database


@pytest.fixture
def service(tmp_db: Database) -> ReferralService:
    return ReferralService(tmp_db)


async def member(
    service: ReferralService, name: str, referrer: Participant | None = None
) -> Participant:
    """A member who joined (through ``referrer``'s personal invite when given)."""
    result = await service.join(
        f"id-{name}", name, referrer_id=referrer.id if referrer else None, channel="discord_invite"
    )
    assert result.new
    return result.participant


async def events(db: Database, kind: str | None = None) -> list[tuple[str, int | None, int | None]]:
    sql = "SELECT kind, participant_id, other_id FROM events"
    rows = await db.fetchall(
        sql + (" WHERE kind = ?" if kind else "") + " ORDER BY id", (kind,) if kind else ()
    )
    return [tuple(row) for row in rows]


def wrong_code(service_code: str) -> str:
    """A well-shaped personal code that no one owns (its check symbol is right)."""
    data = "".join("Z" if c != "Z" else "Y" for c in service_code[:7])
    return codes.format_code(data + codes.check_symbol(data))


async def test_organic_join_is_a_seed(service: ReferralService) -> None:
    alice = await member(service, "alice")
    assert (alice.wave, alice.root_id, alice.referrer_id, alice.has_source) == (
        0,
        alice.id,
        None,
        False,
    )


async def test_join_through_a_link_records_the_referrer(service: ReferralService) -> None:
    alice = await member(service, "alice")
    await service.add_link("inv-alice", "discord_invite", participant_id=alice.id)
    result = await service.join("id-bob", "bob", link_code="inv-alice")
    bob = result.participant
    assert result.new and result.referrer is not None and result.referrer.id == alice.id
    assert (bob.referrer_id, bob.wave, bob.root_id, bob.channel) == (
        alice.id,
        1,
        alice.id,
        "discord_invite",
    )
    row = await service.db.fetchone("SELECT uses FROM links WHERE code = 'inv-alice'")
    assert row[0] == 1


async def test_rejoin_is_not_a_new_referral(service: ReferralService) -> None:
    alice = await member(service, "alice")
    carol = await member(service, "carol")
    bob = await member(service, "bob", referrer=alice)
    again = await service.join("id-bob", "bob", referrer_id=carol.id)
    assert not again.new and again.referrer is None
    after = await service.participant(bob.id)
    assert (after.referrer_id, after.wave, after.root_id) == (alice.id, 1, alice.id)
    assert (await service.db.fetchone("SELECT COUNT(*) FROM participants"))[0] == 3
    assert ("rejoined", bob.id, None) in await events(service.db, "rejoined")


async def test_redeem_a_peer_code(service: ReferralService) -> None:
    alice = await member(service, "alice")
    bob = await member(service, "bob")
    code = await service.personal_code(alice.id)
    assert await service.personal_code(alice.id) == code  # created once
    result = await service.redeem(bob.id, codes.format_code(code).lower())
    assert result.referrer is not None and result.referrer.id == alice.id
    bob = await service.participant(bob.id)
    assert (bob.referrer_id, bob.wave, bob.root_id, bob.channel) == (alice.id, 1, alice.id, "code")
    assert bob.source_set_at is not None
    assert ("source_set", bob.id, alice.id) in await events(service.db, "source_set")


async def test_own_code_is_refused(service: ReferralService) -> None:
    alice = await member(service, "alice")
    code = await service.personal_code(alice.id)
    with pytest.raises(CodeRejected) as caught:
        await service.redeem(alice.id, code)
    assert caught.value.key == "code.own"
    assert not (await service.participant(alice.id)).has_source


async def test_second_source_is_refused(service: ReferralService) -> None:
    alice, carol = await member(service, "alice"), await member(service, "carol")
    bob = await member(service, "bob", referrer=alice)
    with pytest.raises(CodeRejected) as caught:
        await service.redeem(bob.id, await service.personal_code(carol.id))
    assert caught.value.key == "code.already_has_source"
    assert (await service.participant(bob.id)).referrer_id == alice.id


async def test_source_from_a_campaign_is_final_too(service: ReferralService) -> None:
    alice, bob = await member(service, "alice"), await member(service, "bob")
    await service.create_campaign("VAN-NANTES")
    await service.redeem(bob.id, "van-nantes")
    with pytest.raises(CodeRejected) as caught:
        await service.redeem(bob.id, await service.personal_code(alice.id))
    assert caught.value.key == "code.already_has_source"


@pytest.mark.parametrize("depth", [1, 2, 3])
async def test_code_of_someone_the_redeemer_brought_in_is_refused(
    service: ReferralService, depth: int
) -> None:
    seed = await member(service, "seed")
    owner = seed
    for level in range(depth):
        owner = await member(service, f"r{level}", referrer=owner)
    with pytest.raises(CodeRejected) as caught:
        await service.redeem(seed.id, await service.personal_code(owner.id))
    assert caught.value.key == "code.cycle"
    assert not (await service.participant(seed.id)).has_source


async def test_code_from_another_tree_is_accepted_for_a_seed_with_recruits(
    service: ReferralService,
) -> None:
    # b is an organic seed with b -> c -> d and b -> e; x is at wave 2 of r's tree.
    r = await member(service, "r")
    x = await member(service, "x", referrer=await member(service, "q", referrer=r))
    b = await member(service, "b")
    c = await member(service, "c", referrer=b)
    d = await member(service, "d", referrer=c)
    e = await member(service, "e", referrer=b)
    other = await member(service, "other")
    await service.redeem(b.id, await service.personal_code(x.id))
    placed = {p: await service.participant(p.id) for p in (b, c, d, e, other, x)}
    assert [(placed[p].wave, placed[p].root_id) for p in (b, c, d, e)] == [
        (3, r.id),
        (4, r.id),
        (5, r.id),
        (4, r.id),
    ]
    assert (placed[other].wave, placed[other].root_id) == (0, other.id)
    assert (placed[x].wave, placed[x].root_id) == (2, r.id)
    figures = await service.db.read(stats.compute)
    assert figures["largest_tree"] == 7
    assert figures["waves"] == [2, 1, 1, 1, 2, 1]
    # The stored referral delay follows the new source (it feeds the median delay).
    row = await service.db.fetchone(
        "SELECT referral_delay_s FROM participants WHERE id = ?", (b.id,)
    )
    assert row[0] is not None and row[0] >= 0


async def test_campaign_code_sets_channel_and_campaign(service: ReferralService) -> None:
    campaign = await service.create_campaign("van-nantes", channel="van")
    assert campaign.code == "VAN-NANTES"
    bob = await member(service, "bob")
    result = await service.redeem(bob.id, "  Van-Nantes ")
    assert result.campaign is not None and result.referrer is None
    bob = await service.participant(bob.id)
    assert (bob.channel, bob.campaign_id, bob.referrer_id) == (
        "campaign:VAN-NANTES",
        campaign.id,
        None,
    )
    assert (bob.wave, bob.root_id) == (0, bob.id)
    chain = await service.chain(bob.id)
    assert chain.campaign is not None and chain.campaign.code == "VAN-NANTES"


async def test_campaign_creation_rules(service: ReferralService) -> None:
    await service.create_campaign("TIKTOK-1")
    with pytest.raises(CampaignError) as caught:
        await service.create_campaign("tiktok-1")
    assert caught.value.key == "campaign.exists"
    with pytest.raises(CampaignError) as caught:
        await service.create_campaign("a b")
    assert caught.value.key == "campaign.malformed"


async def test_lock_after_five_wrong_codes_and_not_before(service: ReferralService) -> None:
    alice, bob = await member(service, "alice"), await member(service, "bob")
    good = await service.personal_code(alice.id)
    bad = wrong_code(good)
    for attempt in range(1, MAX_FAILED_CODES):
        with pytest.raises(CodeRejected) as caught:
            await service.redeem(bob.id, bad)
        assert caught.value.key == "code.unknown"
        assert caught.value.params["left"] == MAX_FAILED_CODES - attempt
    # Four wrong codes: not locked yet, a right code still works.
    result = await service.redeem(bob.id, good)
    assert result.referrer is not None and result.referrer.id == alice.id


async def test_fifth_wrong_code_locks_even_a_right_one(service: ReferralService) -> None:
    alice, bob = await member(service, "alice"), await member(service, "bob")
    good = await service.personal_code(alice.id)
    for _ in range(MAX_FAILED_CODES - 1):
        with pytest.raises(CodeRejected):
            await service.redeem(bob.id, "NOPE-NOPE")
    with pytest.raises(CodeRejected) as caught:
        await service.redeem(bob.id, "NOPE-NOPE")
    assert caught.value.key == "code.locked_now"
    with pytest.raises(CodeRejected) as caught:
        await service.redeem(bob.id, good)
    assert caught.value.key == "code.locked"
    assert not (await service.participant(bob.id)).has_source
    kinds = [kind for kind, who, _ in await events(service.db) if who == bob.id]
    assert kinds.count("code_failed") == MAX_FAILED_CODES
    assert kinds.count("code_locked") == 1


async def test_lock_expires(service: ReferralService) -> None:
    alice, bob = await member(service, "alice"), await member(service, "bob")
    good = await service.personal_code(alice.id)
    for _ in range(MAX_FAILED_CODES):
        with pytest.raises(CodeRejected):
            await service.redeem(bob.id, "NOPE-NOPE")
    await service.db.write(
        lambda conn: conn.execute(
            "UPDATE participants SET code_locked_until = '2000-01-01T00:00:00+00:00'"
        )
    )
    assert (await service.redeem(bob.id, good)).referrer is not None


async def test_enrolment_keeps_the_first_date(service: ReferralService) -> None:
    alice = await member(service, "alice")
    first = await service.enrol(alice.id, at="2026-02-01T10:00:00+00:00")
    again = await service.enrol(alice.id, at="2026-03-01T10:00:00+00:00")
    assert first.enrolled_at == again.enrolled_at == "2026-02-01T10:00:00+00:00"
    assert await events(service.db, "enrolled") == [("enrolled", alice.id, None)]


async def test_event_log_is_appended_in_order(service: ReferralService) -> None:
    alice = await member(service, "alice")
    bob = await member(service, "bob")
    code = await service.personal_code(alice.id)
    await service.redeem(bob.id, code)
    await service.enrol(bob.id)
    await service.event("faq_asked", bob.id, entry="cej")
    assert await events(service.db) == [
        ("joined", alice.id, None),
        ("joined", bob.id, None),
        ("code_created", alice.id, None),
        ("source_set", bob.id, alice.id),
        ("enrolled", bob.id, None),
        ("faq_asked", bob.id, None),
    ]
    data = await service.db.fetchone("SELECT data FROM events WHERE kind = 'faq_asked'")
    assert data[0] == '{"entry": "cej"}'


async def test_event_log_is_not_rewritten_by_a_failed_transaction(service: ReferralService) -> None:
    alice = await member(service, "alice")
    before = await events(service.db)

    def fails(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO events (at, kind, participant_id) VALUES ('x', 'ghost', ?)", (alice.id,)
        )
        raise RuntimeError("rollback")

    with pytest.raises(RuntimeError):
        await service.db.write(fails)
    assert await events(service.db) == before


async def test_chain_of_a_participant(service: ReferralService) -> None:
    a = await member(service, "a")
    b = await member(service, "b", referrer=a)
    c = await member(service, "c", referrer=b)
    d = await member(service, "d", referrer=b)
    chain = await service.chain(b.id)
    assert [p.id for p in chain.ancestors] == [a.id]
    assert [p.id for p in chain.recruits] == [c.id, d.id]
    assert chain.subtree_size == 3
    assert [p.id for p in (await service.chain(c.id)).ancestors] == [b.id, a.id]


async def test_find_by_code_ref_and_name(service: ReferralService) -> None:
    alice = await member(service, "Alice")
    code = await service.personal_code(alice.id)
    assert (await service.find(codes.format_code(code).lower())).id == alice.id
    assert (await service.find(alice.ref)).id == alice.id
    assert (await service.find("@alice")).id == alice.id
    assert await service.find("nobody") is None


async def test_ensure_member_writes_only_for_a_new_or_renamed_member(
    service: ReferralService, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[object] = []
    write = service.db.write

    async def counting(fn: object, *args: object, **kwargs: object) -> object:
        writes.append(fn)
        return await write(fn, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service.db, "write", counting)
    first, created = await service.ensure_member("42", "Lina")
    assert created and len(writes) == 1
    again, created = await service.ensure_member("42", "Lina")
    assert not created and again == first and len(writes) == 1  # read only
    renamed, created = await service.ensure_member("42", "Lina B.")
    assert not created and renamed.id == first.id and renamed.display_name == "Lina B."
    assert len(writes) == 2
    assert (await service.ensure_member("42", "Lina B."))[0].display_name == "Lina B."
    assert len(writes) == 2
