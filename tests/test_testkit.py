"""The plugin test kit (`plugins.testkit`): fixtures a plugin author gets from pytest alone."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from plugins import Verdict, hookimpl
from plugins.testkit import (
    START,
    account_view,
    assert_allowed,
    assert_blocked,
    assert_no_verdict,
    debtor_view,
    judge,
)

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
# In-process runs find ledger/ and plugins/ already imported, too late to rewrite asserts.
QUIET = (
    "-p",
    "no:cacheprovider",
    "-p",
    "no:asyncio",
    "-W",
    "ignore::pytest.PytestAssertRewriteWarning",
)

# A plugin author's test module, as it would be written in their own repository.
AUTHOR_TESTS = '''
from datetime import timedelta

import pytest

from ledger.money import Money
from ledger.services import DebtorDetails, Placement
from plugins import Verdict, hookimpl
from plugins.testkit import START, assert_allowed, assert_blocked, assert_no_verdict, judge


class NoTexts:
    """House rule: no texts; letters are not judged."""

    @hookimpl
    def arrears_contact_rules(self, channel):
        if channel == "letter":
            return []
        outcome = "block" if channel == "sms" else "allow"
        return [Verdict(outcome, "house.no_sms", "1", f"{channel} checked", "house rule 7")]


@pytest.fixture
def arrears_plugin():
    return NoTexts()


def test_texts_are_blocked(arrears_plugin_manager):
    assert_blocked(judge(arrears_plugin_manager, channel="sms"), "house.no_sms")


def test_calls_allowed_letters_not_judged(arrears_plugin_manager):
    assert_allowed(judge(arrears_plugin_manager, channel="phone"), "house.no_sms")
    assert_no_verdict(judge(arrears_plugin_manager, channel="letter"), "house.no_sms")


def test_the_fixture_flavour(arrears_verdicts, arrears_plugin):
    verdicts = arrears_verdicts.judge(arrears_plugin, channel="sms")
    assert arrears_verdicts.assert_blocked(verdicts, "house.no_sms").citation == "house rule 7"


def test_the_manager_holds_only_the_plugin(arrears_plugin_manager):
    assert [i.name for i in arrears_plugin_manager.plugin_infos()] == ["plugin-under-test"]


def test_a_ledger_on_the_movable_clock(arrears_service, arrears_clock):
    usd = lambda text: Money.parse(text, "USD")
    placement = Placement(
        "acme-bank", "ACC-1", "USD", usd("100.00"), usd("0.00"), usd("0.00"),
        START.date(), "charge_off",
    )
    arrears_clock.advance(timedelta(days=1))
    account = arrears_service.place_account(placement, debtor=DebtorDetails(name="J"))
    placed_at = arrears_service.get_account(account.id).placed_at
    assert START + timedelta(days=1) <= placed_at < START + timedelta(days=1, minutes=1)
'''

FAILING_TEST = """
import pytest
from plugins import Verdict, hookimpl
from plugins.testkit import assert_blocked, judge


class Lenient:
    @hookimpl
    def arrears_contact_rules(self, channel):
        return [
            Verdict("allow", "house.no_sms", "1", "texts are fine today", "house rule 7"),
            Verdict("warn", "house.late", "2", "it is late", "house rule 9"),
        ]


@pytest.fixture
def arrears_plugin():
    return Lenient()


def test_expects_a_block(arrears_plugin_manager):
    assert_blocked(judge(arrears_plugin_manager, channel="sms"), "house.no_sms")
"""


class Rule:
    """A rule that records what it was called with and allows."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    @hookimpl
    def arrears_contact_rules(  # type: ignore[no-untyped-def]
        self, account, debtor, channel, purpose, at, party, to
    ) -> list[Verdict]:
        self.calls.append(dict(account=account, debtor=debtor, at=at, party=party, to=to))
        return [Verdict("allow", "t.rule", "1", "fine", "policy")]


def test_a_plugin_authors_tests_pass_with_the_kit(pytester: pytest.Pytester) -> None:
    """An author overrides arrears_plugin and uses judge, the assertions and the fixtures."""
    pytester.makepyfile(test_house_rules=AUTHOR_TESTS)
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(passed=5)


def test_a_failed_assertion_names_the_rule_and_lists_every_verdict(
    pytester: pytest.Pytester,
) -> None:
    """assert_blocked on an allowed contact fails saying what was expected and what came back."""
    pytester.makepyfile(test_lenient=FAILING_TEST)
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(failed=1)
    assert (
        "E       AssertionError: expected rule 'house.no_sms' to block, but it gave 'allow': "
        "texts are fine today\n"
        "E       2 verdict(s) returned:\n"
        "E         allow house.no_sms v1: texts are fine today [house rule 7]\n"
        "E         warn  house.late v2: it is late [house rule 9]\n"
    ) in result.stdout.str()
    assert "testkit.py" not in result.stdout.str()  # the failure points at the test


def test_the_docs_example_passes_with_the_kit(pytester: pytest.Pytester) -> None:
    """The test module in docs/plugins.md's test kit section runs and passes."""
    doc = (ROOT / "docs" / "plugins.md").read_text()
    match = re.search(r"<!-- example: testkit -->\n```python\n(.*?)```", doc, flags=re.S)
    assert match, "docs/plugins.md lost its test kit example"
    pytester.makepyfile(test_docs_example=match.group(1))
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(passed=2)


def test_without_an_override_the_test_is_skipped_saying_what_to_do(
    pytester: pytest.Pytester,
) -> None:
    """A test using the kit before arrears_plugin is overridden is skipped, not errored."""
    pytester.makepyfile("def test_x(arrears_plugin_manager):\n    pass\n")
    result = pytester.runpytest(*QUIET, "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*arrears_plugin is not overridden: define a fixture*"])


def test_default_views_have_every_key_of_the_contract() -> None:
    """account_view() and debtor_view() carry every key docs/contact-views.md names."""
    doc = (ROOT / "docs" / "contact-views.md").read_text()
    account_part = doc.split("`account` view", 1)[1].split("`debtor` view", 1)[0]
    debtor_part = doc.split("`debtor` view", 1)[1].split("\n\n", 1)[0]
    account_keys = set(re.findall(r"`(\w+)`", account_part)) - {"at"}
    debtor_keys = set(re.findall(r"`(\w+)`", debtor_part))
    assert account_keys <= set(account_view()), account_keys - set(account_view())
    assert debtor_keys <= set(debtor_view()), debtor_keys - set(debtor_view())
    assert account_view()["status"] == "active" and not account_view()["contacts"]
    assert debtor_view(jurisdiction="GB-SCT")["time_zone"] == "America/New_York"


def test_judge_passes_every_argument_read_only_in_utc() -> None:
    """A bare plugin is judged alone; views are read-only; `at` arrives in UTC."""
    rule = Rule()
    moment = datetime.fromisoformat("2026-03-02T09:00:00-05:00")
    verdicts = judge(rule, debtor=debtor_view(jurisdiction="US-IL"), at=moment, to="phone:0")
    assert_allowed(verdicts, "t.rule")
    assert_no_verdict(verdicts, "other.rule")
    call = rule.calls[0]
    assert call["at"] == START and call["at"].tzinfo is UTC
    assert call["account"]["jurisdiction"] == "US-IL"  # the default account follows the debtor
    assert (call["party"], call["to"]) == ("debtor", "phone:0")
    with pytest.raises(TypeError):
        call["account"]["ceased"] = True  # type: ignore[index]
    with pytest.raises(ValueError, match="naive"):
        judge(rule, at=datetime(2026, 3, 2, 9, 0))


def test_judge_refuses_what_is_not_a_verdict() -> None:
    """A rule returning something other than Verdicts fails the test saying so."""

    class Sloppy:
        @hookimpl
        def arrears_contact_rules(self) -> list[Any]:
            return [("block", "x")]

    with pytest.raises(AssertionError, match=r"must be a plugins\.Verdict"):
        judge(Sloppy())


def test_a_rule_with_two_verdicts_fails_the_assertion() -> None:
    """A rule that applies returns exactly one verdict; two fail assert_blocked."""
    twice = [Verdict("block", "r", "1", "a", "c"), Verdict("block", "r", "1", "b", "c")]
    with pytest.raises(AssertionError, match="got 2"):
        assert_blocked(twice, "r")
    with pytest.raises(AssertionError, match="no verdicts were returned"):
        assert_blocked([], "r")
    with pytest.raises(AssertionError, match="expected no verdict from rule 'r'"):
        assert_no_verdict(twice[:1], "r")
