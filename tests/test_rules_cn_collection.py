"""The built-in `cn_collection` rule pack (China collection guideline) at its boundaries."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from plugins import Verdict
from plugins.builtin import cn_collection
from plugins.manager import build_plugin_manager

SHANGHAI = ZoneInfo("Asia/Shanghai")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
SH_DEBTOR: dict[str, Any] = {"time_zone": "Asia/Shanghai", "jurisdiction": "CN"}
LA_DEBTOR: dict[str, Any] = {"time_zone": "America/Los_Angeles", "jurisdiction": "CN"}


def sh(*args: int) -> datetime:
    """A Shanghai wall-clock time, as the UTC moment the gate passes."""
    return datetime(*args, tzinfo=SHANGHAI).astimezone(UTC)  # type: ignore[misc]


def la(*args: int) -> datetime:
    """A Los Angeles wall-clock time, as the UTC moment the gate passes."""
    return datetime(*args, tzinfo=LOS_ANGELES).astimezone(UTC)  # type: ignore[misc]


AT = sh(2026, 4, 15, 14, 0)


def judge(
    account: Mapping[str, Any] | None = None,
    debtor: Mapping[str, Any] | None = None,
    channel: str = "phone",
    purpose: str = "collection",
    at: datetime | None = None,
    party: str = "debtor",
    to: str | None = "phone:0",
) -> list[Verdict]:
    return list(
        cn_collection.arrears_contact_rules(
            account=account or {},
            debtor=SH_DEBTOR if debtor is None else debtor,
            channel=channel,
            purpose=purpose,
            at=at or AT,
            party=party,
            to=to,
        )
    )


def outcome(verdicts: Sequence[Verdict], rule: str) -> str | None:
    found = [v.outcome for v in verdicts if v.rule_id == f"cn_collection.{rule}"]
    assert len(found) <= 1
    return found[0] if found else None


def call(
    at: datetime,
    outcome: str = "no_answer",
    to: str | None = "phone:0",
    direction: str = "outbound",
    channel: str = "phone",
) -> dict[str, Any]:
    return {
        "channel": channel,
        "direction": direction,
        "outcome": outcome,
        "occurred_at": at,
        "to": to,
        "party": "debtor",
    }


def calls(n: int, **kwargs: Any) -> list[dict[str, Any]]:
    """``n`` calls on the morning of 2026-04-15 in Shanghai, 10 minutes apart."""
    return [call(sh(2026, 4, 15, 9, 10 * i), **kwargs) for i in range(n)]


def window(start: time | None, end: time | None) -> dict[str, Any]:
    return {
        "contact_preferences": {
            "channels": None,
            "refused_channels": [],
            "window_start": start,
            "window_end": end,
        }
    }


@pytest.fixture
def restore_parameters() -> Iterator[None]:
    yield
    cn_collection.configure()


# ------------------------------------------------------------------ quiet hours


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (sh(2026, 4, 15, 21, 59, 59), "allow"),
        (sh(2026, 4, 15, 22, 0, 0), "block"),
        (sh(2026, 4, 16, 7, 59, 59), "block"),
        (sh(2026, 4, 16, 8, 0, 0), "allow"),
    ],
)
def test_quiet_hours_are_2200_inclusive_to_0800_exclusive(at: datetime, expected: str) -> None:
    """22:00:00 and 07:59:59 local are blocked; 21:59:59 and 08:00:00 local are allowed."""
    assert outcome(judge(at=at, channel="sms"), "quiet_hours") == expected


def test_quiet_hours_are_local_not_utc() -> None:
    """23:30 UTC is 07:30 the next morning in Shanghai: blocked; 02:00 UTC is 10:00: allowed."""
    assert outcome(judge(at=datetime(2026, 4, 15, 23, 30, tzinfo=UTC)), "quiet_hours") == "block"
    assert outcome(judge(at=datetime(2026, 4, 16, 2, 0, tzinfo=UTC)), "quiet_hours") == "allow"


@pytest.mark.parametrize("debtor", [{}, {"time_zone": None}, {"time_zone": "Mars/Olympus"}])
def test_unknown_or_invalid_time_zone_means_shanghai(debtor: dict[str, Any]) -> None:
    """Without a usable zone the debtor is taken to be on Beijing time."""
    late = datetime(2026, 4, 15, 14, 30, tzinfo=UTC)  # 22:30 in Shanghai
    day = datetime(2026, 4, 15, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    verdicts = judge(debtor=debtor, at=late)
    assert outcome(verdicts, "quiet_hours") == "block"
    assert "Asia/Shanghai" in next(v.reason for v in verdicts if v.outcome == "block")
    assert outcome(judge(debtor=debtor, at=day), "quiet_hours") == "allow"


def test_several_time_zones_must_all_be_outside_the_quiet_hours() -> None:
    """09:00 in Shanghai but 02:00 in London: blocked; Shanghai alone: allowed."""
    at = sh(2026, 1, 14, 9, 0)
    both = {"time_zones": ["Europe/London"], "time_zone": "Asia/Shanghai"}
    verdicts = judge(debtor=both, at=at)
    assert outcome(verdicts, "quiet_hours") == "block"
    assert "Europe/London" in next(v.reason for v in verdicts if v.outcome == "block")
    assert outcome(judge(at=at), "quiet_hours") == "allow"


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        (datetime(2026, 3, 29, 20, 59, 59, tzinfo=UTC), "allow"),  # 21:59:59 BST
        (datetime(2026, 3, 29, 21, 0, 0, tzinfo=UTC), "block"),  # 22:00:00 BST (21:00 in GMT)
    ],
)
def test_quiet_hours_follow_dst_where_the_debtor_is(utc: datetime, expected: str) -> None:
    """A debtor in London on the day BST starts: 22:00 local is 21:00 UTC."""
    debtor = {"time_zone": "Europe/London", "jurisdiction": "CN"}
    assert outcome(judge(debtor=debtor, at=utc), "quiet_hours") == expected


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (sh(2026, 4, 15, 22, 15), "block"),  # quiet, before the window opens
        (sh(2026, 4, 15, 22, 30), "allow"),  # the window opens
        (sh(2026, 4, 15, 23, 59, 59), "allow"),
        (sh(2026, 4, 16, 0, 0), "allow"),  # across midnight
        (sh(2026, 4, 16, 6, 59, 59), "allow"),
        (sh(2026, 4, 16, 7, 0), "block"),  # the window has closed; still quiet until 08:00
    ],
)
def test_debtors_agreed_window_across_midnight_lifts_the_quiet_hours(
    at: datetime, expected: str
) -> None:
    """A debtor who agreed to 22:30-07:00 may be contacted then, not at 22:15 or 07:00."""
    verdicts = judge(window(time(22, 30), time(7, 0)), at=at)
    assert outcome(verdicts, "quiet_hours") == expected


def test_agreed_window_is_the_debtors_consent_only() -> None:
    """The debtor's window does not cover a call to a guarantor or a third party at 23:00."""
    agreed = window(time(22, 30), time(7, 0))
    at = sh(2026, 4, 15, 23, 0)
    assert outcome(judge(agreed, at=at, party="debtor"), "quiet_hours") == "allow"
    assert outcome(judge(agreed, at=at, party="guarantor"), "quiet_hours") == "block"
    assert outcome(judge(agreed, at=at, party="third_party"), "quiet_hours") == "block"


def test_half_a_window_is_no_consent() -> None:
    """A window with only a start (or only an end) does not lift the quiet hours."""
    at = sh(2026, 4, 15, 23, 0)
    assert outcome(judge(window(time(22, 30), None), at=at), "quiet_hours") == "block"
    assert outcome(judge(window(None, time(7, 0)), at=at), "quiet_hours") == "block"


@pytest.mark.parametrize("channel", ["letter", "legal"])
def test_letters_and_legal_action_are_not_time_gated(channel: str) -> None:
    """A letter queued at night and a legal referral get no quiet-hours verdict."""
    assert outcome(judge(at=sh(2026, 4, 15, 23, 0), channel=channel), "quiet_hours") is None


@pytest.mark.parametrize("channel", ["phone", "voice", "sms", "email", "visit"])
def test_every_communication_channel_is_time_gated(channel: str) -> None:
    """Calls, texts, emails and visits at 23:00 are all blocked."""
    assert outcome(judge(at=sh(2026, 4, 15, 23, 0), channel=channel), "quiet_hours") == "block"


# ------------------------------------------------------------- unanswered calls


def test_sixth_unanswered_call_of_the_day_is_allowed() -> None:
    """Five unanswered attempts today: the 6th is allowed."""
    assert outcome(judge({"contacts": calls(5)}), "unanswered_calls") == "allow"


def test_seventh_unanswered_call_of_the_day_is_blocked() -> None:
    """Six unanswered attempts today: the 7th is blocked."""
    verdicts = judge({"contacts": calls(6)})
    assert outcome(verdicts, "unanswered_calls") == "block"
    assert "6 unanswered" in next(v.reason for v in verdicts if v.outcome == "block")


@pytest.mark.parametrize("unanswered", ["no_answer", "busy", "left_message", "refused", "failed"])
def test_each_unanswered_outcome_counts(unanswered: str) -> None:
    """No answer, busy, voicemail, declined and failed calls are all unanswered attempts."""
    assert outcome(judge({"contacts": calls(6, outcome=unanswered)}), "unanswered_calls") == "block"


@pytest.mark.parametrize("answered", ["right_party_contact", "third_party_contact", "wrong_number"])
def test_answered_calls_do_not_count(answered: str) -> None:
    """Five unanswered plus one answered: the next call is still only the 6th unanswered."""
    contacts = [*calls(5), call(sh(2026, 4, 15, 11, 0), outcome=answered)]
    assert outcome(judge({"contacts": contacts}), "unanswered_calls") == "allow"


def test_unknown_outcome_counts() -> None:
    """A call whose outcome was never recorded counts, the protective choice."""
    contacts = [*calls(5), {**call(sh(2026, 4, 15, 11, 0)), "outcome": None}]
    assert outcome(judge({"contacts": contacts}), "unanswered_calls") == "block"


def test_calls_to_another_number_do_not_count() -> None:
    """Six unanswered calls to phone:1 do not limit calls to phone:0."""
    contacts = calls(6, to="phone:1")
    assert outcome(judge({"contacts": contacts}, to="phone:0"), "unanswered_calls") == "allow"
    assert outcome(judge({"contacts": contacts}, to="phone:1"), "unanswered_calls") == "block"


def test_an_unknown_number_counts_as_the_same_number() -> None:
    """A past call with no `to`, or a proposed call with no `to`, is taken to be the same number."""
    unknown_past = calls(6, to=None)
    assert outcome(judge({"contacts": unknown_past}, to="phone:0"), "unanswered_calls") == "block"
    other = calls(6, to="phone:1")
    assert outcome(judge({"contacts": other}, to=None), "unanswered_calls") == "block"


def test_a_call_on_the_previous_local_day_does_not_count() -> None:
    """In Los Angeles, calls on the evening of 04-14 are on UTC 04-15 but yesterday locally."""
    yesterday = [call(la(2026, 4, 14, 17, 30 + 5 * i)) for i in range(6)]
    assert all(c["occurred_at"].date() == la(2026, 4, 15, 10, 0).date() for c in yesterday)
    account = {"contacts": yesterday}
    assert outcome(judge(account, LA_DEBTOR, at=la(2026, 4, 15, 10, 0)), "unanswered_calls") == (
        "allow"
    )


def test_calls_on_the_same_local_day_count_across_the_utc_date_line() -> None:
    """In Los Angeles, a call at 20:00 on 04-14 (UTC 04-15) counts calls from that morning."""
    morning = [call(la(2026, 4, 14, 9, 10 * i)) for i in range(6)]
    assert all(c["occurred_at"].date() < la(2026, 4, 14, 20, 0).date() for c in morning)
    account = {"contacts": morning}
    assert outcome(judge(account, LA_DEBTOR, at=la(2026, 4, 14, 20, 0)), "unanswered_calls") == (
        "block"
    )


def test_inbound_texts_and_later_contacts_do_not_count() -> None:
    """Inbound calls, texts and contacts at or after `at` are not outbound call attempts."""
    contacts = [
        *calls(5),
        call(sh(2026, 4, 15, 12, 0), direction="inbound"),
        call(sh(2026, 4, 15, 12, 5), channel="sms", outcome="sent"),
        call(AT),
        call(sh(2026, 4, 15, 15, 0)),
    ]
    assert outcome(judge({"contacts": contacts}), "unanswered_calls") == "allow"


def test_call_limit_applies_only_to_telephone() -> None:
    """A text gets no unanswered-calls verdict; `voice` is telephone like `phone`."""
    assert outcome(judge({"contacts": calls(6)}, channel="sms"), "unanswered_calls") is None
    assert outcome(judge({"contacts": calls(6)}, channel="voice"), "unanswered_calls") == "block"


# ------------------------------------------------------------------ third party


def test_third_party_may_only_be_asked_for_contact_details() -> None:
    """A location inquiry is allowed; anything else is blocked: never disclose the debt."""
    allowed = judge(party="third_party", purpose="location_inquiry", to="third_party:0")
    assert outcome(allowed, "third_party") == "allow"
    blocked = judge(party="third_party", purpose="collection", to="third_party:0")
    assert outcome(blocked, "third_party") == "block"
    reason = next(v.reason for v in blocked if v.rule_id == "cn_collection.third_party")
    assert "never be disclosed" in reason


@pytest.mark.parametrize("purpose", ["remedy_notice", "threaten_suit", "validation_notice"])
def test_third_party_gets_no_notices_about_the_debt(purpose: str) -> None:
    """Every purpose but location_inquiry is blocked for a third party, letters included."""
    verdicts = judge(party="third_party", purpose=purpose, channel="letter")
    assert outcome(verdicts, "third_party") == "block"


@pytest.mark.parametrize("party", ["debtor", "guarantor"])
def test_third_party_rule_does_not_apply_to_the_debtor_or_a_guarantor(party: str) -> None:
    """The debtor and a guarantor get no third-party verdict."""
    assert outcome(judge(party=party), "third_party") is None


def test_unknown_party_is_treated_as_a_third_party() -> None:
    """A party the contract does not name is protected like a third party."""
    assert outcome(judge(party="neighbour"), "third_party") == "block"


def test_legal_action_gets_no_third_party_verdict() -> None:
    """The pseudo-channel `legal` is not a communication with the third party."""
    assert outcome(judge(party="third_party", channel="legal"), "third_party") is None


# ------------------------------------------------------------------- parameters


def test_parameters_are_configurable(restore_parameters: None) -> None:
    """configure() changes what the hook uses; configure() with no overrides restores DEFAULTS."""
    contacts = {"contacts": calls(3)}
    assert outcome(judge(contacts), "unanswered_calls") == "allow"
    params = cn_collection.configure(max_unanswered_calls_per_day=3, quiet_start=time(21))
    assert cn_collection.active_parameters() == params
    assert outcome(judge(contacts), "unanswered_calls") == "block"
    assert outcome(judge(at=sh(2026, 4, 15, 21, 30)), "quiet_hours") == "block"
    assert cn_collection.configure() == cn_collection.DEFAULTS
    assert outcome(judge(contacts), "unanswered_calls") == "allow"


def test_judge_is_pure_and_takes_parameters() -> None:
    """judge() uses the parameters it is given, whatever the module's active ones are."""
    strict = cn_collection.CnCollectionParameters(max_unanswered_calls_per_day=0)
    verdicts = cn_collection.judge(
        {}, SH_DEBTOR, "phone", "collection", AT, "debtor", "phone:0", strict
    )
    assert outcome(verdicts, "unanswered_calls") == "block"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"default_time_zone": "Mars/Olympus"}, ValueError),
        ({"max_unanswered_calls_per_day": -1}, ValueError),
        ({"quiet_start": "22:00"}, ValueError),
        ({"quiet_start": time(8)}, ValueError),  # equal to quiet_end: an empty window
        ({"max_calls": 3}, TypeError),
    ],
)
def test_bad_parameters_are_refused(
    overrides: dict[str, Any], error: type[Exception], restore_parameters: None
) -> None:
    """A bad value or an unknown name fails and leaves the active parameters alone."""
    with pytest.raises(error):
        cn_collection.configure(**overrides)
    assert cn_collection.active_parameters() == cn_collection.DEFAULTS


def test_naive_moment_is_refused() -> None:
    """The gate passes aware UTC moments; a naive one is a bug, not a guess."""
    with pytest.raises(ValueError, match="timezone-aware"):
        judge(at=datetime(2026, 4, 15, 14, 0))


# --------------------------------------------------------------- the pack itself


def test_every_verdict_has_rule_id_version_reason_and_citation() -> None:
    """Blocks and allows alike carry cn_collection.<rule>, the version, a reason and a citation."""
    blocked = judge({"contacts": calls(6)}, at=sh(2026, 4, 15, 23, 0), party="neighbour")
    allowed = judge(party="third_party", purpose="location_inquiry")
    for verdicts in (blocked, allowed):
        assert {v.rule_id for v in verdicts} == {
            f"cn_collection.{r}" for r in cn_collection.CITATIONS
        }
    assert {v.outcome for v in blocked} == {"block"}
    assert {v.outcome for v in allowed} == {"allow"}
    for v in blocked + allowed:
        assert v.rule_version == cn_collection.RULE_VERSION and v.reason
        assert v.citation.startswith("China Banking Association collection guideline (2026)")


def test_pack_is_a_built_in_plugin_and_judges_through_the_hook() -> None:
    """`builtin.cn_collection` is registered as a built-in rule pack and answers the hook."""
    pm = build_plugin_manager(entry_points=False, disabled=())
    infos = {i.name: i for i in pm.plugin_infos()}
    assert infos["builtin.cn_collection"].source == "built-in"
    assert infos["builtin.cn_collection"].hooks == ("arrears_contact_rules",)
    assert pm.get_plugin("builtin.cn_collection").RULE_PACK == "cn_collection"
    batches = pm.hook.arrears_contact_rules(
        account={"contacts": calls(6)},
        debtor=SH_DEBTOR,
        channel="phone",
        purpose="collection",
        at=AT,
        party="debtor",
        to="phone:0",
    )
    mine = {v.rule_id: v.outcome for b in batches for v in b if v.rule_id.startswith("cn_")}
    assert mine == {"cn_collection.quiet_hours": "allow", "cn_collection.unanswered_calls": "block"}
