"""Debt sale: the buyer's sale file, the accounts refused and why, completing the sale
once, and the standalone verifier against files altered one byte at a time."""

from __future__ import annotations

import base64
import csv
import io
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from click.testing import CliRunner, Result
from conftest import JANE, START, placement, usd
from structlog.testing import capture_logs

import cli
import cli.core
from adapters.debt_sale import verify as sale_verify
from adapters.debt_sale.export import ACCOUNT_COLUMNS, SaleRequest, export_sale
from adapters.debt_sale.pricing import split
from adapters.debt_sale.verify import manifest_digest, render_json, sha256_hex
from ledger.application import open_ledger
from ledger.clock import MovableClock
from ledger.domain.account import Account
from ledger.services import DebtorDetails, Installment, LedgerService
from ledger.tamper.chain import event_hash

ROOT = Path(__file__).resolve().parents[1]
BUYER = "Northwind Receivables LLC"
TODAY = START.date() + timedelta(days=10)  # the export runs ten days after placement
SELLABLE = ("ACC-LATE-PLAN", "ACC-PAYING", "ACC-PLAIN")
REFUSED = {
    "ACC-DISPUTED": "disputed: 1 dispute(s) not resolved",
    "ACC-CEASED": "ceased: the debtor asked us to cease communication",
    "ACC-BANKRUPT": "bankrupt: a bankruptcy was notified",
    "ACC-DECEASED": "deceased: the debtor is deceased",
    "ACC-ATTORNEY": "represented: represented by attorney Saul & Partners",
    "ACC-PLAN-OK": "performing_plan: installment plan is up to date (paid 0.00 of 1200.00)",
    "ACC-BARRED": "time_barred: the limitation period expired on 2026-03-01",
    "ACC-NEAR": "near_limitation: the limitation period expires on 2026-04-01",
    "ACC-SOLD": "sold: already sold to Other Buyer (portfolio P-OLD)",
    "ACC-CLOSED": "closed: closed (uncollectible)",
    "ACC-BREATHING": "breathing_space: in a standard breathing space",
    "ACC-AGENCY": "with_agency: placed with agency Agency X; recall it first",
    "ACC-LAW": "with_law_firm: referred to law firm Dewey LLP; withdraw the referral first",
    "ACC-PAID": "nothing_owed: balance is 0.00",
    "ACC-ERASED": "identity_missing: the debtor's identity was erased or is unknown",
    "NO-SUCH-REF": "not_found: no account with id or reference 'NO-SUCH-REF'",
}


def debtor(n: int) -> DebtorDetails:
    return DebtorDetails(
        name=f"Debtor Number{n}",
        phones=[f"+1 415 555 01{n:02d}"],
        emails=[f"debtor{n}@example.com"],
        addresses=[{"line1": f"{n} Oak Road", "city": "Dayton", "country": "US"}],
    )


def build_portfolio(service: LedgerService, clock: MovableClock) -> dict[str, UUID]:
    """Three sellable accounts and one account for every reason a sale is refused."""
    ids: dict[str, UUID] = {}
    for n, ref in enumerate([*SELLABLE, *(r for r in REFUSED if r != "NO-SUCH-REF")]):
        details = JANE if ref == "ACC-PAYING" else debtor(n)
        ids[ref] = service.place_account(placement(ref), debtor=details).id
    service.place_account(placement("OTHER-1", creditor="globex"), debtor=debtor(99))
    start = START.date()
    half = usd("600.00")
    service.accrue_interest(ids["ACC-PAYING"], usd("10.00"))
    service.assess_fee(ids["ACC-PAYING"], usd("5.00"), "late_fee")
    service.post_payment(ids["ACC-PAYING"], usd("200.00"), method="card")
    service.agree_plan(
        ids["ACC-LATE-PLAN"],
        kind="installment",
        total=usd("1200.00"),
        installments=[
            Installment(start + timedelta(days=5), half),
            Installment(start + timedelta(days=35), half),
        ],
    )
    service.agree_plan(
        ids["ACC-PLAN-OK"],
        kind="installment",
        total=usd("1200.00"),
        installments=[
            Installment(start + timedelta(days=20), half),
            Installment(start + timedelta(days=50), half),
        ],
    )
    service.raise_dispute(ids["ACC-DISPUTED"], "not mine", within_validation_period=True)
    service.receive_cease(ids["ACC-CEASED"], "letter")
    service.notify_bankruptcy(
        ids["ACC-BANKRUPT"], chapter="7", case_number="26-10001", filed_on=start
    )
    service.notify_deceased(ids["ACC-DECEASED"])
    service.notify_attorney(ids["ACC-ATTORNEY"], "Saul & Partners")
    service.set_limitation_date(ids["ACC-BARRED"], date(2026, 3, 1), "6 years from charge-off")
    service.set_limitation_date(ids["ACC-NEAR"], date(2026, 4, 1), "6 years from charge-off")
    service.sell(
        ids["ACC-SOLD"], buyer="Other Buyer", price=usd("90.00"), portfolio_reference="P-OLD"
    )
    service.close(ids["ACC-CLOSED"], "uncollectible")
    service.start_breathing_space(
        ids["ACC-BREATHING"], kind="standard", started_on=start, reference="BS-1"
    )
    service.place_with_agency(ids["ACC-AGENCY"], agency="Agency X", commission_basis_points=2500)
    service.refer_to_law_firm(ids["ACC-LAW"], "Dewey LLP")
    service.post_payment(ids["ACC-PAID"], usd("1200.00"), method="ach")
    erased = service.get_account(ids["ACC-ERASED"]).debtor_id
    assert erased is not None
    service.erase_debtor(erased, "erasure request")
    clock.set(START + timedelta(days=10))
    return ids


@pytest.fixture
def portfolio(
    sqlite_url: str, clock: MovableClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LedgerService, dict[str, UUID]]]:
    """The portfolio on SQLite; the CLI in this process shares the test's clock."""
    app = open_ledger(sqlite_url)
    service = LedgerService(app, clock)
    ids = build_portfolio(service, clock)
    monkeypatch.setattr(
        cli.core, "build_service", lambda store=None, **_: LedgerService(open_ledger(store), clock)
    )
    yield service, ids
    app.close()


def accounts_file(tmp_path: Path, ids: dict[str, UUID]) -> Path:
    """Every way of naming an account: id, CREDITOR/REFERENCE, bare reference, comments."""
    lines = ["# portfolio for Northwind", ""]
    for ref, aid in ids.items():
        lines.append(str(aid) if ref == "ACC-PLAIN" else f"acme-bank/{ref}")
    lines[2] = "ACC-LATE-PLAN"
    lines.append("NO-SUCH-REF")
    path = tmp_path / "accounts.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sale_cli(store: str, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        cli.main,
        ["sale", "export", "--buyer", BUYER, "--store", store, *args],
        env=env,
        catch_exceptions=False,
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def run_verifier(directory: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "adapters.debt_sale.verify", str(directory), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


# ----------------------------------------------------------------- export


def test_export_writes_the_sale_file_and_refuses_with_reasons(
    portfolio: tuple[LedgerService, dict[str, UUID]], sqlite_url: str, tmp_path: Path
) -> None:
    """Each refusal reason appears once with its text; the sellable accounts go to the buyer."""
    service, ids = portfolio
    out = tmp_path / "sale"
    result = sale_cli(
        sqlite_url,
        "--accounts",
        str(accounts_file(tmp_path, ids)),
        "--out",
        str(out),
        "--limitation-margin",
        "30",
        "--price",
        "1000.01",
    )
    assert result.exit_code == 0, result.output
    refused = {row["reference"].split("/")[-1]: row for row in read_csv(out / "refused.csv")}
    assert {ref: row["reasons"] for ref, row in refused.items()} == REFUSED
    assert refused["ACC-CEASED"]["account_id"] == str(ids["ACC-CEASED"])
    assert refused["NO-SUCH-REF"]["account_id"] == ""
    for ref, text in REFUSED.items():
        assert text in result.stdout, ref
    assert "3 accounts exported" in result.stdout
    assert "NOT signed: ARREARS_SALE_SIGNING_KEY is not set" in result.stdout

    rows = {row["account_reference"]: row for row in read_csv(out / "accounts.csv")}
    assert list(rows) == list(SELLABLE)
    paying = rows["ACC-PAYING"]
    aid = str(ids["ACC-PAYING"])
    head = service.account_rows(ids["ACC-PAYING"])[4]
    assert head.hash is not None
    manifest = json.loads((out / "manifest.json").read_text())
    assert paying == {
        "sale_id": manifest["sale_id"],
        "account_id": aid,
        "account_reference": "ACC-PAYING",
        "creditor": "acme-bank",
        "original_creditor": "Acme Bank N.A.",
        "currency": "USD",
        "charge_off_date": "2025-11-30",
        "charge_off_balance": "1200.00",
        "itemization_date": "2025-11-30",
        "itemization_kind": "charge_off",
        "itemization_balance": "1200.00",
        "interest_since_itemization": "10.00",
        "fees_since_itemization": "5.00",
        "payments_credits_since_itemization": "200.00",
        "principal": "1000.00",
        "interest": "15.00",
        "fees": "0.00",
        "total": "1015.00",
        "last_payment_date": "2026-03-02",
        "last_payment_amount": "200.00",
        "debtor_name": "Jane Q. Debtor",
        "debtor_addresses": "12 Elm Street, Springfield, 62701, US",
        "debtor_phones": "+1 415 555 0134",
        "debtor_emails": "jane.debtor@example.com",
        "account_status": "active",
        "placed_date": "2026-03-02",
        "sale_price": "297.22",
        "history_file": f"accounts/{aid}.json",
        "history_head_version": "4",
        "history_head_hash": head.hash.hex(),
    }
    # 1000.01 split by balance (1200 : 1015 : 1200); the odd cent to the largest remainder.
    assert [rows[r]["sale_price"] for r in SELLABLE] == ["351.40", "297.22", "351.39"]
    assert manifest["buyer"] == BUYER
    assert manifest["seller"] == "acme-bank"
    assert manifest["status"] == "offered"
    assert manifest["account_count"] == 3
    assert manifest["totals"] == {"USD": {"accounts": 3, "balance": "3415.00", "price": "1000.01"}}
    assert manifest["digest"] == manifest_digest(manifest)
    assert not (out / "manifest.sig").exists()
    bundle = json.loads((out / f"accounts/{aid}.json").read_text())
    assert [e["version"] for e in bundle["events"]] == [1, 2, 3, 4]
    assert [e["type"] for e in bundle["decoded"]["events"]][-1] == "PaymentReceived"
    assert bundle["seal"]["account_head"] == {"version": 4, "hash": head.hash.hex()}
    # Not sold without --complete.
    assert service.get_account(ids["ACC-PAYING"]).holder["kind"] == "creditor"
    assert run_verifier(out)[0] == 0


def test_creditor_selection_takes_open_accounts_of_that_creditor_only(
    portfolio: tuple[LedgerService, dict[str, UUID]], sqlite_url: str, tmp_path: Path
) -> None:
    """--creditor: every open account of acme-bank; sold and closed ones are not asked about."""
    out = tmp_path / "sale"
    result = sale_cli(sqlite_url, "--creditor", "acme-bank", "--out", str(out))
    assert result.exit_code == 0, result.output
    refused = {row["reference"] for row in read_csv(out / "refused.csv")}
    assert refused == set(REFUSED) - {"ACC-SOLD", "ACC-CLOSED", "NO-SUCH-REF", "ACC-NEAR"}
    sold = {row["account_reference"] for row in read_csv(out / "accounts.csv")}
    assert sold == {*SELLABLE, "ACC-NEAR"}  # no --limitation-margin: not yet refused
    assert "OTHER-1" not in (out / "accounts.csv").read_text()


def test_complete_sells_once_and_a_rerun_sells_nothing_twice(
    portfolio: tuple[LedgerService, dict[str, UUID]], sqlite_url: str, tmp_path: Path
) -> None:
    """--complete makes the buyer the holder; the same export again records no second sale."""
    service, ids = portfolio
    out = tmp_path / "sale"
    listed = str(accounts_file(tmp_path, ids))
    args = ("--accounts", listed, "--out", str(out), "--limitation-margin", "30")
    first = sale_cli(sqlite_url, *args, "--price", "1000.01", "--complete")
    assert first.exit_code == 0, first.output
    assert "sold: 3 accounts now, 0 already sold in this sale" in first.stdout
    second = sale_cli(sqlite_url, *args, "--price", "1000.01", "--complete")
    assert second.exit_code == 0, second.output
    assert "sold: 0 accounts now, 3 already sold in this sale" in second.stdout
    prices = []
    for ref in SELLABLE:
        account = service.get_account(ids[ref])
        assert account.holder == {"kind": "buyer", "name": BUYER}
        sales = [
            e for e in service.ledger.events.get(ids[ref]) if isinstance(e, Account.SoldToDebtBuyer)
        ]
        assert len(sales) == 1
        prices.append(sales[0].price)
    assert prices == [35140, 29722, 35139]
    rows = read_csv(out / "accounts.csv")
    assert {r["account_status"] for r in rows} == {"sold"}
    assert [r["sale_price"] for r in rows] == ["351.40", "297.22", "351.39"]
    assert json.loads((out / "manifest.json").read_text())["status"] == "completed"
    assert run_verifier(out)[0] == 0


def test_a_sale_needs_a_price_and_a_sellable_account(
    portfolio: tuple[LedgerService, dict[str, UUID]], sqlite_url: str, tmp_path: Path
) -> None:
    """--complete without a price is refused; nothing sellable exits 1 with refused.csv."""
    out = tmp_path / "sale"
    listed = tmp_path / "bad.txt"
    listed.write_text("ACC-CEASED\nACC-DISPUTED\n", encoding="utf-8")
    no_price = sale_cli(sqlite_url, "--accounts", str(listed), "--out", str(out), "--complete")
    assert no_price.exit_code == 2
    assert "give --price or --price-per-account" in no_price.output
    nothing = sale_cli(sqlite_url, "--accounts", str(listed), "--out", str(out))
    assert nothing.exit_code == 1
    assert "nothing can be sold" in nothing.output
    assert {r["reference"] for r in read_csv(out / "refused.csv")} == {"ACC-CEASED", "ACC-DISPUTED"}
    assert not (out / "manifest.json").exists()


def one_line_error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error [invalid_input]: "), result.stderr
    return lines[0]


def test_an_unwritable_out_is_refused_before_anything_is_sold(
    portfolio: tuple[LedgerService, dict[str, UUID]], sqlite_url: str, tmp_path: Path
) -> None:
    """--out that cannot be made a directory: one line naming it, exit 2, nothing sold
    (--complete records the sales before the files are written)."""
    service, ids = portfolio
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    out = blocker / "sale"
    result = sale_cli(
        sqlite_url, "--creditor", "acme-bank", "--out", str(out), "--price", "10", "--complete"
    )
    line = one_line_error(result)
    assert line.startswith(f"error [invalid_input]: cannot write the sale file to {out}: ")
    assert all(service.get_account(ids[r]).holder["kind"] == "creditor" for r in SELLABLE)


def test_a_sale_that_fails_early_leaves_no_directory_behind(
    portfolio: tuple[LedgerService, dict[str, UUID]], sqlite_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "new" / "sale"
    result = sale_cli(sqlite_url, "--creditor", "acme-bank", "--out", str(out), "--price", "x")
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "new").exists()


def test_accounts_file_comments_may_trail_a_reference(
    portfolio: tuple[LedgerService, dict[str, UUID]], sqlite_url: str, tmp_path: Path
) -> None:
    """'#' after a blank starts a comment, as at the start of a line; blanks are ignored."""
    listed = tmp_path / "accounts.txt"
    listed.write_text(
        "# Northwind, March\n"
        "acme-bank/ACC-PLAIN   # trailing comment\n"
        "  ACC-PAYING\t#tab, then a comment  \n"
        "\n"
        "ACC-LATE-PLAN#not-a-comment\n",
        encoding="utf-8",
    )
    out = tmp_path / "sale"
    result = sale_cli(sqlite_url, "--accounts", str(listed), "--out", str(out))
    assert result.exit_code == 0, result.output
    exported = [r["account_reference"] for r in read_csv(out / "accounts.csv")]
    assert exported == ["ACC-PAYING", "ACC-PLAIN"]
    assert [r["reference"] for r in read_csv(out / "refused.csv")] == [
        "ACC-LATE-PLAN#not-a-comment"
    ]
    only_comments = tmp_path / "comments.txt"
    only_comments.write_text("# nothing yet\n   # still nothing\n", encoding="utf-8")
    empty = sale_cli(sqlite_url, "--accounts", str(only_comments), "--out", str(out))
    assert one_line_error(empty) == f"error [invalid_input]: {only_comments} lists no accounts"


def test_selection_is_required_and_exclusive(
    portfolio: tuple[LedgerService, dict[str, UUID]], sqlite_url: str, tmp_path: Path
) -> None:
    out = str(tmp_path / "o1")
    neither = one_line_error(sale_cli(sqlite_url, "--out", out))
    assert neither == "error [invalid_input]: one of --accounts FILE or --creditor C is required"
    listed = tmp_path / "a.txt"
    listed.write_text("ACC-PLAIN\n", encoding="utf-8")
    both = one_line_error(
        sale_cli(sqlite_url, "--accounts", str(listed), "--creditor", "acme-bank", "--out", out)
    )
    assert both == "error [invalid_input]: give either --accounts FILE or --creditor C, not both"
    assert not (tmp_path / "o1").exists()


@pytest.mark.parametrize(
    ("kind", "itemized_on", "charge_off_balance"),
    [
        ("charge_off", date(2025, 11, 30), "1200.00"),
        ("last_statement", date(2025, 11, 30), "1200.00"),  # on the charge-off date
        ("last_statement", date(2025, 12, 31), ""),
    ],
)
def test_charge_off_balance_when_itemized_on_the_charge_off_date(
    memory_service: LedgerService,
    tmp_path: Path,
    kind: str,
    itemized_on: date,
    charge_off_balance: str,
) -> None:
    """The amount at itemization is the charge-off balance when the itemization is the
    charge-off or falls on its date (2025-11-30); otherwise the column is left empty."""
    memory_service.place_account(
        placement("ACC-1", itemization_kind=kind, itemization_date=itemized_on), debtor=JANE
    )
    out = tmp_path / "sale"
    export_sale(memory_service, SaleRequest(buyer=BUYER, out=out, references=["ACC-1"]))
    (row,) = read_csv(out / "accounts.csv")
    assert (row["itemization_kind"], row["charge_off_date"]) == (kind, "2025-11-30")
    assert row["itemization_balance"] == "1200.00"
    assert row["charge_off_balance"] == charge_off_balance


def test_price_split_is_exact_and_deterministic() -> None:
    """Parts add up to the price exactly, in proportion, the odd cents to the largest remainders."""
    assert split(100, [1, 1, 1]) == [34, 33, 33]
    assert split(100001, [120000, 101500, 120000]) == [35140, 29722, 35139]
    assert split(5, [0, 0]) == [3, 2]
    for total in (0, 1, 99, 123457):
        for weights in ([7, 3, 1], [1] * 9, [10**12, 1, 1]):
            parts = split(total, weights)
            assert sum(parts) == total and parts == split(total, weights)


def test_export_on_each_backend_is_chain_exact_and_logs_no_personal_data(
    service: LedgerService, clock: MovableClock, tmp_path: Path
) -> None:
    """On SQLite and PostgreSQL: the verifier's stdlib hash equals the ledger's for every
    exported event, the fresh export verifies, and no log line names the debtor."""
    aid = service.place_account(placement("ACC-1"), debtor=JANE).id
    service.post_payment(aid, usd("10.00"), method="card")
    out = tmp_path / "sale"
    with capture_logs() as logs:
        result = export_sale(
            service,
            SaleRequest(
                buyer=BUYER, out=out, references=["ACC-1"], price_per_account="50.00", complete=True
            ),
        )
    assert result.exported == [aid] and result.newly_sold == 1
    assert "Jane" not in repr(logs) and "jane.debtor" not in repr(logs)
    rows = service.ledger.rows().stream(aid)
    bundle = json.loads((out / f"accounts/{aid}.json").read_text())
    assert len(bundle["events"]) == len(rows) == 3
    for row, event in zip(rows, bundle["events"], strict=True):
        assert row.prev_hash is not None and row.hash is not None
        state = base64.b64decode(event["state"])
        assert state == row.state
        ours = sale_verify.event_hash(
            event["originator_id"], row.version, row.topic, state, row.prev_hash
        )
        assert ours == event_hash(
            row.originator_id, row.version, row.topic, row.state, row.prev_hash
        )
        assert ours == row.hash
    assert sale_verify.verify_sale(out).ok
    assert service.get_account(aid).holder == {"kind": "buyer", "name": BUYER}


# ---------------------------------------------------------------- verifier


@pytest.fixture
def fresh_sale(
    portfolio: tuple[LedgerService, dict[str, UUID]], sqlite_url: str, tmp_path: Path
) -> tuple[Path, dict[str, UUID]]:
    """A signed sale file (key "k-right") of the three sellable accounts."""
    _, ids = portfolio
    out = tmp_path / "fresh"
    result = sale_cli(
        sqlite_url,
        "--creditor",
        "acme-bank",
        "--limitation-margin",
        "30",
        "--out",
        str(out),
        env={"ARREARS_SALE_SIGNING_KEY": "k-right"},
    )
    assert result.exit_code == 0, result.output
    assert "manifest signed" in result.stdout
    return out, ids


def copy_of(sale: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(sale, target)
    return target


def redigest(sale: Path) -> None:
    """Re-list every file's SHA-256 and re-digest the manifest, as a forger without the
    signing key could: only the hash chain (and the seal head) can catch what was changed."""
    manifest = json.loads((sale / "manifest.json").read_text())
    for entry in manifest["files"]:
        data = (sale / entry["path"]).read_bytes()
        entry["sha256"], entry["bytes"] = sha256_hex(data), len(data)
    manifest["digest"] = manifest_digest(manifest)
    (sale / "manifest.json").write_bytes(render_json(manifest))
    (sale / "manifest.sig").unlink()


def edit_bundle(sale: Path, account_id: UUID, change: Any) -> None:
    path = sale / f"accounts/{account_id}.json"
    bundle = json.loads(path.read_text())
    change(bundle["events"])
    path.write_bytes(render_json(bundle))


def test_verifier_passes_a_fresh_export_with_the_standard_library_alone(
    fresh_sale: tuple[Path, dict[str, UUID]],
) -> None:
    """OK via -m; OK as a lone file under ``python -I -S``; OK with Arrears' packages blocked."""
    sale, _ = fresh_sale
    code, output = run_verifier(sale, "--key-env", "KEY", env={"KEY": "k-right"})
    assert code == 0, output
    assert output.startswith("OK: sale ") and "3 accounts" in output
    assert "signature verified" in output
    isolated = subprocess.run(
        [sys.executable, "-I", "-S", str(ROOT / "adapters/debt_sale/verify.py"), str(sale)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert isolated.returncode == 0, isolated.stdout + isolated.stderr
    blocker = (
        "import runpy, sys\n"
        "BLOCKED = {'ledger', 'plugins', 'cli', 'bootstrap', 'msgpack', 'eventsourcing',"
        " 'click', 'structlog'}\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "sys.argv = ['verify', *sys.argv[1:]]\n"
        "runpy.run_module('adapters.debt_sale.verify', run_name='__main__', alter_sys=True)\n"
    )
    blocked = subprocess.run(
        [sys.executable, "-S", "-c", blocker, str(sale)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert blocked.returncode == 0, blocked.stdout + blocked.stderr


def test_verifier_names_the_file_of_every_single_byte_change(
    fresh_sale: tuple[Path, dict[str, UUID]], tmp_path: Path
) -> None:
    """Any one byte changed, anywhere in the CSV, the manifest or a bundle, fails and is named."""
    sale, ids = fresh_sale
    bundle = f"accounts/{ids['ACC-PAYING']}.json"
    for name in ("accounts.csv", "manifest.json", bundle, "refused.csv"):
        size = (sale / name).stat().st_size
        for position in (0, size // 3, size // 2, (2 * size) // 3, size - 2):
            altered = copy_of(sale, tmp_path, f"flip-{name.replace('/', '_')}-{position}")
            data = bytearray((altered / name).read_bytes())
            data[position] ^= 0x01
            (altered / name).write_bytes(bytes(data))
            code, output = run_verifier(altered)
            assert code == 1, (name, position, output)
            assert f"FAIL {name}" in output, (name, position, output)


def test_verifier_names_the_event_a_forger_changed(
    fresh_sale: tuple[Path, dict[str, UUID]], tmp_path: Path
) -> None:
    """With every digest recomputed, the chain still names the altered, removed or moved event."""
    sale, ids = fresh_sale
    aid = ids["ACC-PAYING"]
    name = f"accounts/{aid}.json"

    def state_byte(events: list[dict[str, Any]]) -> None:
        state = bytearray(base64.b64decode(events[1]["state"]))
        state[len(state) // 2] ^= 0x01
        events[1]["state"] = base64.b64encode(bytes(state)).decode()

    def hash_char(events: list[dict[str, Any]]) -> None:
        digest = events[2]["hash"]
        events[2]["hash"] = ("1" if digest[7] == "0" else "0").join([digest[:7], digest[8:]])

    def remove(events: list[dict[str, Any]]) -> None:
        del events[2]

    def reorder(events: list[dict[str, Any]]) -> None:
        events[1], events[2] = events[2], events[1]

    def truncate(events: list[dict[str, Any]]) -> None:
        del events[-1]

    cases = {
        "state": (state_byte, ["event version 2: hash does not match the stored bytes"]),
        "hash": (
            hash_char,
            [
                "event version 3: hash does not match the stored bytes",
                "event version 4: prev_hash is not the hash of the event before it",
            ],
        ),
        "removed": (
            remove,
            [
                "event version 4: follows version 2: version 3 is missing or out of place",
                "event version 4: prev_hash is not the hash of the event before it",
            ],
        ),
        "reordered": (
            reorder,
            [
                "event version 3: follows version 1: version 2 is missing or out of place",
                "event version 3: prev_hash is not the hash of the event before it",
                "event version 2: comes after version 3: events reordered or duplicated",
            ],
        ),
        "truncated": (truncate, ["seal: the seal recorded version 4"]),
    }
    for case, (change, expected) in cases.items():
        altered = copy_of(sale, tmp_path, case)
        edit_bundle(altered, aid, change)
        code, output = run_verifier(altered)
        assert code == 1, (case, output)
        assert f"FAIL {name}: event" in output or f"FAIL {name}: seal" in output, (case, output)
        for line in expected:
            assert f"FAIL {name}: {line}" in output, (case, output)
        redigest(altered)
        code, output = run_verifier(altered)
        assert code == 1, (case, output)
        assert f"FAIL {name}: SHA-256" not in output  # the digests were forged to match
        for line in expected:
            assert f"FAIL {name}: {line}" in output, (case, output)


def test_verifier_checks_the_signature_and_files_added(
    fresh_sale: tuple[Path, dict[str, UUID]], tmp_path: Path
) -> None:
    """A wrong key, an unset key variable, or a file slipped in fail, each named."""
    sale, _ = fresh_sale
    code, output = run_verifier(sale, "--key-env", "KEY", env={"KEY": "k-wrong"})
    assert code == 1
    assert "FAIL manifest.sig: HMAC-SHA256 does not match" in output
    code, output = run_verifier(sale, "--key-env", "UNSET_KEY")
    assert code == 1
    assert "FAIL manifest.sig: cannot check: environment variable UNSET_KEY is not set" in output
    forged = copy_of(sale, tmp_path, "forged")
    redigest(forged)
    (forged / "manifest.sig").write_text("0" * 64 + "\n")
    code, output = run_verifier(forged, "--key-env", "KEY", env={"KEY": "k-right"})
    assert code == 1 and "FAIL manifest.sig" in output
    added = copy_of(sale, tmp_path, "added")
    (added / "accounts" / "extra.json").write_text("{}")
    code, output = run_verifier(added)
    assert code == 1
    assert "FAIL accounts/extra.json: not listed in the manifest" in output


def test_docs_name_every_column_and_refusal_code() -> None:
    """docs/adapters.md's debt sale section documents each CSV column and refusal code."""
    doc = (ROOT / "docs" / "adapters.md").read_text(encoding="utf-8")
    section = doc.split("## Debt sale", 1)[1].split("\n## ", 1)[0]
    codes = {text.split(":")[0] for text in REFUSED.values()} | {"sale_failed"}
    for name in [*ACCOUNT_COLUMNS, *sorted(codes)]:
        assert f"`{name}`" in section, name
