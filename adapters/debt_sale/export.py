"""The sale file for a debt buyer, and with ``complete`` the sale itself.

Steps: select the accounts, refuse (with reasons) those that must not be sold,
price them, record the sale on each (``complete``), seal the ledger so every
exported event is covered, then write ``accounts.csv``, ``refused.csv``, one
history bundle per account and the manifest (with its HMAC when a key is set).

A sale is identified by ``sale_id`` (the portfolio reference recorded on each
account): given, or the one already in ``DIR``'s manifest, or derived from the
buyer and ``DIR``.  An account already sold in this sale stays in it and is
never sold again, so re-running the same export resumes or repeats it safely.
Personal data goes into the sale file only, never into a log line.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import structlog

from adapters.debt_sale.bundle import AccountExport, export_account, sealed_heads
from adapters.debt_sale.eligibility import Reason, refusal_reasons
from adapters.debt_sale.pricing import account_prices, parse_price
from adapters.debt_sale.verify import (
    ACCOUNTS_CSV,
    BUNDLE_DIR,
    MANIFEST,
    MANIFEST_FORMAT,
    REFUSED_CSV,
    SIGNATURE,
    load_json,
    manifest_digest,
    render_json,
    sha256_hex,
    signature,
)
from ledger import errors
from ledger.clock import ensure_utc
from ledger.domain.account import Account
from ledger.domain.debtor import Debtor
from ledger.domain.ids import account_id as derive_account_id
from ledger.domain.lifecycle import OPEN_STATUSES, Status
from ledger.logs import register_personal_values
from ledger.money import Money, format_minor
from ledger.services import LedgerService

log = structlog.get_logger("arrears.sale")

ACCOUNT_COLUMNS = (
    "sale_id",
    "account_id",
    "account_reference",
    "creditor",
    "original_creditor",
    "currency",
    "charge_off_date",
    "charge_off_balance",
    "itemization_date",
    "itemization_kind",
    "itemization_balance",
    "interest_since_itemization",
    "fees_since_itemization",
    "payments_credits_since_itemization",
    "principal",
    "interest",
    "fees",
    "total",
    "last_payment_date",
    "last_payment_amount",
    "debtor_name",
    "debtor_addresses",
    "debtor_phones",
    "debtor_emails",
    "account_status",
    "placed_date",
    "sale_price",
    "history_file",
    "history_head_version",
    "history_head_hash",
)
REFUSED_COLUMNS = ("reference", "account_id", "reasons")
_OWN = {MANIFEST, SIGNATURE, ACCOUNTS_CSV, REFUSED_CSV, BUNDLE_DIR}


@dataclass(frozen=True)
class SaleRequest:
    buyer: str
    out: Path
    references: Sequence[str] = ()
    creditors: Sequence[str] = ()
    price: str | None = None
    price_per_account: str | None = None
    complete: bool = False
    seller: str | None = None
    sale_id: str | None = None
    signing_key: bytes | None = None
    limitation_margin: timedelta = timedelta(0)


@dataclass(frozen=True)
class Refused:
    reference: str
    account_id: UUID | None
    reasons: tuple[Reason, ...]

    def reasons_text(self) -> str:
        return "; ".join(str(r) for r in self.reasons)


@dataclass
class SaleResult:
    sale_id: str
    out: Path
    exported: list[UUID] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    newly_sold: int = 0
    already_sold: int = 0
    signed: bool = False
    manifest_digest: str | None = None
    seal_digest: str | None = None


@dataclass
class _Candidate:
    account: Account
    debtor: Debtor | None
    recorded_price: int | None = None  # set when already sold in this sale

    @property
    def key(self) -> str:
        return str(self.account.id)


def derived_sale_id(buyer: str, out: Path) -> str:
    digest = hashlib.sha256(f"{buyer}\x1f{out.resolve()}".encode()).hexdigest()
    return f"sale-{digest[:16]}"


def _prepare_out(request: SaleRequest) -> str:
    """The sale id; refuses a DIR holding anything but this buyer's sale file."""
    out = request.out
    if out.exists() and not out.is_dir():
        raise errors.ValidationError(f"{out} is a file; --out needs a directory", field="out")
    previous: Any = None
    if (out / MANIFEST).is_file():
        try:
            previous = load_json((out / MANIFEST).read_bytes())
        except (UnicodeDecodeError, ValueError):
            previous = None
    if isinstance(previous, dict):
        if previous.get("buyer") != request.buyer:
            raise errors.ValidationError(
                f"{out} holds a sale to {previous.get('buyer')!r}; choose another --out",
                field="out",
            )
        old_id = previous.get("sale_id")
        if request.sale_id and old_id and request.sale_id != old_id:
            raise errors.ValidationError(
                f"{out} holds sale {old_id}; give that --sale-id or another --out", field="out"
            )
        if isinstance(old_id, str) and old_id:
            return old_id
    elif out.is_dir():
        foreign = [p.name for p in out.iterdir() if p.name not in _OWN and p.suffix != ".tmp"]
        if foreign:
            raise errors.ValidationError(
                f"{out} is not empty and holds no sale file ({', '.join(sorted(foreign)[:3])}"
                "...); choose an empty or new directory",
                field="out",
            )
    return request.sale_id or derived_sale_id(request.buyer, out)


_COMMENT = re.compile(r"(?:^|\s)#.*$", re.DOTALL)


def account_reference(line: str) -> str:
    """The account a line of an accounts file names, or ``""`` for none: ``#`` at the
    start of the line or after a blank starts a comment (``ACC#7`` is a reference)."""
    return _COMMENT.sub("", line).strip()


def _sale_of(service: LedgerService, account_id: UUID) -> Account.SoldToDebtBuyer | None:
    sale = None
    for event in service.ledger.events.get(account_id):
        if isinstance(event, Account.SoldToDebtBuyer):
            sale = event
    return sale


def _selected(
    service: LedgerService, request: SaleRequest
) -> tuple[list[tuple[str, UUID]], list[Refused]]:
    chosen: list[tuple[str, UUID]] = []
    refused: list[Refused] = []
    if request.creditors:
        for aid, reference in service.iter_account_references():
            if any(derive_account_id(c, reference) == aid for c in request.creditors):
                chosen.append((reference, aid))
        return chosen, refused
    for line in request.references:
        ref = account_reference(line)
        if not ref:
            continue
        try:
            chosen.append((ref, service.resolve_account(ref)))
        except (errors.NotFound, errors.ValidationError) as e:
            refused.append(Refused(ref, None, (Reason("not_found", e.message),)))
    return chosen, refused


def _screen(
    service: LedgerService, request: SaleRequest, sale_id: str
) -> tuple[list[_Candidate], list[Refused]]:
    today = ensure_utc(service.clock.now()).date()
    chosen, refused = _selected(service, request)
    candidates: dict[UUID, _Candidate] = {}
    for reference, aid in chosen:
        if aid in candidates or any(r.account_id == aid for r in refused):
            continue
        account = service.get_account(aid)
        sale = _sale_of(service, aid) if account.status == Status.SOLD else None
        if sale is not None and (sale.buyer, sale.portfolio_reference) == (request.buyer, sale_id):
            candidates[aid] = _Candidate(
                account, service.debtor_of(account, fresh=True), sale.price
            )
            continue
        if request.creditors and Status(account.status) not in OPEN_STATUSES:
            continue  # "every open account of the creditor": closed and sold ones are not asked
        debtor = service.debtor_of(account, fresh=True)
        reasons = refusal_reasons(
            account,
            debtor,
            today,
            sale_of=(sale.buyer, sale.portfolio_reference) if sale is not None else None,
            limitation_margin=request.limitation_margin,
        )
        if reasons:
            refused.append(Refused(reference, aid, tuple(reasons)))
        else:
            candidates[aid] = _Candidate(account, debtor)
    ordered = sorted(
        candidates.values(), key=lambda c: (c.account.creditor, c.account.reference, c.key)
    )
    return ordered, refused


def _prices(
    request: SaleRequest, candidates: list[_Candidate]
) -> tuple[str | None, dict[str, int]]:
    text = request.price if request.price is not None else request.price_per_account
    if text is None or not candidates:
        return None, {}
    price = parse_price(text, {c.account.currency for c in candidates})
    fixed = {c.key: c.recorded_price for c in candidates if c.recorded_price is not None}
    prices = account_prices(
        [c.key for c in candidates],
        {c.key: c.account.total_balance for c in candidates},
        fixed,
        total=price.minor if request.price is not None else None,
        per_account=price.minor if request.price_per_account is not None else None,
    )
    return price.currency, prices


def _write(path: Path, data: bytes) -> None:
    """Whole or not at all: a crash never leaves half a file behind a good name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _csv(columns: Sequence[str], rows: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(columns))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _address(address: dict[str, str]) -> str:
    return ", ".join(str(v) for v in address.values() if v)


def account_row(
    sale_id: str, export: AccountExport, debtor: Debtor | None, price: int | None
) -> dict[str, str]:
    account, item = export.account, export.itemization
    cur = account.currency

    def money(minor: int | None) -> str:
        return "" if minor is None else format_minor(minor, cur)

    # The amount at itemization is the charge-off balance when the itemization is the
    # charge-off, or falls on the charge-off date.
    at_charge_off = account.itemization["kind"] == "charge_off" or (
        account.charge_off_date is not None and item.itemization_date == account.charge_off_date
    )
    return {
        "sale_id": sale_id,
        "account_id": str(account.id),
        "account_reference": account.reference,
        "creditor": account.creditor,
        "original_creditor": account.original_creditor,
        "currency": cur,
        "charge_off_date": account.charge_off_date.isoformat() if account.charge_off_date else "",
        "charge_off_balance": money(item.amount_at_itemization) if at_charge_off else "",
        "itemization_date": item.itemization_date.isoformat(),
        "itemization_kind": item.itemization_kind,
        "itemization_balance": money(item.amount_at_itemization),
        "interest_since_itemization": money(item.interest_since),
        "fees_since_itemization": money(item.fees_since),
        "payments_credits_since_itemization": money(item.payments_credits_since),
        "principal": money(account.balance["principal"]),
        "interest": money(account.balance["interest"]),
        "fees": money(account.balance["fees"]),
        "total": money(account.total_balance),
        "last_payment_date": (
            account.last_payment_date.isoformat() if account.last_payment_date else ""
        ),
        "last_payment_amount": money(account.last_payment_amount),
        "debtor_name": debtor.name if debtor else "",
        "debtor_addresses": " | ".join(_address(a) for a in debtor.addresses) if debtor else "",
        "debtor_phones": " | ".join(debtor.phones) if debtor else "",
        "debtor_emails": " | ".join(debtor.emails) if debtor else "",
        "account_status": account.status,
        "placed_date": account.placed_at.date().isoformat() if account.placed_at else "",
        "sale_price": money(price),
        "history_file": f"{BUNDLE_DIR}/{account.id}.json",
        "history_head_version": str(export.head_version),
        "history_head_hash": export.head_hash,
    }


def _refused_rows(refused: list[Refused]) -> list[dict[str, str]]:
    return [
        {
            "reference": r.reference,
            "account_id": str(r.account_id) if r.account_id else "",
            "reasons": r.reasons_text(),
        }
        for r in refused
    ]


def _complete(
    service: LedgerService,
    request: SaleRequest,
    sale_id: str,
    candidates: list[_Candidate],
    currency: str,
    prices: dict[str, int],
    result: SaleResult,
) -> list[_Candidate]:
    kept: list[_Candidate] = []
    for c in candidates:
        if c.recorded_price is not None:
            result.already_sold += 1
            kept.append(c)
            continue
        try:
            service.sell(
                c.account.id,
                buyer=request.buyer,
                price=Money(prices[c.key], currency),
                portfolio_reference=sale_id,
            )
        except errors.LedgerError as e:
            result.refused.append(
                Refused(c.account.reference, c.account.id, (Reason("sale_failed", e.message),))
            )
            continue
        c.recorded_price = prices[c.key]
        result.newly_sold += 1
        kept.append(c)
    return kept


def _exports(
    service: LedgerService, candidates: list[_Candidate]
) -> tuple[str, list[AccountExport]]:
    """Seal, then read each account as that seal covers it (sealing again if one moved on)."""
    for attempt in range(3):
        sealed = service.seal()
        heads = sealed_heads(service.ledger)
        try:
            exports = []
            for c in candidates:
                head = heads.get(c.account.id)
                if head is None:
                    raise errors.ConcurrencyConflict(f"no seal covers account {c.account.id}")
                exports.append(export_account(service.ledger, c.account.id, head))
            return sealed.digest, exports
        except errors.ConcurrencyConflict:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def export_sale(service: LedgerService, request: SaleRequest) -> SaleResult:
    """Write the sale file for ``request`` (and record the sale when ``complete``)."""
    if not request.buyer.strip():
        raise errors.ValidationError("the buyer's name is required", field="buyer")
    if not request.references and not request.creditors:
        raise errors.ValidationError("an accounts file or creditors are required")
    if request.references and request.creditors:
        raise errors.ValidationError("give either an accounts file or creditors, not both")
    if request.price is not None and request.price_per_account is not None:
        raise errors.ValidationError("give --price or --price-per-account, not both")
    if request.complete and request.price is None and request.price_per_account is None:
        raise errors.ValidationError(
            "completing a sale records its price: give --price or --price-per-account",
            field="price",
        )
    out = request.out
    try:
        sale_id = _prepare_out(request)
    except OSError as e:
        raise errors.ValidationError(f"cannot use {out}: {e.strerror or e}", field="out") from None
    created = _writable_out(out)
    try:
        return _export(service, request, sale_id)
    except BaseException:
        # No trace of a sale that failed before writing anything: the directories
        # made for it go again (only while empty).
        for directory in created:
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise


def _writable_out(out: Path) -> list[Path]:
    """Make sure the sale file can be written to ``out`` before anything is recorded
    (``--complete`` sells the accounts first); the directories made for it, deepest first."""
    probe = out / f".arrears-{os.getpid()}.tmp"
    try:
        created = [d for d in (out, *out.parents) if not d.exists()]
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise errors.ValidationError(
            f"cannot write the sale file to {out}: {e.strerror or e}", field="out"
        ) from None
    return created


def _export(service: LedgerService, request: SaleRequest, sale_id: str) -> SaleResult:
    out = request.out
    candidates, refused = _screen(service, request, sale_id)
    result = SaleResult(sale_id=sale_id, out=out, refused=refused)
    currency, prices = _prices(request, candidates)
    if request.complete and candidates:
        assert currency is not None
        candidates = _complete(service, request, sale_id, candidates, currency, prices, result)
    if not candidates:
        if not (out / MANIFEST).exists():  # never break an existing sale file
            _write(out / REFUSED_CSV, _csv(REFUSED_COLUMNS, _refused_rows(result.refused)))
        log.info("sale_refused", sale_id=sale_id, buyer=request.buyer, refused=len(refused))
        return result
    result.seal_digest, exports = _exports(service, candidates)
    _write_sale(service, request, result, candidates, exports, prices)
    log.info(
        "sale_exported",
        sale_id=sale_id,
        buyer=request.buyer,
        accounts=len(result.exported),
        refused=len(result.refused),
        sold=result.newly_sold,
    )
    return result


def _write_sale(
    service: LedgerService,
    request: SaleRequest,
    result: SaleResult,
    candidates: list[_Candidate],
    exports: list[AccountExport],
    prices: dict[str, int],
) -> None:
    out = request.out
    rows: list[dict[str, str]] = []
    totals: dict[str, dict[str, Any]] = {}
    files: dict[str, bytes] = {}
    for c, export in zip(candidates, exports, strict=True):
        debtor = c.debtor
        if debtor is not None:
            register_personal_values(debtor.name, *debtor.phones, *debtor.emails)
        price = c.recorded_price if c.recorded_price is not None else prices.get(c.key)
        rows.append(account_row(result.sale_id, export, debtor, price))
        files[f"{BUNDLE_DIR}/{c.key}.json"] = render_json(export.bundle)
        cur = export.account.currency
        total = totals.setdefault(cur, {"accounts": 0, "balance": 0, "price": None})
        total["accounts"] += 1
        total["balance"] += export.account.total_balance
        if price is not None:
            total["price"] = (total["price"] or 0) + price
        result.exported.append(export.account.id)
    files[ACCOUNTS_CSV] = _csv(ACCOUNT_COLUMNS, rows)
    files[REFUSED_CSV] = _csv(REFUSED_COLUMNS, _refused_rows(result.refused))
    for name, data in files.items():
        _write(out / name, data)
    bundles = out / BUNDLE_DIR
    for stale in bundles.iterdir():
        if f"{BUNDLE_DIR}/{stale.name}" not in files and stale.is_file():
            stale.unlink()
    all_sold = all(c.recorded_price is not None for c in candidates)
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "sale_id": result.sale_id,
        "buyer": request.buyer,
        "seller": request.seller or ", ".join(sorted({e.account.creditor for e in exports})),
        "created_at": ensure_utc(service.clock.now()).isoformat(),
        "status": "completed" if all_sold else "offered",
        "account_count": len(rows),
        "refused_count": len(result.refused),
        "totals": {
            cur: {
                "accounts": t["accounts"],
                "balance": format_minor(t["balance"], cur),
                "price": None if t["price"] is None else format_minor(t["price"], cur),
            }
            for cur, t in sorted(totals.items())
        },
        "seal": result.seal_digest,
        "files": [
            {"path": name, "sha256": sha256_hex(data), "bytes": len(data)}
            for name, data in sorted(files.items())
        ],
    }
    manifest["digest"] = manifest_digest(manifest)
    result.manifest_digest = manifest["digest"]
    body = render_json(manifest)
    _write(out / MANIFEST, body)
    if request.signing_key:
        _write(out / SIGNATURE, f"{signature(body, request.signing_key)}\n".encode())
        result.signed = True
    elif (out / SIGNATURE).exists():
        (out / SIGNATURE).unlink()  # a signature of an earlier manifest would not match
