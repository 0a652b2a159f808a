"""The built-in `uk_conc` rule pack (FCA CONC 7, Breathing Space) at its boundaries."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from plugins import Verdict
from plugins.builtin import uk_conc
from plugins.manager import build_plugin_manager

LONDON = ZoneInfo("Europe/London")
GB_DEBTOR: dict[str, Any] = {"time_zone": "Europe/London", "jurisdiction": "GB"}


def ldn(*args: int) -> datetime:
    """A London wall-clock time, as the UTC moment the gate passes."""
    return datetime(*args, tzinfo=LONDON).astimezone(UTC)  # type: ignore[misc]


AT = ldn(2026, 4, 15, 14, 0)


def judge(
    account: Mapping[str, Any] | None = None,
    debtor: Mapping[str, Any] | None = None,
    channel: str = "phone",
    purpose: str = "collection",
    at: datetime | None = None,
    party: str = "debtor",
) -> list[Verdict]:
    return list(
        uk_conc.arrears_contact_rules(
            account=account or {},
            debtor=GB_DEBTOR if debtor is None else debtor,
            channel=channel,
            purpose=purpose,
            at=at or AT,
            party=party,
        )
    )


def outcome(verdicts: Sequence[Verdict], rule: str) -> str | None:
    found = [v.outcome for v in verdicts if v.rule_id == f"uk_conc.{rule}"]
    assert len(found) <= 1
    return found[0] if found else None


def reason(verdicts: Sequence[Verdict], rule: str) -> str:
    return next(v.reason for v in verdicts if v.rule_id == f"uk_conc.{rule}")


def preferences(
    channels: list[str] | None = None,
    refused: list[str] | None = None,
    start: time | None = None,
    end: time | None = None,
) -> dict[str, Any]:
    return {
        "contact_preferences": {
            "channels": channels,
            "refused_channels": refused or [],
            "window_start": start,
            "window_end": end,
        }
    }


STANDARD = {
    "kind": "standard",
    "started_on": date(2026, 4, 1),
    "ends_on": date(2026, 5, 30),
    "reference": "BS-1",
}
CRISIS = {
    "kind": "mental_health",
    "started_on": date(2026, 4, 1),
    "ends_on": None,
    "reference": "MH-1",
}


def in_space(space: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    """The account view as the gate builds it: the record and the flag for the UTC date of `at`."""
    today = at.date()
    ends_on = space["ends_on"]
    active = space["started_on"] <= today and (ends_on is None or today <= ends_on)
    return {"breathing_space": dict(space), "in_breathing_space": active}


@pytest.fixture
def restore_parameters() -> Iterator[None]:
    yield
    uk_conc.configure()


# ------------------------------------------------------------- breathing space


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (ldn(2026, 3, 31, 12, 0), "allow"),  # the day before it starts
        (ldn(2026, 4, 1, 9, 0), "block"),  # first day
        (ldn(2026, 5, 30, 20, 0), "block"),  # last day
        (ldn(2026, 5, 31, 9, 0), "allow"),  # the day after
    ],
)
@pytest.mark.parametrize("flag", ["given", "derived"])
def test_standard_breathing_space_blocks_from_first_to_last_day(
    at: datetime, expected: str, flag: str
) -> None:
    """Blocked on 04-01 and 05-30, allowed on 03-31 and 05-31; the flag may be derived."""
    account = in_space(STANDARD, at)
    if flag == "derived":
        del account["in_breathing_space"]
    assert outcome(judge(account, at=at), "breathing_space") == expected


def test_standard_breathing_space_reason_names_kind_and_end_date() -> None:
    """The reason says a standard 60-day breathing space and when it ends."""
    text = reason(judge(in_space(STANDARD, AT)), "breathing_space")
    assert "standard breathing space (60 days)" in text and "2026-05-30" in text


def test_mental_health_crisis_breathing_space_without_an_end_blocks() -> None:
    """With the treatment ongoing there is no end date: blocked months later, saying why."""
    at = ldn(2026, 12, 1, 12, 0)
    verdicts = judge(in_space(CRISIS, at), at=at)
    assert outcome(verdicts, "breathing_space") == "block"
    text = reason(verdicts, "breathing_space")
    assert "mental-health crisis" in text
    assert "until 30 days after the crisis treatment ends" in text


def test_mental_health_crisis_breathing_space_with_an_end_date() -> None:
    """Once the end is known (treatment end + 30 days), the reason gives it and it ends then."""
    space = {**CRISIS, "ends_on": date(2026, 7, 10)}
    last, after = ldn(2026, 7, 10, 12, 0), ldn(2026, 7, 11, 12, 0)
    verdicts = judge(in_space(space, last), at=last)
    assert outcome(verdicts, "breathing_space") == "block"
    assert "2026-07-10" in reason(verdicts, "breathing_space")
    assert outcome(judge(in_space(space, after), at=after), "breathing_space") == "allow"


@pytest.mark.parametrize(
    ("channel", "purpose", "party"),
    [
        ("legal", "legal_referral", "debtor"),  # no enforcement during a moratorium
        ("letter", "collection", "debtor"),
        ("email", "validation_notice", "debtor"),
        ("phone", "collection", "guarantor"),
        ("phone", "location_inquiry", "third_party"),
    ],
)
def test_breathing_space_blocks_every_contact_and_legal_action(
    channel: str, purpose: str, party: str
) -> None:
    """Letters, legal referrals, notices, guarantors and third parties: all blocked."""
    verdicts = judge(in_space(STANDARD, AT), channel=channel, purpose=purpose, party=party)
    assert outcome(verdicts, "breathing_space") == "block"


@pytest.mark.parametrize("channel", ["letter", "email", "legal"])
def test_breathing_space_notice_is_allowed(channel: str) -> None:
    """The notice about the breathing space itself may go out during it."""
    verdicts = judge(in_space(STANDARD, AT), channel=channel, purpose="breathing_space_notice")
    assert outcome(verdicts, "breathing_space") == "allow"


def test_gates_flag_wins_over_the_record() -> None:
    """An ended breathing space the gate flags inactive allows; a flag with no record blocks."""
    ended = {**in_space(STANDARD, AT), "in_breathing_space": False}
    assert outcome(judge(ended), "breathing_space") == "allow"
    verdicts = judge({"in_breathing_space": True})
    assert outcome(verdicts, "breathing_space") == "block"
    assert "not given" in reason(verdicts, "breathing_space")


def test_no_breathing_space_allows() -> None:
    """Without a breathing space the rule still answers: allowed."""
    assert outcome(judge({}), "breathing_space") == "allow"


# ---------------------------------------------------------- unreasonable hours


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (ldn(2026, 1, 14, 7, 59, 59), "block"),
        (ldn(2026, 1, 14, 8, 0), "allow"),
        (ldn(2026, 1, 14, 20, 59, 59), "allow"),
        (ldn(2026, 1, 14, 21, 0), "block"),
    ],
)
def test_reasonable_hours_are_0800_inclusive_to_2100_exclusive(at: datetime, expected: str) -> None:
    """07:59:59 and 21:00:00 local are blocked; 08:00:00 and 20:59:59 are allowed."""
    assert outcome(judge(at=at, channel="sms"), "unreasonable_hours") == expected


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        (datetime(2026, 3, 29, 6, 59, 59, tzinfo=UTC), "block"),  # 07:59:59 BST
        (datetime(2026, 3, 29, 7, 0, tzinfo=UTC), "allow"),  # 08:00 BST (07:00 if still GMT)
        (datetime(2026, 3, 29, 19, 59, 59, tzinfo=UTC), "allow"),  # 20:59:59 BST
        (datetime(2026, 3, 29, 20, 0, tzinfo=UTC), "block"),  # 21:00 BST (20:00 if still GMT)
    ],
)
def test_spring_forward_day_in_london(utc: datetime, expected: str) -> None:
    """On 2026-03-29 (GMT -> BST at 01:00 UTC) the reasonable hours are 07:00-20:00 UTC."""
    assert outcome(judge(at=utc, channel="phone"), "unreasonable_hours") == expected


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        (datetime(2026, 10, 25, 7, 59, 59, tzinfo=UTC), "block"),  # 07:59:59 GMT (08:59 BST)
        (datetime(2026, 10, 25, 8, 0, tzinfo=UTC), "allow"),  # 08:00 GMT
        (datetime(2026, 10, 25, 20, 59, 59, tzinfo=UTC), "allow"),  # 20:59:59 GMT
        (datetime(2026, 10, 25, 21, 0, tzinfo=UTC), "block"),  # 21:00 GMT (22:00 if still BST)
    ],
)
def test_fall_back_day_in_london(utc: datetime, expected: str) -> None:
    """On 2026-10-25 (BST -> GMT at 01:00 UTC) the reasonable hours are 08:00-21:00 UTC."""
    assert outcome(judge(at=utc, channel="email"), "unreasonable_hours") == expected


@pytest.mark.parametrize("debtor", [{}, {"time_zone": None}, {"time_zone": "Atlantis/Capital"}])
def test_unknown_or_invalid_time_zone_means_london(debtor: dict[str, Any]) -> None:
    """Without a usable zone the debtor is taken to be in London (BST in summer)."""
    early = datetime(2026, 6, 10, 6, 30, tzinfo=UTC)  # 07:30 BST
    verdicts = judge(debtor=debtor, at=early)
    assert outcome(verdicts, "unreasonable_hours") == "block"
    assert "Europe/London" in reason(verdicts, "unreasonable_hours")
    assert outcome(judge(debtor=debtor, at=early.replace(hour=7)), "unreasonable_hours") == "allow"


def test_several_time_zones_must_all_be_reasonable() -> None:
    """09:00 in London but 02:00 in Los Angeles: blocked; London alone: allowed."""
    at = ldn(2026, 1, 14, 9, 0)
    both = {"time_zones": ["America/Los_Angeles"], "time_zone": "Europe/London"}
    verdicts = judge(debtor=both, at=at)
    assert outcome(verdicts, "unreasonable_hours") == "block"
    assert "America/Los_Angeles" in reason(verdicts, "unreasonable_hours")
    assert outcome(judge(at=at), "unreasonable_hours") == "allow"


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (ldn(2026, 4, 15, 22, 0), "block"),  # unreasonable, before the window opens
        (ldn(2026, 4, 15, 22, 30), "allow"),  # the shift worker's window opens
        (ldn(2026, 4, 16, 0, 0), "allow"),  # across midnight
        (ldn(2026, 4, 16, 6, 59, 59), "allow"),
        (ldn(2026, 4, 16, 7, 0), "block"),  # the window has closed; unreasonable until 08:00
    ],
)
def test_debtors_agreed_window_across_midnight_makes_night_hours_reasonable(
    at: datetime, expected: str
) -> None:
    """A debtor who asked for 22:30-07:00 may be contacted then, not at 22:00 or 07:00."""
    agreed = preferences(start=time(22, 30), end=time(7, 0))
    assert outcome(judge(agreed, at=at), "unreasonable_hours") == expected


def test_agreed_window_does_not_cover_a_guarantor() -> None:
    """The debtor's window is the debtor's: a guarantor at 23:00 is still blocked."""
    agreed = preferences(start=time(22, 30), end=time(7, 0))
    at = ldn(2026, 4, 15, 23, 0)
    assert outcome(judge(agreed, at=at, party="guarantor"), "unreasonable_hours") == "block"


@pytest.mark.parametrize("channel", ["letter", "legal"])
def test_letters_and_legal_action_are_not_time_gated(channel: str) -> None:
    """A letter queued at night and a legal referral get no hours verdict."""
    assert outcome(judge(at=ldn(2026, 4, 15, 23, 0), channel=channel), "unreasonable_hours") is None


# ---------------------------------------------------------- contact preferences


def test_refused_channel_is_blocked_and_others_are_not() -> None:
    """Refusing texts blocks texts, not emails; refusing phone blocks voice too."""
    refused = preferences(refused=["sms", "phone"])
    assert outcome(judge(refused, channel="sms"), "contact_preferences") == "block"
    assert outcome(judge(refused, channel="email"), "contact_preferences") == "allow"
    assert outcome(judge(refused, channel="voice"), "contact_preferences") == "block"
    assert "refused" in reason(judge(refused, channel="sms"), "contact_preferences")


def test_only_the_channels_the_debtor_chose() -> None:
    """With channels set, others are blocked; an empty list allows none; None allows all."""
    assert outcome(judge(preferences(["email"]), channel="sms"), "contact_preferences") == "block"
    assert outcome(judge(preferences(["email"]), channel="email"), "contact_preferences") == "allow"
    assert outcome(judge(preferences(["phone"]), channel="voice"), "contact_preferences") == "allow"
    assert outcome(judge(preferences([]), channel="letter"), "contact_preferences") == "block"
    assert outcome(judge(preferences(None), channel="visit"), "contact_preferences") == "allow"


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (ldn(2026, 4, 15, 8, 59, 59), "block"),  # reasonable, but before the window
        (ldn(2026, 4, 15, 9, 0), "allow"),
        (ldn(2026, 4, 15, 16, 59, 59), "allow"),
        (ldn(2026, 4, 15, 17, 0), "block"),
    ],
)
def test_contact_only_inside_the_debtors_window(at: datetime, expected: str) -> None:
    """A 09:00-17:00 window narrows the reasonable hours."""
    verdicts = judge(preferences(start=time(9), end=time(17)), at=at)
    assert outcome(verdicts, "contact_preferences") == expected
    assert outcome(verdicts, "unreasonable_hours") == "allow"


def test_window_across_midnight_blocks_the_daytime() -> None:
    """A night-shift worker's 22:30-07:00 window blocks a call at 14:00."""
    agreed = preferences(start=time(22, 30), end=time(7, 0))
    assert outcome(judge(agreed, at=ldn(2026, 4, 15, 14, 0)), "contact_preferences") == "block"
    assert outcome(judge(agreed, at=ldn(2026, 4, 15, 23, 0)), "contact_preferences") == "allow"


def test_letters_honour_channels_but_not_the_window() -> None:
    """A letter is not timed: the window does not apply, refusing letters does."""
    agreed = preferences(start=time(9), end=time(17))
    at = ldn(2026, 4, 15, 18, 0)
    assert outcome(judge(agreed, at=at, channel="letter"), "contact_preferences") == "allow"
    refused = preferences(refused=["letter"])
    assert outcome(judge(refused, channel="letter"), "contact_preferences") == "block"


def test_incomplete_window_blocks_until_corrected() -> None:
    """A window with only one end cannot be honoured: blocked, saying to correct it."""
    verdicts = judge(preferences(start=time(9)))
    assert outcome(verdicts, "contact_preferences") == "block"
    assert "correct" in reason(verdicts, "contact_preferences")


@pytest.mark.parametrize(("channel", "party"), [("legal", "debtor"), ("phone", "guarantor")])
def test_preferences_do_not_apply_to_legal_action_or_other_parties(
    channel: str, party: str
) -> None:
    """Legal action is not a contact; a guarantor's preferences are not the debtor's."""
    refused = preferences(refused=["phone", "legal"], channels=["email"])
    assert outcome(judge(refused, channel=channel, party=party), "contact_preferences") is None


# ------------------------------------------------------------------- parameters


def test_parameters_are_configurable(restore_parameters: None) -> None:
    """configure() changes what the hook uses; configure() with no overrides restores DEFAULTS."""
    at = ldn(2026, 4, 15, 20, 30)
    assert outcome(judge(at=at), "unreasonable_hours") == "allow"
    params = uk_conc.configure(reasonable_end=time(20))
    assert uk_conc.active_parameters() == params
    assert outcome(judge(at=at), "unreasonable_hours") == "block"
    assert uk_conc.configure() == uk_conc.DEFAULTS
    assert outcome(judge(at=at), "unreasonable_hours") == "allow"


def test_judge_is_pure_and_takes_parameters() -> None:
    """judge() uses the parameters it is given, whatever the module's active ones are."""
    params = uk_conc.UkConcParameters(default_time_zone="Europe/Dublin", reasonable_start=time(9))
    at = ldn(2026, 4, 15, 8, 30)
    verdicts = uk_conc.judge({}, {}, "phone", "collection", at, "debtor", None, params)
    assert outcome(verdicts, "unreasonable_hours") == "block"
    assert "Europe/Dublin" in reason(verdicts, "unreasonable_hours")


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"default_time_zone": "Not/AZone"}, ValueError),
        ({"reasonable_start": "08:00"}, ValueError),
        ({"reasonable_end": time(8)}, ValueError),  # equal to the start: nothing allowed
        ({"earliest": time(8)}, TypeError),
    ],
)
def test_bad_parameters_are_refused(
    overrides: dict[str, Any], error: type[Exception], restore_parameters: None
) -> None:
    """A bad value or an unknown name fails and leaves the active parameters alone."""
    with pytest.raises(error):
        uk_conc.configure(**overrides)
    assert uk_conc.active_parameters() == uk_conc.DEFAULTS


# --------------------------------------------------------------- the pack itself


def test_every_verdict_has_rule_id_version_reason_and_citation() -> None:
    """Blocks and allows alike carry uk_conc.<rule>, the version, a reason and a citation."""
    blocked = judge(
        {**in_space(STANDARD, AT), **preferences(refused=["phone"])}, at=ldn(2026, 4, 15, 22, 0)
    )
    allowed = judge()
    for verdicts in (blocked, allowed):
        assert {v.rule_id for v in verdicts} == {f"uk_conc.{r}" for r in uk_conc.CITATIONS}
    assert {v.outcome for v in blocked} == {"block"}
    assert {v.outcome for v in allowed} == {"allow"}
    for v in blocked + allowed:
        assert v.rule_version == uk_conc.RULE_VERSION and v.reason
        assert v.citation.startswith(("FCA CONC 7.", "SI 2020/1311"))


def test_pack_is_a_built_in_plugin_and_judges_through_the_hook() -> None:
    """`builtin.uk_conc` is registered as a built-in rule pack and answers the hook."""
    pm = build_plugin_manager(entry_points=False, disabled=())
    infos = {i.name: i for i in pm.plugin_infos()}
    assert infos["builtin.uk_conc"].source == "built-in"
    assert infos["builtin.uk_conc"].hooks == ("arrears_contact_rules",)
    assert pm.get_plugin("builtin.uk_conc").RULE_PACK == "uk_conc"
    batches = pm.hook.arrears_contact_rules(
        account=in_space(STANDARD, AT),
        debtor=GB_DEBTOR,
        channel="sms",
        purpose="collection",
        at=AT,
        party="debtor",
        to="phone:0",
    )
    mine = {v.rule_id: v.outcome for b in batches for v in b if v.rule_id.startswith("uk_")}
    assert mine == {
        "uk_conc.breathing_space": "block",
        "uk_conc.unreasonable_hours": "allow",
        "uk_conc.contact_preferences": "allow",
    }
