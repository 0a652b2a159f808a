"""The contact gate in the service layer, with the real built-in rule packs.

Jane (conftest) lives in Chicago, jurisdiction US-IL, so ``us_reg_f`` judges her
accounts.  The clock starts at 2026-03-02 14:00 UTC = 08:00 in Chicago.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from conftest import JANE, START, placement, usd

from bootstrap import build_service
from ledger import errors
from ledger.clock import MovableClock
from ledger.domain.account import Account
from ledger.services import DebtorDetails, LedgerService
from plugins import Verdict, hookimpl
from plugins.gate import PackMap
from plugins.manager import build_plugin_manager

CHICAGO = ZoneInfo("America/Chicago")


def chicago(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHICAGO).astimezone(UTC)  # type: ignore[misc]


def open_gate(tmp_path: Any, clock: MovableClock, *extra: tuple[str, object]) -> LedgerService:
    pm = build_plugin_manager(entry_points=False, disabled=(), extra=extra)
    return build_service(f"sqlite:///{tmp_path / 'gate.db'}", clock=clock, plugins=pm, config={})


@pytest.fixture
def svc(tmp_path: Any, clock: MovableClock) -> Iterator[LedgerService]:
    service = open_gate(tmp_path, clock)
    yield service
    service.ledger.close()


@pytest.fixture
def aid(svc: LedgerService) -> UUID:
    return svc.place_account(placement(), debtor=JANE).id


def events(svc: LedgerService, aid: UUID, kind: type[Any]) -> list[Any]:
    return [e for e in svc.ledger.events.get(aid) if isinstance(e, kind)]


def rules(decision: Any, outcome: str = "block") -> set[str]:
    return {v.rule for v in decision.verdicts if v.outcome == outcome}


# ------------------------------------------------------------------ check_contact


def test_check_contact_lists_every_verdict_and_blocks_at_nine_pm(
    svc: LedgerService, aid: UUID
) -> None:
    """20:59 in Chicago is allowed with every rule's verdict listed; 21:00 is blocked."""
    ok = svc.check_contact(aid, "sms", at=chicago(2026, 3, 2, 20, 59))
    assert ok.allowed
    assert "us_reg_f.inconvenient_time" in rules(ok, "allow")
    assert all(v.citation for v in ok.verdicts) and len(ok.verdicts) >= 6
    late = svc.check_contact(aid, "sms", at=chicago(2026, 3, 2, 21, 0))
    assert not late.allowed
    assert rules(late) == {"us_reg_f.inconvenient_time"}
    assert late.as_dict()["verdicts"][0].keys() == {
        "rule",
        "version",
        "outcome",
        "reason",
        "citation",
    }
    assert events(svc, aid, Account.ContactBlocked) == []  # a check records nothing


def test_recorded_calls_count_towards_the_seven_in_seven_days(
    svc: LedgerService, aid: UUID, clock: MovableClock
) -> None:
    """Seven unanswered calls recorded over a week: the gate blocks the 8th."""
    for day in range(7):
        clock.set(chicago(2026, 3, 2 + day, 10, 0))
        svc.record_contact(aid, channel="phone", direction="outbound", outcome="no_answer")
    clock.set(chicago(2026, 3, 8, 15, 0))
    decision = svc.check_contact(aid, "phone")
    assert rules(decision) == {"us_reg_f.call_frequency"}
    assert svc.check_contact(aid, "phone", at=chicago(2026, 3, 9, 10, 1)).allowed


# --------------------------------------------------------------- request_message


def test_blocked_message_is_refused_and_the_refusal_is_recorded(
    svc: LedgerService, aid: UUID, clock: MovableClock
) -> None:
    svc.receive_cease(aid, received_via="letter")
    with pytest.raises(errors.ContactBlocked) as caught:
        svc.request_message(aid, channel="email", template="reminder")
    assert caught.value.code == "contact_blocked"
    blocking = [v for v in caught.value.details["verdicts"] if v["outcome"] == "block"]
    assert [v["rule"] for v in blocking] == ["us_reg_f.cease_communication"]
    [blocked] = events(svc, aid, Account.ContactBlocked)
    assert blocked.channel == "email" and blocked.purpose == "collection"
    assert {(v["rule"], v["version"]) for v in blocked.verdicts if v["outcome"] == "block"} == {
        ("us_reg_f.cease_communication", "1")
    }
    assert events(svc, aid, Account.MessageQueued) == []
    # The notice the law still allows goes through.
    queued = svc.request_message(aid, channel="letter", template="x", purpose="remedy_notice")
    assert queued.status == "queued"


def test_allowed_message_is_queued_once_per_message_id(svc: LedgerService, aid: UUID) -> None:
    first = svc.request_message(aid, channel="sms", template="reminder", message_id="m-1")
    again = svc.request_message(aid, channel="sms", template="reminder", message_id="m-1")
    assert (first.message_id, first.status) == ("m-1", "queued")
    assert again.message_id == "m-1"
    [queued] = events(svc, aid, Account.MessageQueued)
    assert (queued.channel, queued.template, queued.locale) == ("sms", "reminder", "en-US")


# --------------------------------------------------------- after-the-fact contacts


def test_contact_after_the_fact_that_broke_a_rule_is_kept_and_flagged(
    svc: LedgerService, aid: UUID, clock: MovableClock
) -> None:
    """A desk-phone call at 21:30 Chicago time, logged next morning: recorded, flagged."""
    clock.set(chicago(2026, 3, 3, 9, 0))
    result = svc.record_contact(
        aid,
        channel="phone",
        direction="outbound",
        outcome="no_answer",
        occurred_at=chicago(2026, 3, 2, 21, 30),
    )
    assert [v.rule for v in result.violations] == ["us_reg_f.inconvenient_time"]
    [flag] = events(svc, aid, Account.ContactViolationFlagged)
    assert flag.contact_id == result.contact_id
    assert flag.verdicts[0]["citation"] == "12 CFR 1006.6(b)(1)(i)"
    assert svc.get_account(aid).contact_count == 1


def test_inbound_and_lawful_contacts_are_not_flagged(
    svc: LedgerService, aid: UUID, clock: MovableClock
) -> None:
    clock.set(chicago(2026, 3, 3, 9, 0))
    inbound = svc.record_contact(
        aid,
        channel="phone",
        direction="inbound",
        outcome="right_party_contact",
        occurred_at=chicago(2026, 3, 2, 22, 30),
        note="debtor called back late",
    )
    lawful = svc.record_contact(
        aid,
        channel="phone",
        direction="outbound",
        outcome="no_answer",
        occurred_at=chicago(2026, 3, 2, 12, 0),
    )
    assert inbound.violations == () and lawful.violations == ()
    assert events(svc, aid, Account.ContactViolationFlagged) == []
    assert svc.get_account(aid).note_count == 1


# ------------------------------------------------------------ rules fail closed


class Crashing:
    @hookimpl
    def arrears_contact_rules(self, channel: str) -> Sequence[Verdict]:
        raise RuntimeError("holiday calendar unavailable for Jane Q. Debtor")


class Garbage:
    @hookimpl
    def arrears_contact_rules(self) -> Any:
        return "allow"


@pytest.mark.parametrize(
    ("plugin", "name", "why"),
    [(Crashing(), "calendar", "RuntimeError"), (Garbage(), "garbage", "not a list")],
)
def test_a_broken_rule_blocks_and_names_itself(
    tmp_path: Any, clock: MovableClock, plugin: object, name: str, why: str
) -> None:
    svc = open_gate(tmp_path, clock, (name, plugin))
    try:
        aid = svc.place_account(placement(), debtor=JANE).id
        decision = svc.check_contact(aid, "sms")
        assert not decision.allowed
        [crash] = decision.blocking
        assert crash.rule == f"{name}.crashed" and name in crash.reason and why in crash.reason
        assert "Jane" not in crash.reason  # the exception's text may quote the debtor
        with pytest.raises(errors.ContactBlocked):
            svc.request_message(aid, channel="sms", template="t")
        # The ledger is intact: the refusal is recorded, nothing else, and it replays.
        assert len(events(svc, aid, Account.ContactBlocked)) == 1
        assert svc.verify().ok
    finally:
        svc.ledger.close()


# -------------------------------------------------------------- pack selection


class FakeCnPack:
    RULE_PACK = "cn_fake"

    @hookimpl
    def arrears_contact_rules(self) -> Sequence[Verdict]:
        return [Verdict("block", "cn_fake.always", "1", "fake pack", "test")]


class Policy:
    """No ``RULE_PACK``: judges every account."""

    @hookimpl
    def arrears_contact_rules(self, account: Any) -> Sequence[Verdict]:
        return [Verdict("allow", "policy.seen", "1", account["creditor"], "creditor policy")]


def test_packs_are_chosen_per_account_by_the_debtors_jurisdiction(
    tmp_path: Any, clock: MovableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARREARS_RULE_PACKS", "US=us_reg_f;CN=cn_fake;unknown=us_reg_f")
    svc = open_gate(tmp_path, clock, ("fake", FakeCnPack()), ("policy", Policy()))
    try:
        us = svc.place_account(placement("US-1"), debtor=JANE).id
        cn_debtor = DebtorDetails(name="Li Wei", time_zone="Asia/Shanghai", jurisdiction="CN")
        cn = svc.place_account(placement("CN-1"), debtor=cn_debtor).id
        us_rules = {v.rule.split(".")[0] for v in svc.check_contact(us, "sms").verdicts}
        cn_rules = {v.rule.split(".")[0] for v in svc.check_contact(cn, "sms").verdicts}
        assert us_rules == {"us_reg_f", "policy"}
        assert cn_rules == {"cn_fake", "policy"}
    finally:
        svc.ledger.close()


def test_pack_map_falls_back_by_prefix_and_reads_config() -> None:
    default = PackMap()
    assert default.for_jurisdiction("US-IL") == ("us_reg_f",)
    assert default.for_jurisdiction(None) == ("us_reg_f",)
    assert default.for_jurisdiction("GB-SCT") == ("uk_conc",)
    assert default.for_jurisdiction("FR") == ()
    configured = PackMap.from_config({"FR": ["fr_pack"], "US-CA": ["us_reg_f", "ca_rosenthal"]})
    assert configured.for_jurisdiction("fr") == ("fr_pack",)
    assert configured.for_jurisdiction("US-CA") == ("us_reg_f", "ca_rosenthal")
    assert configured.for_jurisdiction("US-NY") == ("us_reg_f",)
    with pytest.raises(ValueError, match="JURISDICTION=pack"):
        PackMap.parse("US")


@pytest.mark.parametrize(
    ("config", "env", "message"),
    [
        ({"rule_packs": {"CN": ["cn_colection"]}}, None, "'cn_colection'"),
        ({}, "US=us_reg_f;CN=nopack", "'nopack'"),
        ({}, "garbage", "JURISDICTION=pack"),
    ],
)
def test_a_rule_pack_that_cannot_be_honoured_stops_start_up(
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    config: dict[str, Any],
    env: str | None,
    message: str,
) -> None:
    """A mistyped pack would judge its accounts by no rules: start-up refuses, naming it."""
    if env is not None:
        monkeypatch.setenv("ARREARS_RULE_PACKS", env)
    pm = build_plugin_manager(entry_points=False, disabled=())
    with pytest.raises(SystemExit) as stopped:
        build_service(f"sqlite:///{tmp_path / 'a.db'}", plugins=pm, config=config)
    assert str(stopped.value).startswith("error: ") and message in str(stopped.value)
    assert "cn_collection" in str(stopped.value) or "JURISDICTION" in message


# ---------------------------------------------------------- referral and time bar


def test_referral_of_a_time_barred_debt_is_refused_by_the_rule_pack(
    svc: LedgerService, aid: UUID, clock: MovableClock
) -> None:
    svc.set_limitation_date(aid, date(2026, 3, 1), basis="IL 5-year written contract")
    with pytest.raises(errors.ContactBlocked, match="time-barred"):
        svc.refer_to_law_firm(aid, "Dewey & Co")
    assert svc.get_account(aid).law_firm is None
    assert len(events(svc, aid, Account.ContactBlocked)) == 1
    other = svc.place_account(placement("ACC-2"), debtor=JANE).id
    svc.set_limitation_date(other, date(2026, 3, 3), basis="IL 5-year written contract")
    # Dated after the bar, a referral would escape a check made today: refused.
    with pytest.raises(errors.InvalidDate, match="future"):
        svc.refer_to_law_firm(other, "Dewey & Co", referred_on=date(2031, 6, 1))
    assert svc.refer_to_law_firm(other, "Dewey & Co").law_firm is not None


# ------------------------------------------------------------------ breathing space


def test_breathing_space_freezes_interest_and_fees_for_sixty_days(
    svc: LedgerService, aid: UUID, clock: MovableClock
) -> None:
    svc.start_breathing_space(aid, kind="standard", started_on=date(2026, 3, 2), reference="BS1")
    with pytest.raises(errors.BreathingSpaceActive):
        svc.accrue_interest(aid, usd("5.00"))
    with pytest.raises(errors.BreathingSpaceActive):
        svc.assess_fee(aid, usd("5.00"), "late")
    clock.set(datetime(2026, 5, 1, 12, tzinfo=UTC))  # day 61 is the last: 2026-05-01
    with pytest.raises(errors.BreathingSpaceActive):
        svc.accrue_interest(aid, usd("5.00"))
    clock.set(datetime(2026, 5, 2, 0, 0, tzinfo=UTC))
    assert svc.accrue_interest(aid, usd("5.00")).balance["interest"] == 155_00


def test_crisis_breathing_space_lasts_until_thirty_days_after_treatment(
    svc: LedgerService, aid: UUID, clock: MovableClock
) -> None:
    svc.start_breathing_space(
        aid, kind="mental_health", started_on=date(2026, 3, 2), reference="MH1"
    )
    clock.advance(timedelta(days=400))
    with pytest.raises(errors.BreathingSpaceActive):
        svc.assess_fee(aid, usd("1.00"), "late")
    account = svc.end_crisis_treatment(aid, date(2027, 4, 1))
    assert account.breathing_space is not None
    assert account.breathing_space["ends_on"] == date(2027, 5, 1)


def test_check_contact_takes_the_account_channel_moment_and_purpose_in_order(
    svc: LedgerService, aid: UUID
) -> None:
    """``check_contact(account, channel, at, purpose)``: by id, reference or the account."""
    late = chicago(2026, 3, 2, 21, 30)
    for account in (aid, "acme-bank/ACC-0001", "ACC-0001", svc.get_account(aid)):
        decision = svc.check_contact(account, "letter", late, "collection")
        assert decision.allowed and decision.purpose == "collection"
    assert not svc.check_contact(aid, "sms", late, "collection").allowed
    referral = svc.check_contact(aid, "letter", late, "legal_referral")
    assert referral.allowed and referral.at == late


def test_pack_numbers_come_from_the_config_file(tmp_path: Any, clock: MovableClock) -> None:
    """``[rule_pack_parameters.cn_collection]``: 2 unanswered calls a day, quiet from 21:00."""
    from plugins.builtin import cn_collection

    shanghai = ZoneInfo("Asia/Shanghai")
    config = {
        "rule_pack_parameters": {
            "cn_collection": {"max_unanswered_calls_per_day": 2, "quiet_start": "21:00"}
        }
    }
    pm = build_plugin_manager(entry_points=False, disabled=())
    svc = build_service(f"sqlite:///{tmp_path / 'cn.db'}", clock=clock, plugins=pm, config=config)
    try:
        li = DebtorDetails(name="Li Wei", time_zone="Asia/Shanghai", jurisdiction="CN")
        aid = svc.place_account(placement("CN-1"), debtor=li).id
        day = datetime(2026, 3, 3, 10, tzinfo=shanghai)
        clock.set((day + timedelta(hours=2)).astimezone(UTC))
        for minutes in (0, 30):
            svc.record_contact(
                aid,
                channel="phone",
                direction="outbound",
                outcome="no_answer",
                occurred_at=(day + timedelta(minutes=minutes)).astimezone(UTC),
            )
        third = svc.check_contact(aid, "phone", (day + timedelta(hours=1)).astimezone(UTC))
        assert rules(third) == {"cn_collection.unanswered_calls"}
        evening = svc.check_contact(aid, "sms", datetime(2026, 3, 3, 21, 30, tzinfo=shanghai))
        assert rules(evening) == {"cn_collection.quiet_hours"}
    finally:
        svc.ledger.close()
        cn_collection.configure()  # back to the guideline's numbers for other tests
    assert cn_collection.active_parameters().max_unanswered_calls_per_day == 6
    with pytest.raises(SystemExit, match="no loaded rule pack 'fr_pack'"):
        build_service(
            f"sqlite:///{tmp_path / 'x.db'}",
            plugins=pm,
            config={"rule_pack_parameters": {"fr_pack": {"x": 1}}},
        )
    with pytest.raises(SystemExit, match="max_unanswered"):
        build_service(
            f"sqlite:///{tmp_path / 'y.db'}",
            plugins=pm,
            config={"rule_pack_parameters": {"cn_collection": {"max_unanswered": 1}}},
        )
    cn_collection.configure()
