"""``holidays.public_holiday``: no contact on the debtor's local public holidays."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ledger.clock import MovableClock
from plugins.manager import ArrearsPluginManager
from plugins.testkit import assert_allowed, assert_blocked, assert_no_verdict, debtor_view, judge

from arrears_holidays.rule import RULE_ID

CHICAGO = "America/Chicago"


def illinois(**overrides: object) -> dict[str, object]:
    """A debtor in Illinois, in Chicago unless ``overrides`` say otherwise."""
    return debtor_view(**{"jurisdiction": "US-IL", "time_zone": CHICAGO, **overrides})


def test_independence_day_blocks_contact(arrears_plugin_manager: ArrearsPluginManager) -> None:
    """Saturday 4 July 2026, noon in Chicago: no text goes out."""
    at = datetime(2026, 7, 4, 17, 0, tzinfo=UTC)
    verdict = assert_blocked(
        judge(arrears_plugin_manager, debtor=illinois(), channel="sms", at=at), RULE_ID
    )
    assert "Independence Day" in verdict.reason and "US-IL" in verdict.reason
    assert (
        verdict.citation.startswith("Creditor policy, not law")
        and "python-holidays" in verdict.citation
    )


def test_the_observed_weekday_is_blocked_too(arrears_plugin_manager: ArrearsPluginManager) -> None:
    """Independence Day falls on a Saturday in 2026: Friday 3 July, its observed day, is blocked."""
    at = datetime(2026, 7, 3, 15, 0, tzinfo=UTC)
    verdict = assert_blocked(judge(arrears_plugin_manager, debtor=illinois(), at=at), RULE_ID)
    assert "Independence Day (observed)" in verdict.reason


def test_the_day_before_is_allowed(arrears_plugin_manager: ArrearsPluginManager) -> None:
    """Thursday 2 July 2026 is an ordinary day: the rule allows, saying it checked."""
    at = datetime(2026, 7, 2, 15, 0, tzinfo=UTC)
    verdict = assert_allowed(judge(arrears_plugin_manager, debtor=illinois(), at=at), RULE_ID)
    assert verdict.reason == "2026-07-02 in America/Chicago: not a public holiday in US-IL"


def test_a_state_holiday_blocks_only_in_its_state(
    arrears_plugin_manager: ArrearsPluginManager,
) -> None:
    """Lincoln's Birthday (12 February) is a holiday in Illinois, not in Texas."""
    at = datetime(2026, 2, 12, 16, 0, tzinfo=UTC)
    verdict = assert_blocked(judge(arrears_plugin_manager, debtor=illinois(), at=at), RULE_ID)
    assert "Lincoln's Birthday" in verdict.reason
    texas = debtor_view(jurisdiction="US-TX", time_zone=CHICAGO)
    assert_allowed(judge(arrears_plugin_manager, debtor=texas, at=at), RULE_ID)


def test_late_on_the_eve_is_allowed_though_utc_is_already_the_holiday(
    arrears_plugin_manager: ArrearsPluginManager, arrears_clock: MovableClock
) -> None:
    """23:30 in Chicago on 25 November is Thanksgiving in UTC, not yet for the debtor."""
    arrears_clock.set(datetime(2026, 11, 26, 5, 30, tzinfo=UTC))  # 23:30 CST on the 25th
    eve = judge(arrears_plugin_manager, debtor=illinois(), at=arrears_clock.now())
    assert_allowed(eve, RULE_ID)
    arrears_clock.set(datetime(2026, 11, 26, 6, 30, tzinfo=UTC))  # 00:30 CST on the 26th
    assert_blocked(
        judge(arrears_plugin_manager, debtor=illinois(), at=arrears_clock.now()), RULE_ID
    )


def test_east_of_utc_the_holiday_starts_before_the_utc_day(
    arrears_plugin_manager: ArrearsPluginManager,
) -> None:
    """00:30 on 1 October in Shanghai (still 30 September in UTC) is China's National Day."""
    debtor = debtor_view(jurisdiction="CN", time_zone="Asia/Shanghai")
    at = datetime(2026, 9, 30, 16, 30, tzinfo=UTC)
    assert (
        "National Day"
        in assert_blocked(judge(arrears_plugin_manager, debtor=debtor, at=at), RULE_ID).reason
    )


def test_with_several_zones_a_holiday_in_any_blocks(
    arrears_plugin_manager: ArrearsPluginManager,
) -> None:
    """00:30 Thanksgiving in Chicago is still the 25th in Honolulu: blocked all the same."""
    at = datetime(2026, 11, 26, 6, 30, tzinfo=UTC)
    both = illinois(time_zones=["Pacific/Honolulu"])
    assert_blocked(judge(arrears_plugin_manager, debtor=both, at=at), RULE_ID)
    honolulu = illinois(time_zone="Pacific/Honolulu")
    assert_allowed(judge(arrears_plugin_manager, debtor=honolulu, at=at), RULE_ID)


@pytest.mark.parametrize(("jurisdiction", "outcome"), [("GB-SCT", "block"), ("GB-ENG", "allow")])
def test_st_andrews_day_is_a_holiday_in_scotland_not_england(
    arrears_plugin_manager: ArrearsPluginManager, jurisdiction: str, outcome: str
) -> None:
    """Monday 30 November 2026: a bank holiday in Scotland, a working day in England."""
    debtor = debtor_view(jurisdiction=jurisdiction, time_zone="Europe/London")
    at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    verdicts = judge(arrears_plugin_manager, debtor=debtor, channel="email", at=at)
    if outcome == "block":
        assert "Saint Andrew's Day" in assert_blocked(verdicts, RULE_ID).reason
    else:
        assert_allowed(verdicts, RULE_ID)


@pytest.mark.parametrize("jurisdiction", [None, "", "ZZ", "QQ-99"])
def test_an_unknown_jurisdiction_gets_no_verdict(
    arrears_plugin_manager: ArrearsPluginManager, jurisdiction: str | None
) -> None:
    """Without a calendar the rule cannot judge, so it stays silent."""
    debtor = debtor_view(jurisdiction=jurisdiction)
    assert_no_verdict(
        judge(arrears_plugin_manager, debtor=debtor, at=datetime(2026, 12, 25, 15, tzinfo=UTC)),
        RULE_ID,
    )


def test_an_unknown_subdivision_falls_back_to_the_national_calendar(
    arrears_plugin_manager: ArrearsPluginManager,
) -> None:
    """ "US-XX" is not a state, but Christmas is a holiday in every one."""
    debtor = debtor_view(jurisdiction="US-XX")
    verdict = assert_blocked(
        judge(arrears_plugin_manager, debtor=debtor, at=datetime(2026, 12, 25, 15, tzinfo=UTC)),
        RULE_ID,
    )
    assert "national holidays of US" in verdict.reason


def test_an_unknown_time_zone_uses_the_utc_date(
    arrears_plugin_manager: ArrearsPluginManager,
) -> None:
    """No usable zone: the UTC date decides, and the reason says so."""
    debtor = debtor_view(time_zone="Mars/Olympus_Mons")
    verdict = assert_blocked(
        judge(arrears_plugin_manager, debtor=debtor, at=datetime(2026, 12, 25, 1, tzinfo=UTC)),
        RULE_ID,
    )
    assert "UTC date used" in verdict.reason


@pytest.mark.parametrize("channel", ["letter", "legal"])
def test_letters_and_legal_actions_are_not_judged(
    arrears_plugin_manager: ArrearsPluginManager, channel: str
) -> None:
    """A letter is delivered on a working day anyway; a legal action is not a contact."""
    at = datetime(2026, 7, 4, 17, 0, tzinfo=UTC)
    assert_no_verdict(
        judge(arrears_plugin_manager, debtor=illinois(), channel=channel, at=at), RULE_ID
    )
