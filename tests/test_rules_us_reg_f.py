"""The built-in `us_reg_f` rule pack (Regulation F / FDCPA) at its boundaries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from plugins import Verdict
from plugins.builtin import us_reg_f
from plugins.manager import build_plugin_manager, call_hook

NY = ZoneInfo("America/New_York")
NY_DEBTOR: dict[str, Any] = {"time_zone": "America/New_York", "jurisdiction": "US-NY"}


def ny(*args: int) -> datetime:
    """A New York wall-clock time, as the UTC moment the gate passes."""
    return datetime(*args, tzinfo=NY).astimezone(UTC)  # type: ignore[misc]


def judge(
    account: Mapping[str, Any] | None = None,
    debtor: Mapping[str, Any] | None = None,
    channel: str = "phone",
    purpose: str = "collection",
    at: datetime | None = None,
) -> list[Verdict]:
    return list(
        us_reg_f.arrears_contact_rules(
            account=account or {},
            debtor=NY_DEBTOR if debtor is None else debtor,
            channel=channel,
            purpose=purpose,
            at=at or ny(2026, 4, 15, 14, 0),
        )
    )


def outcome(verdicts: Sequence[Verdict], rule: str) -> str | None:
    found = [v.outcome for v in verdicts if v.rule_id == f"us_reg_f.{rule}"]
    assert len(found) <= 1
    return found[0] if found else None


def call(at: datetime, outcome: str = "no_answer", direction: str = "outbound") -> dict[str, Any]:
    return {"channel": "phone", "direction": direction, "outcome": outcome, "occurred_at": at}


# ------------------------------------------------------------ inconvenient time


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (ny(2026, 3, 4, 7, 59, 59), "block"),
        (ny(2026, 3, 4, 8, 0), "allow"),
        (ny(2026, 3, 4, 20, 59, 59), "allow"),
        (ny(2026, 3, 4, 21, 0), "block"),
    ],
)
def test_inconvenient_time_window_is_0800_inclusive_to_2100_exclusive(
    at: datetime, expected: str
) -> None:
    """07:59 and 21:00 local are blocked; 08:00 and 20:59 local are allowed."""
    assert outcome(judge(at=at, channel="sms"), "inconvenient_time") == expected


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        (datetime(2026, 3, 8, 11, 59, tzinfo=UTC), "block"),  # 07:59 EDT
        (datetime(2026, 3, 8, 12, 0, tzinfo=UTC), "allow"),  # 08:00 EDT (07:00 if still EST)
        (datetime(2026, 3, 9, 0, 59, tzinfo=UTC), "allow"),  # 20:59 EDT on 03-08
        (datetime(2026, 3, 9, 1, 0, tzinfo=UTC), "block"),  # 21:00 EDT on 03-08
    ],
)
def test_spring_forward_day_in_new_york(utc: datetime, expected: str) -> None:
    """On 2026-03-08 (EST -> EDT) the window is 12:00-01:00 UTC."""
    assert outcome(judge(at=utc, channel="email"), "inconvenient_time") == expected


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        (datetime(2026, 11, 1, 12, 59, tzinfo=UTC), "block"),  # 07:59 EST (08:59 if still EDT)
        (datetime(2026, 11, 1, 13, 0, tzinfo=UTC), "allow"),  # 08:00 EST
        (datetime(2026, 11, 2, 1, 59, tzinfo=UTC), "allow"),  # 20:59 EST on 11-01
        (datetime(2026, 11, 2, 2, 0, tzinfo=UTC), "block"),  # 21:00 EST on 11-01
    ],
)
def test_fall_back_day_in_new_york(utc: datetime, expected: str) -> None:
    """On 2026-11-01 (EDT -> EST) the window is 13:00-02:00 UTC."""
    assert outcome(judge(at=utc, channel="email"), "inconvenient_time") == expected


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        (datetime(2026, 1, 14, 17, 59, tzinfo=UTC), "block"),  # 07:59 in Honolulu
        (datetime(2026, 1, 14, 18, 0, tzinfo=UTC), "allow"),  # 08:00 Honolulu, 13:00 New York
        (datetime(2026, 1, 15, 1, 59, tzinfo=UTC), "allow"),  # 20:59 in New York
        (datetime(2026, 1, 15, 2, 0, tzinfo=UTC), "block"),  # 21:00 in New York
    ],
)
def test_unknown_time_zone_must_be_convenient_from_hawaii_to_eastern(
    utc: datetime, expected: str
) -> None:
    """With no time zone the moment must be convenient in every US zone."""
    debtor = {"time_zone": None, "jurisdiction": None}
    assert outcome(judge(debtor=debtor, at=utc, channel="sms"), "inconvenient_time") == expected


def test_invalid_time_zone_is_treated_as_unknown() -> None:
    """A name that is not an IANA zone falls back to every US zone (fail closed)."""
    debtor = {"time_zone": "Mars/Olympus", "jurisdiction": "US"}
    at = datetime(2026, 1, 14, 13, 30, tzinfo=UTC)  # 08:30 New York, 03:30 Honolulu
    assert outcome(judge(debtor=debtor, at=at), "inconvenient_time") == "block"


def test_multiple_time_zones_convenient_in_one_not_the_other_is_blocked() -> None:
    """08:30 in New York but 05:30 in Los Angeles: blocked; New York alone: allowed."""
    at = datetime(2026, 1, 14, 13, 30, tzinfo=UTC)
    both = {"time_zones": ["America/Los_Angeles"], "time_zone": "America/New_York"}
    verdicts = judge(debtor=both, at=at)
    assert outcome(verdicts, "inconvenient_time") == "block"
    assert "America/Los_Angeles" in next(v.reason for v in verdicts if v.outcome == "block")
    assert outcome(judge(at=at), "inconvenient_time") == "allow"


def test_letters_are_not_time_gated() -> None:
    """A letter communicates when delivered, so queueing one at night gets no time verdict."""
    assert outcome(judge(at=ny(2026, 3, 4, 23, 0), channel="letter"), "inconvenient_time") is None


# --------------------------------------------------------------- call frequency

AT = ny(2026, 4, 15, 14, 0)


def test_seventh_call_in_seven_days_is_allowed() -> None:
    """Six attempts already in the 7 days: the 7th is allowed."""
    contacts = [call(ny(2026, 4, day, 10, 0)) for day in range(10, 16)]
    assert outcome(judge({"contacts": contacts}, at=AT), "call_frequency") == "allow"


def test_eighth_call_in_seven_days_is_blocked() -> None:
    """Seven attempts already in the 7 days: the 8th is blocked."""
    contacts = [call(ny(2026, 4, day, 10, 0)) for day in range(9, 16)]
    assert outcome(judge({"contacts": contacts}, at=AT), "call_frequency") == "block"


@pytest.mark.parametrize(
    ("earliest", "expected"),
    [
        (ny(2026, 4, 8, 14, 0), "allow"),  # exactly 7 days earlier: day -7, outside
        (ny(2026, 4, 8, 23, 59, 59), "allow"),  # last second of day -7: outside
        (ny(2026, 4, 9, 0, 0), "block"),  # first second of day -6: inside
    ],
)
def test_edges_of_the_seven_day_window(earliest: datetime, expected: str) -> None:
    """Six attempts inside plus one at the window's edge; days are local calendar days."""
    contacts = [call(ny(2026, 4, day, 9, 0)) for day in range(10, 16)] + [call(earliest)]
    assert outcome(judge({"contacts": contacts}, at=AT), "call_frequency") == expected


def test_unconnected_inbound_later_and_non_phone_contacts_do_not_count() -> None:
    """Busy/failed calls, inbound calls, texts and contacts at or after `at` are not attempts."""
    contacts = [call(ny(2026, 4, day, 10, 0)) for day in range(10, 16)]
    contacts += [
        call(ny(2026, 4, 14, 11, 0), outcome="busy"),
        call(ny(2026, 4, 14, 12, 0), outcome="failed"),
        call(ny(2026, 4, 14, 13, 0), direction="inbound"),
        {**call(ny(2026, 4, 14, 13, 0)), "channel": "sms", "outcome": "sent"},
        call(AT),
    ]
    assert outcome(judge({"contacts": contacts}, at=AT), "call_frequency") == "allow"


def test_call_rules_apply_only_to_telephone() -> None:
    """An email gets no call-frequency or conversation verdict."""
    contacts = [call(ny(2026, 4, day, 10, 0)) for day in range(9, 16)]
    verdicts = judge({"contacts": contacts}, at=AT, channel="email")
    assert outcome(verdicts, "call_frequency") is None
    assert outcome(verdicts, "call_after_conversation") is None


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (ny(2026, 4, 1, 15, 0), "block"),  # day 1, later the same day
        (ny(2026, 4, 7, 20, 0), "block"),  # day 7
        (ny(2026, 4, 8, 8, 0), "allow"),  # day 8
    ],
)
def test_conversation_on_day_one_blocks_calls_through_day_seven(
    at: datetime, expected: str
) -> None:
    """A phone conversation on 04-01 (day 1) blocks calls through 04-07, allows 04-08."""
    talk = call(ny(2026, 4, 1, 10, 0), outcome="right_party_contact", direction="inbound")
    assert outcome(judge({"contacts": [talk]}, at=at), "call_after_conversation") == expected


def test_conversation_days_are_counted_in_the_debtors_time_zone() -> None:
    """A conversation at 23:30 New York time is on that local day, not the next UTC day."""
    talk = call(ny(2026, 4, 1, 23, 30), outcome="right_party_contact")
    assert talk["occurred_at"].date() == datetime(2026, 4, 2).date()  # UTC says 04-02
    at = ny(2026, 4, 8, 8, 0)  # local day 8 after 04-01
    assert outcome(judge({"contacts": [talk]}, at=at), "call_after_conversation") == "allow"


def test_voice_is_telephone_too() -> None:
    """The `voice` channel is subject to the call rules like `phone`."""
    contacts = [call(ny(2026, 4, day, 10, 0)) for day in range(9, 16)]
    assert outcome(judge({"contacts": contacts}, channel="voice"), "call_frequency") == "block"


# ------------------------------------------------------- cease, dispute, opt-out


@pytest.mark.parametrize(
    ("purpose", "expected"),
    [
        ("collection", "block"),
        ("validation_notice", "block"),
        ("cease_acknowledgement", "allow"),
        ("remedy_notice", "allow"),
    ],
)
def test_cease_allows_only_the_notices_the_law_allows(purpose: str, expected: str) -> None:
    """After a cease request only the FDCPA 805(c) notices go out."""
    verdicts = judge({"ceased": True}, channel="letter", purpose=purpose)
    assert outcome(verdicts, "cease_communication") == expected


@pytest.mark.parametrize(
    ("status", "within", "purpose", "expected"),
    [
        ("awaiting_verification", True, "collection", "block"),
        ("awaiting_verification", False, "collection", "allow"),
        ("verified", True, "collection", "allow"),
        ("awaiting_verification", True, "verification_notice", "allow"),
    ],
)
def test_dispute_within_validation_period_pauses_collection(
    status: str, within: bool, purpose: str, expected: str
) -> None:
    """Only a dispute within the validation period awaiting verification pauses collection."""
    account = {"status": status, "within_validation_period": within}
    verdicts = judge({"disputes": {"d1": account}}, channel="letter", purpose=purpose)
    assert outcome(verdicts, "dispute_pause") == expected


def test_derived_dispute_flag_wins_over_disputes() -> None:
    """The gate may pass the derived flag instead of the disputes."""
    flagged = {"dispute_awaiting_verification_within_validation": True, "disputes": {}}
    assert outcome(judge(flagged), "dispute_pause") == "block"


def test_opted_out_channel_is_blocked_and_others_are_not() -> None:
    """Consent False for sms blocks sms, not email; phone opt-out blocks voice too."""
    consents = {"sms": False, "email": True, "phone": False}
    assert outcome(judge({"consents": consents}, channel="sms"), "channel_opt_out") == "block"
    assert outcome(judge({"consents": consents}, channel="email"), "channel_opt_out") == "allow"
    assert outcome(judge({"consents": consents}, channel="voice"), "channel_opt_out") == "block"


@pytest.mark.parametrize(
    ("account", "rule"),
    [
        ({"attorney": {"firm": "Smith LLP", "reference": None}}, "attorney"),
        ({"bankrupt": True}, "bankruptcy"),
        ({"deceased": True}, "deceased"),
    ],
)
def test_attorney_bankruptcy_and_deceased_block(account: dict[str, Any], rule: str) -> None:
    """Each notice blocks contact; without it the same rule allows."""
    assert outcome(judge(account, channel="email"), rule) == "block"
    assert outcome(judge({}, channel="email"), rule) == "allow"


def test_attorney_reason_says_contact_the_attorney() -> None:
    """The reason tells the collector what to do instead."""
    (verdict,) = [v for v in judge({"attorney": {"firm": "X"}}) if v.rule_id.endswith("attorney")]
    assert "contact the attorney" in verdict.reason


@pytest.mark.parametrize("purpose", ["legal_referral", "threaten_suit"])
def test_time_barred_debt_blocks_legal_referral_and_threat_of_suit(purpose: str) -> None:
    """No suit and no threat of suit on a time-barred debt; fine when not time-barred."""
    assert outcome(judge({"time_barred": True}, purpose=purpose), "time_barred_suit") == "block"
    assert outcome(judge({"time_barred": False}, purpose=purpose), "time_barred_suit") == "allow"
    assert outcome(judge({"time_barred": True}), "time_barred_suit") is None


# --------------------------------------------------------------- the pack itself


def test_every_verdict_has_rule_id_version_reason_and_citation() -> None:
    """Blocks and allows alike carry us_reg_f.<rule>, the version, a reason and a citation."""
    account = {
        "ceased": True,
        "attorney": {"firm": "X"},
        "bankrupt": True,
        "deceased": True,
        "time_barred": True,
        "consents": {"phone": False},
        "disputes": {"d": {"status": "awaiting_verification", "within_validation_period": True}},
        "contacts": [call(ny(2026, 4, 15, 9, 0), outcome="right_party_contact")],
    }
    verdicts = judge(account, purpose="legal_referral", at=ny(2026, 4, 15, 22, 0)) + judge()
    assert {v.rule_id for v in verdicts} == {f"us_reg_f.{r}" for r in us_reg_f.CITATIONS} - {
        "us_reg_f.opt_out_notice"
    }
    for v in verdicts:
        assert v.rule_version == us_reg_f.RULE_VERSION and v.reason
        assert v.citation.startswith(("12 CFR", "15 U.S.C.", "11 U.S.C."))
    blocked = judge(account, purpose="legal_referral", at=ny(2026, 4, 15, 22, 0))
    assert {v.rule_id for v in blocked if v.outcome == "allow"} == {"us_reg_f.call_frequency"}
    assert all(v.outcome == "allow" for v in judge())


def test_legal_actions_are_judged_only_on_time_bar() -> None:
    """A referral is not a communication: at 23:00, after a cease request, only the
    time bar decides."""
    account = {"ceased": True, "time_barred": True}
    verdicts = judge(account, channel="legal", purpose="legal_referral", at=ny(2026, 4, 15, 23))
    assert [(v.rule_id, v.outcome) for v in verdicts] == [("us_reg_f.time_barred_suit", "block")]
    fresh = judge({}, channel="legal", purpose="legal_referral", at=ny(2026, 4, 15, 23))
    assert [(v.rule_id, v.outcome) for v in fresh] == [("us_reg_f.time_barred_suit", "allow")]
    # `arrears contact check ACC --channel legal` asks with the default purpose: still suit.
    checked = judge(account, channel="legal", purpose="collection", at=ny(2026, 4, 15, 12))
    assert [(v.rule_id, v.outcome) for v in checked] == [("us_reg_f.time_barred_suit", "block")]


def consent(given: datetime, until: datetime) -> dict[str, Any]:
    return {"call_consents": [{"given_at": given, "until": until}]}


def test_prior_consent_lifts_the_call_limits_within_seven_days() -> None:
    """Seven attempts already made: an 8th call is allowed in a period the debtor agreed
    to, if the consent was given within the last 7 days; an older consent does not help."""
    at = ny(2026, 4, 15, 14, 0)
    calls = [call(ny(2026, 4, 14, 9 + i)) for i in range(7)]
    talked = [call(ny(2026, 4, 14, 18), outcome="right_party_contact")]
    fresh = {**consent(ny(2026, 4, 14, 18), ny(2026, 4, 15, 16)), "contacts": calls + talked}
    verdicts = judge(fresh, at=at)
    assert outcome(verdicts, "call_frequency") == "allow"
    assert outcome(verdicts, "call_after_conversation") == "allow"
    assert any("1006.14(b)(3)(i)" in v.citation for v in verdicts)
    # Given 8 days before these calls: too old to cover them, or the call now.
    stale = {**consent(ny(2026, 4, 6, 8, 0), ny(2026, 4, 20, 0)), "contacts": calls}
    assert outcome(judge(stale, at=at), "call_frequency") == "block"
    outside = {**consent(ny(2026, 4, 14, 18), ny(2026, 4, 15, 13)), "contacts": calls}
    assert outcome(judge(outside, at=at), "call_frequency") == "block"


def test_calls_made_with_consent_do_not_count() -> None:
    """Six consented calls yesterday evening plus one ordinary call: the next is the 2nd."""
    window = consent(ny(2026, 4, 14, 17), ny(2026, 4, 14, 20))
    calls = [call(ny(2026, 4, 14, 17, 10 * i)) for i in range(6)] + [call(ny(2026, 4, 13, 9))]
    verdicts = judge({**window, "contacts": calls}, at=ny(2026, 4, 15, 14))
    assert outcome(verdicts, "call_frequency") == "allow"
    assert "call attempt 2 of" in next(
        v.reason for v in verdicts if v.rule_id.endswith("frequency")
    )


@pytest.mark.parametrize(
    ("channel", "locale", "text"),
    [
        ("sms", "en-US", "Reply STOP"),
        ("email", "en-US", "unsubscribe"),
        ("sms", "es-US", "Responda"),
    ],
)
def test_opt_out_notice_is_required_in_every_email_and_text(
    channel: str, locale: str, text: str
) -> None:
    """Email and sms carry the opt-out disclosure; letters and non-US accounts do not."""
    pm = build_plugin_manager(entry_points=False, disabled=())
    kwargs: dict[str, Any] = {"account": {}, "locale": locale, "purpose": "collection"}
    found = [
        d
        for b in call_hook(pm, "arrears_required_disclosures", channel=channel, **kwargs)
        for d in b
    ]
    assert [(d.rule_id, d.citation) for d in found] == [
        ("us_reg_f.opt_out_notice", "12 CFR 1006.6(e)")
    ]
    assert text in found[0].text
    assert call_hook(pm, "arrears_required_disclosures", channel="letter", **kwargs) == [[]]
    gb = {**kwargs, "account": {"jurisdiction": "GB"}}
    assert call_hook(pm, "arrears_required_disclosures", channel=channel, **gb) == [[]]  # fmt: skip


def test_plugin_is_listed_by_the_plugin_manager_and_judges_through_the_hook() -> None:
    """`builtin.us_reg_f` is a built-in with both hooks, and can be disabled by name."""
    pm = build_plugin_manager(entry_points=False, disabled=())
    infos = {i.name: i for i in pm.plugin_infos()}
    assert infos["builtin.us_reg_f"].source == "built-in"
    assert infos["builtin.us_reg_f"].hooks == (
        "arrears_contact_rules",
        "arrears_required_disclosures",
    )
    batches = call_hook(
        pm,
        "arrears_contact_rules",
        account={"ceased": True},
        debtor=NY_DEBTOR,
        channel="sms",
        purpose="collection",
        at=AT,
        party="debtor",
        to=None,
    )
    assert "us_reg_f.cease_communication" in {v.rule_id for b in batches for v in b}
    off = build_plugin_manager(entry_points=False, disabled=("builtin.us_reg_f",))
    assert "builtin.us_reg_f" not in {i.name for i in off.plugin_infos()}


def test_allowed_call_gets_only_allows() -> None:
    """A daytime call with no history and no notices: every verdict allows."""
    verdicts = judge(at=AT)
    assert verdicts and {v.outcome for v in verdicts} == {"allow"}
