"""Account facts and life-cycle steps: charges, waivers, disputes, complaints, cease,
consent, representation, agencies, law firms, sale, notes, closure.

Each is one POST that records one fact (or refuses with a 422 and the rule's code)
and answers with the account as it is after it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from api import views
from api.contract import ACCOUNT_RESULT, ACCOUNT_SUMMARY, STRING
from api.endpoints import V1, Call, Reply
from api.money import parse_amount, parse_basis_points
from api.schemas import (
    boolean,
    choice,
    day,
    moment_or_day,
    money,
    name_string,
    obj,
    parse_moment_or_day,
    parse_reported,
    text,
)
from ledger.clock import ensure_utc
from ledger.domain.account import CHANNELS, DISPUTE_OUTCOMES, LEGAL_STATUSES
from ledger.domain.lifecycle import CLOSE_REASONS
from ledger.readmodels.sqlstore import from_text
from ledger.validation_period import within_validation_period

REASON = text("Why", max_length=500)


def _done(call: Call, status: int = 201, **extra: Any) -> Reply:
    return Reply(status, {**extra, "account": views.account_summary(call.summary())})


def _result(description: str, **ids: dict[str, Any]) -> dict[int, tuple[str, dict[str, Any]]]:
    if not ids:
        return {201: (description, ACCOUNT_RESULT)}
    return {
        201: (
            description,
            obj(
                {**ids, "account": ACCOUNT_SUMMARY},
                required=(*ids, "account"),
                closed=False,
            ),
        )
    }


def _day(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


# -------------------------------------------------------------- balance changes


@V1.route(
    "POST",
    "/v1/accounts/{id}/charges",
    tag="balance",
    action="account.write",
    body=obj(
        {
            "component": choice(("interest", "fees"), "What is charged"),
            "amount": money("The amount charged."),
            "reason": REASON,
        },
        required=("component", "amount", "reason"),
        description="Interest accrued or a fee assessed.",
    ),
    responses=_result("The charge was recorded"),
)
def add_charge(call: Call) -> Reply:
    """Charge interest or a fee to the account."""
    summary = call.account()
    amount = parse_amount(call.body["amount"], str(summary["currency"]), "amount")
    call.service.adjust_balance(
        call.account_id,
        component=call.body["component"],
        direction="debit",
        amount=amount,
        reason=call.body["reason"],
    )
    return _done(call)


@V1.route(
    "POST",
    "/v1/accounts/{id}/waivers",
    tag="balance",
    action="account.write",
    body=obj(
        {
            "component": choice(("principal", "interest", "fees"), "What is forgiven"),
            "amount": money("The amount forgiven."),
            "reason": REASON,
        },
        required=("component", "amount", "reason"),
        description="Part of the debt forgiven.",
    ),
    responses=_result("The waiver was recorded"),
)
def waive(call: Call) -> Reply:
    """Forgive part of the debt (principal, interest or fees)."""
    summary = call.account()
    component = call.body["component"]
    amount = parse_amount(call.body["amount"], str(summary["currency"]), "amount")
    kind = {"principal": "principal", "interest": "interest", "fees": "fee"}[component]
    call.service.waive(
        call.account_id, kind=kind, reason=call.body["reason"], amounts={component: amount}
    )
    return _done(call)


# ------------------------------------------------------------------- disputes


@V1.route(
    "POST",
    "/v1/accounts/{id}/disputes",
    tag="disputes",
    action="account.write",
    body=obj(
        {
            "reason": REASON,
            "received_at": moment_or_day("When the dispute was received"),
            "written": boolean("Received in writing"),
        },
        required=("reason", "received_at", "written"),
        description="A dispute of the debt. A written one received within the validation "
        "period pauses collection until verification is provided.",
    ),
    responses=_result("The dispute was recorded", dispute_id=STRING),
)
def raise_dispute(call: Call) -> Reply:
    """Record a dispute of the debt."""
    summary = call.account()
    received = parse_reported(
        call.body["received_at"], "received_at", ensure_utc(call.service.clock.now())
    )
    placed = from_text(summary["placed_at"]).date() if summary.get("placed_at") else received.date()
    _, dispute_id = call.service.raise_dispute(
        call.account_id,
        call.body["reason"],
        within_validation_period=within_validation_period(
            placed, received.date(), written=call.body["written"]
        ),
        received_at=received,
        written=call.body["written"],
    )
    return _done(call, dispute_id=dispute_id)


@V1.route(
    "POST",
    "/v1/accounts/{id}/disputes/{dispute_id}/verification",
    tag="disputes",
    action="account.write",
    body=obj(
        {"method": name_string("How the debt was verified (default documents)", max_length=100)},
        description="Verification of the debt was sent to the debtor.",
    ),
    responses=_result("The verification was recorded", dispute_id=STRING),
)
def verify_dispute(call: Call) -> Reply:
    """Record that verification of a disputed debt was provided."""
    call.account()
    dispute_id = call.path["dispute_id"]
    call.service.provide_verification(
        call.account_id, dispute_id, call.body.get("method", "documents")
    )
    return _done(call, dispute_id=dispute_id)


@V1.route(
    "POST",
    "/v1/accounts/{id}/disputes/{dispute_id}/resolution",
    tag="disputes",
    action="account.write",
    body=obj(
        {"outcome": choice(DISPUTE_OUTCOMES, "How it ended"), "note": REASON},
        required=("outcome",),
    ),
    responses=_result("The dispute was resolved", dispute_id=STRING),
)
def resolve_dispute(call: Call) -> Reply:
    """Resolve a dispute."""
    call.account()
    dispute_id = call.path["dispute_id"]
    call.service.resolve_dispute(
        call.account_id, dispute_id, call.body["outcome"], call.body.get("note", "")
    )
    return _done(call, dispute_id=dispute_id)


# ----------------------------------------------------------------- complaints


@V1.route(
    "POST",
    "/v1/accounts/{id}/complaints",
    tag="complaints",
    action="account.write",
    body=obj(
        {
            "channel": name_string("How it was received", max_length=50),
            "category": name_string("What it is about", max_length=100),
            "description": text("What the debtor said (kept as a note on the account)"),
        },
        required=("channel", "category"),
    ),
    responses=_result("The complaint was recorded", complaint_id=STRING),
)
def receive_complaint(call: Call) -> Reply:
    """Record a complaint."""
    call.account()
    _, complaint_id = call.service.receive_complaint(
        call.account_id, channel=call.body["channel"], category=call.body["category"]
    )
    description = call.body.get("description", "").strip()
    if description:
        call.service.add_note(call.account_id, f"complaint {complaint_id}: {description}")
    return _done(call, complaint_id=complaint_id)


@V1.route(
    "POST",
    "/v1/accounts/{id}/complaints/{complaint_id}/resolution",
    tag="complaints",
    action="account.write",
    body=obj({"outcome": name_string("How it ended", max_length=200)}, required=("outcome",)),
    responses=_result("The complaint was resolved", complaint_id=STRING),
)
def resolve_complaint(call: Call) -> Reply:
    """Resolve a complaint."""
    call.account()
    complaint_id = call.path["complaint_id"]
    call.service.resolve_complaint(call.account_id, complaint_id, call.body["outcome"])
    return _done(call, complaint_id=complaint_id)


# ---------------------------------------------------------- what the debtor said


@V1.route(
    "POST",
    "/v1/accounts/{id}/cease",
    tag="compliance",
    action="account.write",
    body=obj(
        {
            "received_at": moment_or_day("When the request reached us"),
            "received_via": choice(CHANNELS, "How (default letter)"),
        },
        description="The debtor asked, in writing, that collection communications stop.",
    ),
    responses=_result("The cease request was recorded"),
)
def receive_cease(call: Call) -> Reply:
    """Record a request to cease communication."""
    call.account()
    received = (
        parse_reported(
            call.body["received_at"], "received_at", ensure_utc(call.service.clock.now())
        )
        if "received_at" in call.body
        else None
    )
    call.service.receive_cease(
        call.account_id, call.body.get("received_via", "letter"), received_at=received
    )
    return _done(call)


@V1.route(
    "POST",
    "/v1/accounts/{id}/consents",
    tag="compliance",
    action="account.write",
    body=obj(
        {
            "channel": choice(CHANNELS, "The channel"),
            "granted": boolean("True: consent given; false: withdrawn (opt-out)"),
            "evidence": text("How we know (default: recorded through the API)", max_length=500),
        },
        required=("channel", "granted"),
    ),
    responses=_result("The consent was recorded"),
)
def record_consent(call: Call) -> Reply:
    """Record consent to (or an opt-out from) a channel."""
    call.account()
    evidence = call.body.get("evidence") or "recorded through the API"
    if call.body["granted"]:
        call.service.give_consent(call.account_id, call.body["channel"], evidence)
    else:
        call.service.revoke_consent(call.account_id, call.body["channel"], evidence)
    return _done(call)


@V1.route(
    "POST",
    "/v1/accounts/{id}/attorney",
    tag="compliance",
    action="account.write",
    body=obj(
        {
            "firm": name_string("The debtor's attorney's firm"),
            "attorney_reference": name_string("Their reference", max_length=100),
        },
        description="The debtor is represented by an attorney: contact them, not the debtor.",
    ),
    responses=_result("The representation was recorded"),
)
def notify_attorney(call: Call) -> Reply:
    """Record that the debtor is represented by an attorney."""
    call.account()
    call.service.notify_attorney(
        call.account_id, call.body.get("firm", ""), call.body.get("attorney_reference")
    )
    return _done(call)


@V1.route(
    "POST",
    "/v1/accounts/{id}/bankruptcy",
    tag="compliance",
    action="account.write",
    body=obj(
        {
            "chapter": choice(("7", "11", "12", "13", "unknown"), "Bankruptcy chapter"),
            "case_number": name_string("Court case number", max_length=100),
            "filed_on": day("When it was filed (default today)"),
        },
        description="The debtor filed for bankruptcy.",
    ),
    responses=_result("The bankruptcy was recorded"),
)
def notify_bankruptcy(call: Call) -> Reply:
    """Record the debtor's bankruptcy."""
    call.account()
    call.service.notify_bankruptcy(
        call.account_id,
        chapter=call.body.get("chapter", "unknown"),
        case_number=call.body.get("case_number", ""),
        filed_on=_day(call.body.get("filed_on")) or call.service.clock.now().date(),
    )
    return _done(call)


@V1.route(
    "POST",
    "/v1/accounts/{id}/deceased",
    tag="compliance",
    action="account.write",
    body=obj({"date_of_death": day("If known")}, description="The debtor has died."),
    responses=_result("The death was recorded"),
)
def notify_deceased(call: Call) -> Reply:
    """Record that the debtor has died."""
    call.account()
    call.service.notify_deceased(call.account_id, _day(call.body.get("date_of_death")))
    return _done(call)


# ------------------------------------------------------ agencies, law, sale


@V1.route(
    "POST",
    "/v1/accounts/{id}/placement",
    tag="life cycle",
    action="account.write",
    body=obj(
        {
            "agency": name_string("The collection agency"),
            "commission_rate": {
                "type": "string",
                "pattern": r"^(0(\.[0-9]{1,4})?|1(\.0{1,4})?)$",
                "description": "The agency's share of what it collects, as a fraction: "
                '"0.25" is 25%',
            },
            "placed_on": day("Default today"),
            "recall_due": day("When the account comes back unless renewed"),
        },
        required=("agency", "commission_rate"),
    ),
    responses=_result("The account was placed with the agency"),
)
def place_with_agency(call: Call) -> Reply:
    """Place the account with a collection agency."""
    call.account()
    call.service.place_with_agency(
        call.account_id,
        agency=call.body["agency"],
        commission_basis_points=parse_basis_points(call.body["commission_rate"], "commission_rate"),
        placed_on=_day(call.body.get("placed_on")),
        recall_due=_day(call.body.get("recall_due")),
    )
    return _done(call)


@V1.route(
    "POST",
    "/v1/accounts/{id}/recall",
    tag="life cycle",
    action="account.write",
    body=obj({"reason": REASON}, required=("reason",)),
    responses=_result("The account was recalled from its agency"),
)
def recall_from_agency(call: Call) -> Reply:
    """Recall the account from its agency."""
    call.account()
    call.service.recall_from_agency(call.account_id, call.body["reason"])
    return _done(call)


@V1.route(
    "POST",
    "/v1/accounts/{id}/legal-referral",
    tag="life cycle",
    action="account.write",
    body=obj(
        {"firm": name_string("The law firm"), "referred_on": day("Default today")},
        required=("firm",),
    ),
    responses=_result("The account was referred to the law firm"),
    extra_errors={422: "contact_blocked: a rule forbids legal action (e.g. a time-barred debt)"},
)
def refer_to_law_firm(call: Call) -> Reply:
    """Refer the account to a law firm (the rules may refuse legal action)."""
    call.account()
    call.service.refer_to_law_firm(
        call.account_id, call.body["firm"], _day(call.body.get("referred_on"))
    )
    return _done(call)


@V1.route(
    "POST",
    "/v1/accounts/{id}/legal-status",
    tag="life cycle",
    action="legal_status.write",
    body=obj(
        {
            "status": choice(LEGAL_STATUSES, "Where the legal action stands"),
            "effective_on": day("Default today"),
            "judgment_amount": money("For a judgment: its amount."),
            "judgment_date": day("For a judgment: its date"),
            "court_reference": name_string("The court's reference", max_length=100),
            "details": text("What happened, in the firm's words", max_length=2000),
        },
        required=("status",),
    ),
    responses=_result("The legal status was recorded"),
)
def change_legal_status(call: Call) -> Reply:
    """Record the legal action's progress (law firm accounts)."""
    summary = call.account()
    body = call.body
    call.service.change_legal_status(
        call.account_id,
        body["status"],
        effective_on=_day(body.get("effective_on")),
        judgment_amount=(
            parse_amount(body["judgment_amount"], str(summary["currency"]), "judgment_amount")
            if "judgment_amount" in body
            else None
        ),
        judgment_date=_day(body.get("judgment_date")),
        court_reference=body.get("court_reference"),
        details=body.get("details", ""),
    )
    return _done(call)


@V1.route(
    "POST",
    "/v1/accounts/{id}/sale",
    tag="life cycle",
    action="account.write",
    body=obj(
        {
            "buyer": name_string("The debt buyer"),
            "price": money("What the buyer paid for this account."),
            "sold_at": moment_or_day("When it was sold"),
            "portfolio": name_string("The portfolio it was sold in"),
        },
        required=("buyer", "price", "sold_at", "portfolio"),
    ),
    responses=_result("The account was sold"),
)
def sell(call: Call) -> Reply:
    """Sell the account to a debt buyer."""
    summary = call.account()
    body = call.body
    call.service.sell(
        call.account_id,
        buyer=body["buyer"],
        price=parse_amount(body["price"], str(summary["currency"]), "price"),
        portfolio_reference=body["portfolio"],
        sale_date=parse_moment_or_day(body["sold_at"], "sold_at").date(),
    )
    return _done(call)


@V1.route(
    "POST",
    "/v1/accounts/{id}/notes",
    tag="accounts",
    action="account.write",
    body=obj(
        {
            "text": text("The note", max_length=4000),
            "agent": name_string("Who wrote it", max_length=100),
        },
        required=("text",),
    ),
    responses=_result("The note was added"),
)
def add_note(call: Call) -> Reply:
    """Add a note to the account."""
    call.account()
    call.service.add_note(call.account_id, call.body["text"], call.body.get("agent"))
    return _done(call)


@V1.route(
    "POST",
    "/v1/accounts/{id}/closure",
    tag="life cycle",
    action="account.write",
    body=obj(
        {"reason": choice(CLOSE_REASONS, "Why it is closed"), "note": REASON},
        required=("reason",),
    ),
    responses=_result("The account was closed"),
)
def close(call: Call) -> Reply:
    """Close the account."""
    call.account()
    call.service.close(call.account_id, call.body["reason"], call.body.get("note", ""))
    return _done(call)
