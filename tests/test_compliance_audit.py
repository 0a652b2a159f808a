"""Retroactive audit, ``arrears contact check`` and the worklist's open channels.

Jane (conftest) lives in Chicago (US-IL); the clock starts 2026-03-02 14:00 UTC,
08:00 in Chicago.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from conftest import JANE, placement

from bootstrap import build_service
from cli import main
from ledger import errors
from ledger.application import open_ledger
from ledger.clock import MovableClock
from ledger.money import Money
from ledger.services import LedgerService
from plugins import Verdict, hookimpl
from plugins.manager import build_plugin_manager

CHICAGO = ZoneInfo("America/Chicago")


def chicago(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHICAGO).astimezone(UTC)  # type: ignore[misc]


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'audit.db'}"


@pytest.fixture
def gated(url: str, clock: MovableClock) -> Iterator[LedgerService]:
    pm = build_plugin_manager(entry_points=False, disabled=())
    svc = build_service(url, clock=clock, plugins=pm, config={})
    yield svc
    svc.ledger.close()


def record_under_old_rules(url: str, clock: MovableClock, aid: UUID, at: datetime) -> None:
    """A ledger that knew no rules yet: the contact is recorded without any flag."""
    app = open_ledger(url)
    try:
        LedgerService(app, clock).record_contact(
            aid, channel="phone", direction="outbound", outcome="no_answer", occurred_at=at
        )
    finally:
        app.close()


def test_audit_finds_contacts_that_break_todays_rules(
    url: str, gated: LedgerService, clock: MovableClock
) -> None:
    aid = gated.place_account(placement(), debtor=JANE).id
    clock.set(chicago(2026, 3, 3, 9, 0))
    record_under_old_rules(url, clock, aid, chicago(2026, 3, 2, 21, 15))  # new finding
    gated.record_contact(  # flagged when recorded
        aid, channel="sms", direction="outbound", outcome="sent", occurred_at=chicago(2026, 3, 3, 7)
    )
    gated.record_contact(  # lawful
        aid,
        channel="phone",
        direction="outbound",
        outcome="busy",
        occurred_at=chicago(2026, 3, 3, 8),
    )
    report = gated.compliance_audit()
    assert (report.accounts, report.contacts_checked) == (1, 3)
    found = [
        (f.occurred_at, f.verdict.rule, f.verdict.version, f.flagged_then) for f in report.findings
    ]
    assert found == [
        (chicago(2026, 3, 2, 21, 15), "us_reg_f.inconvenient_time", "1", False),
        (chicago(2026, 3, 3, 7), "us_reg_f.inconvenient_time", "1", True),
    ]
    assert gated.compliance_audit(since=chicago(2026, 3, 3, 0)).findings[0].flagged_then
    assert gated.compliance_audit(pack="uk_conc").findings == []
    for typo in ("us_regf", ""):
        with pytest.raises(errors.InvalidChoice, match=r"known: .*us_reg_f"):
            gated.compliance_audit(pack=typo)


class NoTextsPolicy:
    """A rule added after the contacts were made."""

    @hookimpl
    def arrears_contact_rules(self, channel: str) -> list[Verdict]:
        if channel != "sms":
            return []
        return [Verdict("block", "policy.no_texts", "1", "texts stopped", "house policy")]


def test_a_rule_added_since_is_a_new_finding_on_a_contact_flagged_then(
    url: str, gated: LedgerService, clock: MovableClock
) -> None:
    """ "New" is per rule: the 07:00 text was flagged for the hour, not for the new policy."""
    aid = gated.place_account(placement(), debtor=JANE).id
    clock.set(chicago(2026, 3, 3, 9, 0))
    gated.record_contact(
        aid, channel="sms", direction="outbound", outcome="sent", occurred_at=chicago(2026, 3, 3, 7)
    )
    pm = build_plugin_manager(entry_points=False, disabled=())
    pm.register(NoTextsPolicy(), name="policy")
    later = build_service(url, clock=clock, plugins=pm, config={})
    try:
        found = {(f.verdict.rule, f.flagged_then) for f in later.compliance_audit().findings}
    finally:
        later.ledger.close()
    assert found == {("us_reg_f.inconvenient_time", True), ("policy.no_texts", False)}


def test_audit_judges_each_contact_in_the_time_zone_the_debtor_had_then(
    gated: LedgerService, clock: MovableClock
) -> None:
    """A call at 20:30 in Chicago (21:30 in New York) stays lawful after Jane moves east;
    the same hour after the move is a finding."""
    account = gated.place_account(placement(), debtor=JANE)
    assert account.debtor_id is not None
    clock.set(chicago(2026, 3, 2, 20, 30))
    gated.record_contact(
        account.id,
        channel="phone",
        direction="outbound",
        outcome="busy",
        occurred_at=chicago(2026, 3, 2, 20, 30),
    )
    clock.set(chicago(2026, 3, 3, 9, 0))
    gated.update_debtor_contact_details(account.debtor_id, time_zone="America/New_York")
    clock.set(chicago(2026, 3, 3, 20, 45))
    gated.record_contact(  # flagged when recorded: 21:45 in New York
        account.id,
        channel="phone",
        direction="outbound",
        outcome="busy",
        occurred_at=chicago(2026, 3, 3, 20, 30),
    )
    report = gated.compliance_audit()
    assert report.contacts_checked == 2
    assert [(f.occurred_at, f.verdict.rule) for f in report.findings] == [
        (chicago(2026, 3, 3, 20, 30), "us_reg_f.inconvenient_time")
    ]


def test_compliance_audit_command_prints_table_and_json(
    url: str, gated: LedgerService, clock: MovableClock
) -> None:
    aid = gated.place_account(placement(), debtor=JANE).id
    clock.set(chicago(2026, 3, 3, 9, 0))
    record_under_old_rules(url, clock, aid, chicago(2026, 3, 2, 21, 15))
    runner = CliRunner()
    table = runner.invoke(main, ["compliance", "audit", "--store", url])
    assert table.exit_code == 1, table.output
    assert "1 outbound contacts on 1 accounts checked, 1 violations" in table.output
    assert "us_reg_f.inconvenient_time" in table.output and "ACC-0001" in table.output
    out = runner.invoke(main, ["compliance", "audit", "--format", "json", "--store", url])
    data = json.loads(out.output)
    assert data["violations"] == 1
    assert data["findings"][0]["rule"] == "us_reg_f.inconvenient_time"
    assert data["findings"][0]["citation"] == "12 CFR 1006.6(b)(1)(i)"
    later = runner.invoke(main, ["compliance", "audit", "--from", "2026-03-04", "--store", url])
    assert later.exit_code == 0 and "0 violations" in later.output
    only_uk = runner.invoke(main, ["compliance", "audit", "--pack", "uk_conc", "--store", url])
    assert only_uk.exit_code == 0, only_uk.output + str(only_uk.exception)


def test_every_command_takes_the_config_file(
    url: str, gated: LedgerService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--config FILE on the command itself: a US account judged by the China pack there."""
    monkeypatch.setenv("ARREARS_CONFIG", "")  # undone after the test, whatever --config set
    gated.place_account(placement(), debtor=JANE)
    config = tmp_path / "strict.toml"
    config.write_text('[rule_packs]\nUS = ["cn_collection"]\n')
    at = ["--at", "2026-03-03T04:30:00Z", "--json"]  # 22:30 in Chicago
    checked = CliRunner().invoke(
        main,
        [
            "contact",
            "check",
            "ACC-0001",
            "--channel",
            "sms",
            *at,
            "--config",
            str(config),
            "--store",
            url,
        ],
    )
    rules = {v["rule"].split(".")[0] for v in json.loads(checked.output)["verdicts"]}
    assert rules == {"cn_collection"}, checked.output
    typo = tmp_path / "typo.toml"
    typo.write_text('[rule_packs]\nUS = ["us_regf"]\n')
    refused = CliRunner().invoke(
        main, ["compliance", "audit", "--config", str(typo), "--store", url]
    )
    assert refused.exit_code != 0 and "'us_regf'" in str(refused.exception) + refused.output


def test_contact_check_command_shows_verdicts_and_exit_status(
    url: str, gated: LedgerService
) -> None:
    gated.place_account(placement(), debtor=JANE)
    runner = CliRunner()
    base = ["contact", "check", "acme-bank/ACC-0001", "--store", url]
    ok = runner.invoke(main, [*base, "--channel", "sms", "--at", "2026-03-02T20:59:00-06:00"])
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("ALLOWED: sms for collection")
    late = runner.invoke(
        main, [*base, "--channel", "sms", "--at", "2026-03-03T03:00:00Z", "--json"]
    )
    assert late.exit_code == 1
    data = json.loads(late.output)
    assert data["allowed"] is False
    blocked = [v for v in data["verdicts"] if v["outcome"] == "block"]
    assert [v["rule"] for v in blocked] == ["us_reg_f.inconvenient_time"]
    assert "21:00" in blocked[0]["reason"]
    bad = runner.invoke(main, [*base, "--channel", "pigeon"])
    assert bad.exit_code == 2 and "pigeon" in bad.output


def test_worklist_lists_the_channels_the_gate_leaves_open(
    gated: LedgerService, clock: MovableClock
) -> None:
    """Never-contacted accounts: one opted out of texts, one represented by an attorney
    (left out by the policy); at 22:00 Chicago time only letters remain open."""
    texts_off = gated.place_account(placement("A-1"), debtor=JANE).id
    gated.revoke_consent(texts_off, "sms", evidence="STOP reply")
    plain = gated.place_account(
        placement("A-2", principal=Money.parse("5000.00", "USD")), debtor=JANE
    ).id
    clock.set(chicago(2026, 3, 2, 12, 0))
    noon = {i.account_id: i.open_channels for i in gated.worklist().items}
    assert noon[str(plain)] == ("phone", "sms", "email", "letter", "visit")
    assert noon[str(texts_off)] == ("phone", "email", "letter", "visit")
    clock.set(chicago(2026, 3, 2, 22, 0))
    night = gated.worklist(limit=1)
    assert [(i.reference, i.open_channels) for i in night.items] == [("A-2", ("letter",))]
    assert night.items[0].as_dict()["open_channels"] == ["letter"]
