"""Accounts: placement, reading, listing, and the contact, promise, payment and plan writes.

Every handler loads the account through ``Call.account`` (the caller must see it
and may do the route's action) and answers with the account as it is after the
write, so a GET right after sees it too.
"""

from __future__ import annotations

import base64
import binascii
from datetime import date
from typing import Any
from uuid import UUID

from adapters.render import Renderer, TemplateError
from api import views
from api.contract import (
    ACCOUNT_RESULT,
    ACCOUNT_SUMMARY,
    ALLOCATION,
    BALANCE,
    EVENT,
    PAGE_OF_ACCOUNTS,
    STATUSES,
    STRING,
    VERDICT,
)
from api.endpoints import V1, Call, Param, Reply
from api.errors import ApiError, bad_request
from api.money import parse_amount, show
from api.schemas import (
    array,
    boolean,
    choice,
    day,
    integer,
    moment,
    money,
    name_string,
    nullable,
    obj,
    parse_moment,
    text,
)
from ledger import access, errors
from ledger.domain.account import (
    CHANNELS,
    DIRECTIONS,
    ITEMIZATION_KINDS,
    OUTCOMES,
    PARTIES,
    PAYMENT_METHODS,
    REVERSAL_KINDS,
)
from ledger.money import Money
from ledger.services import DebtorDetails, Installment, Placement

CURRENCY = {
    "type": "string",
    "pattern": "^[A-Z]{3}$",
    "description": "ISO 4217 code, e.g. USD",
}
OPTIONAL_CURRENCY = {
    **CURRENCY,
    "description": "ISO 4217 code; when given it must be the account's currency",
}


def _summary_reply(call: Call, http_status: int = 201, /, **extra: Any) -> Reply:
    return Reply(http_status, {**extra, "account": views.account_summary(call.summary())})


def _money(call: Call, summary: dict[str, Any], field: str) -> Money:
    """``field`` of the body as an amount of the account's currency."""
    currency = str(summary["currency"])
    given = call.body.get("currency")
    if given is not None and given != currency:
        raise errors.CurrencyMismatch(
            f"the account is in {currency}, the request is in {given}",
            expected=currency,
            got=given,
        )
    return parse_amount(call.body[field], currency, field)


# ------------------------------------------------------------------ placement

ADDRESS = obj(
    {
        "line1": name_string("Street and number"),
        "line2": name_string("More of the address"),
        "city": name_string("City or town"),
        "region": name_string("State, county or province"),
        "postcode": name_string("Postal code", max_length=20),
        "country": name_string("ISO 3166 country code", max_length=2),
    },
    required=("line1",),
    description="A postal address.",
)

DEBTOR = obj(
    {
        "name": name_string("The debtor's full name"),
        "phones": array(
            name_string("A phone number", max_length=40), "Phone numbers", max_items=10
        ),
        "emails": array(
            name_string("An e-mail address", max_length=254), "E-mail addresses", max_items=10
        ),
        "address": nullable(ADDRESS),
        "time_zone": nullable(name_string("IANA time zone, e.g. America/Chicago", max_length=64)),
        "jurisdiction": nullable(
            {
                "type": "string",
                "pattern": "^[A-Z]{2}(-[A-Z0-9]{1,3})?$",
                "description": "Where the debtor lives: ISO 3166 country, optional subdivision "
                "(US-IL, GB-SCT)",
            }
        ),
    },
    required=("name",),
    description="A new debtor; their personal data is kept apart from the account.",
)

PLACEMENT = obj(
    {
        "creditor": name_string("The creditor placing the debt"),
        "reference": name_string("The creditor's account reference"),
        "original_creditor": name_string("Who the debt was first owed to"),
        "currency": CURRENCY,
        "principal": money("Principal on the itemization date."),
        "interest": money("Interest on the itemization date."),
        "fees": money("Fees on the itemization date."),
        "itemization_date": day("The Regulation F itemization date"),
        "itemization_kind": choice(ITEMIZATION_KINDS, "Which reference date it is"),
        "charge_off_date": nullable(
            day(
                "When the creditor charged the debt off (default with charge_off: itemization_date)"
            )
        ),
        "last_payment_date": nullable(day("The debtor's last payment")),
        "last_payment_amount": nullable(money("The debtor's last payment.")),
        "debtor": DEBTOR,
        "debtor_id": {
            "type": "string",
            "format": "uuid",
            "description": "An existing debtor (instead of debtor)",
        },
    },
    required=(
        "creditor",
        "reference",
        "original_creditor",
        "currency",
        "principal",
        "interest",
        "fees",
        "itemization_date",
        "itemization_kind",
        "charge_off_date",
    ),
    description="A debt to place. Give either debtor or debtor_id.",
)
PLACEMENT["oneOf"] = [{"required": ["debtor"]}, {"required": ["debtor_id"]}]
PLACEMENT["x-one-of"] = "give either debtor or debtor_id, not both or neither"


def _optional_day(body: dict[str, Any], field: str) -> date | None:
    value = body.get(field)
    return None if value is None else date.fromisoformat(value)


@V1.route(
    "POST",
    "/v1/accounts",
    tag="accounts",
    action="account.write",
    body=PLACEMENT,
    responses={201: ("The account was placed", ACCOUNT_SUMMARY)},
    extra_errors={409: "account_exists: the creditor already placed this reference"},
)
def place_account(call: Call) -> Reply:
    """Place a debt with Arrears.

    The same creditor and reference placed again is 409 ``account_exists``, with the
    existing account's id in ``details.account_id``.
    """
    body = call.body
    creditor = {
        "creditor": body["creditor"],
        "holder": {"kind": "creditor", "name": body["creditor"]},
    }
    if not access.can(call.who, "account.write", creditor):
        # Nothing is hidden yet (the account does not exist): a plain refusal.
        raise errors.Forbidden(
            f"{call.who.role} tokens may not place accounts for creditor {body['creditor']}",
            role=call.who.role,
            action="account.write",
        )
    currency = body["currency"]
    placement = Placement(
        creditor=body["creditor"],
        reference=body["reference"],
        currency=currency,
        principal=parse_amount(body["principal"], currency, "principal"),
        interest=parse_amount(body["interest"], currency, "interest"),
        fees=parse_amount(body["fees"], currency, "fees"),
        itemization_date=date.fromisoformat(body["itemization_date"]),
        itemization_kind=body["itemization_kind"],
        original_creditor=body["original_creditor"],
        # Itemized as of the charge-off, the charge-off date is the itemization date.
        charge_off_date=_optional_day(body, "charge_off_date")
        or (
            date.fromisoformat(body["itemization_date"])
            if body["itemization_kind"] == "charge_off"
            else None
        ),
        last_payment_date=_optional_day(body, "last_payment_date"),
        last_payment_amount=(
            None
            if body.get("last_payment_amount") is None
            else parse_amount(body["last_payment_amount"], currency, "last_payment_amount")
        ),
    )
    debtor = body.get("debtor")
    details = None
    if debtor is not None:
        address = debtor.get("address")
        details = DebtorDetails(
            name=debtor["name"],
            phones=tuple(debtor.get("phones") or ()),
            emails=tuple(debtor.get("emails") or ()),
            addresses=(address,) if address else (),
            time_zone=debtor.get("time_zone"),
            jurisdiction=debtor.get("jurisdiction"),
        )
    debtor_id = UUID(body["debtor_id"]) if "debtor_id" in body else None
    account = call.service.place_account(placement, debtor=details, debtor_id=debtor_id)
    summary = call.service.account_summary(account.id, wait=True)
    return Reply(
        201, views.account_summary(summary), headers={"Location": f"/v1/accounts/{account.id}"}
    )


# -------------------------------------------------------------------- reading


@V1.route(
    "GET",
    "/v1/accounts/{id}",
    tag="accounts",
    action="account.read",
    responses={200: ("The account summary", ACCOUNT_SUMMARY)},
)
def get_account(call: Call) -> Reply:
    """The account summary: balance, promise, plan, flags and who holds it."""
    return Reply(200, views.account_summary(call.account()))


def _encode_cursor(account_id: str) -> str:
    return base64.urlsafe_b64encode(account_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return str(UUID(base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise bad_request(
            "invalid_cursor", "cursor is not one this API gave out", field="cursor"
        ) from None


@V1.route(
    "GET",
    "/v1/accounts",
    tag="accounts",
    action="account.read",
    query=(
        Param("creditor", name_string("Only this creditor's accounts"), "Creditor"),
        Param("status", choice(STATUSES, "Only accounts in this status"), "Status"),
        Param("agency", name_string("Only accounts placed with this agency"), "Agency"),
        Param("limit", integer("Items per page", minimum=1, maximum=500), "Page size"),
        Param(
            "cursor",
            {"type": "string", "pattern": "^[A-Za-z0-9_-]{48}$"},
            "next_cursor of the page before",
        ),
    ),
    responses={200: ("A page of account summaries, in id order", PAGE_OF_ACCOUNTS)},
)
def list_accounts(call: Call) -> Reply:
    """Accounts the caller may see, a page at a time.

    Pass the ``next_cursor`` of a page as ``cursor`` to get the next; it is null on
    the last page.
    """
    principal = call.who
    limit = call.limit()
    cursor = call.query.get("cursor")
    page = call.service.list_accounts(
        limit=limit,
        after=_decode_cursor(cursor) if cursor else None,
        creditor=call.query.get("creditor") or principal.creditor,
        status=call.query.get("status"),
        agency=call.query.get("agency")
        or (principal.agency if principal.role == "agency" else None),
        law_firm=principal.firm if principal.role == "lawfirm" else None,
        visible=lambda row: access.sees_account(principal, row),
    )
    return Reply(
        200,
        {
            "items": [views.account_summary(row) for row in page.items],
            "next_cursor": _encode_cursor(page.next_after) if page.next_after else None,
        },
    )


# ------------------------------------------------------------------- contacts

CONTACT = obj(
    {
        "channel": choice(CHANNELS, "How"),
        "direction": choice(DIRECTIONS, "Who reached whom"),
        "outcome": choice(OUTCOMES, "What came of it"),
        "occurred_at": moment("When it happened"),
        "agent": name_string("The collector who made or took it", max_length=100),
        "note": text("What was said (kept as a note on the account)"),
        "purpose": name_string("Why: collection (default), validation_notice, ...", max_length=50),
        "callback_at": moment("A callback agreed with the debtor"),
        "party": choice(PARTIES, "Who was contacted (default debtor)"),
        "to": name_string("Which contact point, e.g. phone:0 (no personal data)", max_length=50),
    },
    required=("channel", "direction", "outcome", "occurred_at"),
    description="A contact that happened.",
)


@V1.route(
    "POST",
    "/v1/accounts/{id}/contacts",
    tag="contacts",
    action="contact.write",
    body=CONTACT,
    responses={
        201: (
            "The contact was recorded (violations, if the rules in force then forbade it)",
            obj(
                {
                    "contact_id": STRING,
                    "event": EVENT,
                    "violations": array(VERDICT, "Rules the contact broke"),
                    "account": ACCOUNT_SUMMARY,
                },
                required=("contact_id", "event", "violations", "account"),
                closed=False,
            ),
        )
    },
)
def record_contact(call: Call) -> Reply:
    """Record a contact with the debtor that happened.

    It is judged by the contact rules in force when it happened; a breach is
    recorded with it and listed in ``violations`` (the contact is a fact and is kept).
    """
    before = call.account()
    body = call.body
    recorded = call.service.record_contact(
        call.account_id,
        channel=body["channel"],
        direction=body["direction"],
        outcome=body["outcome"],
        occurred_at=parse_moment(body["occurred_at"], "occurred_at"),
        agent=body.get("agent"),
        note=body.get("note"),
        purpose=body.get("purpose", "collection"),
        callback_at=(
            parse_moment(body["callback_at"], "callback_at") if body.get("callback_at") else None
        ),
        party=body.get("party", "debtor"),
        to=body.get("to"),
    )
    event = _contact_event(call, recorded.contact_id, int(before["version"]))
    return _summary_reply(
        call,
        contact_id=recorded.contact_id,
        event=event,
        violations=views.verdicts(recorded.violations),
    )


def _contact_event(call: Call, contact_id: str, after_version: int) -> dict[str, Any] | None:
    for event in call.service.account_events(call.account_id, after_version=after_version):
        if event.type == "ContactRecorded" and event.data.get("contact_id") == contact_id:
            return views.feed_event(event)
    return None


@V1.route(
    "GET",
    "/v1/accounts/{id}/contact-check",
    tag="contacts",
    action="account.read",
    query=(
        Param("channel", choice(CHANNELS, "The channel"), "How you would contact", required=True),
        Param("at", moment("When (default now)"), "When you would contact"),
        Param("purpose", name_string("Why (default collection)", max_length=50), "Purpose"),
        Param("party", choice(PARTIES, "Who (default debtor)"), "Who"),
        Param(
            "to", name_string("Contact point, e.g. phone:0", max_length=50), "Which contact point"
        ),
    ),
    responses={
        200: (
            "What the contact rules say",
            obj(
                {
                    "allowed": boolean("No rule blocks it"),
                    "verdicts": array(VERDICT, "Every rule that applied"),
                },
                required=("allowed", "verdicts"),
                closed=False,
            ),
        )
    },
)
def check_contact(call: Call) -> Reply:
    """Would the contact rules allow contacting the debtor this way, then? Records nothing."""
    call.account()
    at = call.query.get("at")
    decision = call.service.check_contact(
        call.account_id,
        call.query["channel"],
        at=parse_moment(at, "at") if at else None,
        purpose=call.query.get("purpose", "collection"),
        party=call.query.get("party", "debtor"),
        to=call.query.get("to"),
    )
    return Reply(200, {"allowed": decision.allowed, "verdicts": views.verdicts(decision.verdicts)})


MESSAGE = obj(
    {
        "channel": choice(CHANNELS, "The channel to send on"),
        "template": name_string("The message template", max_length=100),
        "purpose": name_string("Why: collection (default), validation_notice, ...", max_length=50),
        "locale": {
            "type": "string",
            "pattern": "^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
            "maxLength": 35,
        },
        "to": name_string("Contact point, e.g. email:0 (no personal data)", max_length=50),
    },
    required=("channel", "template"),
    description="A message Arrears should send, if the contact rules allow it.",
)


@V1.route(
    "POST",
    "/v1/accounts/{id}/messages",
    tag="contacts",
    action="message.write",
    body=MESSAGE,
    responses={
        202: (
            "The message was queued for its channel",
            obj(
                {"message_id": STRING, "status": STRING, "account": ACCOUNT_SUMMARY},
                required=("message_id", "status"),
                closed=False,
            ),
        )
    },
    extra_errors={
        422: "contact_blocked: details.verdicts says which rules and why; unknown_template: "
        "no template of that name for the channel and locale"
    },
)
def request_message(call: Call) -> Reply:
    """Ask Arrears to send a message to the debtor.

    The contact rules decide now.  A refusal is recorded on the account and answered
    with 422 ``contact_blocked``, the verdicts in ``details.verdicts``.
    """
    call.account()
    body = call.body
    _check_template(call, body["channel"], body["template"], body.get("locale", "en-US"))
    queued = call.service.request_message(
        call.account_id,
        channel=body["channel"],
        template=body["template"],
        purpose=body.get("purpose", "collection"),
        locale=body.get("locale", "en-US"),
        to=body.get("to"),
    )
    return _summary_reply(call, 202, message_id=queued.message_id, status=queued.status)


def _check_template(call: Call, channel: str, template: str, locale: str) -> None:
    """A message no template can render would only fail later, at delivery: say so now,
    before the contact gate records anything."""
    try:
        Renderer(call.plugins).template(channel, template, locale)
    except TemplateError as e:
        raise ApiError(
            422, "unknown_template", str(e), field="template", channel=channel, locale=locale
        ) from None


# ------------------------------------------------------------------- promises

PROMISE = obj(
    {
        "amount": money("What the debtor promised to pay."),
        "due_date": day("By when"),
        "currency": OPTIONAL_CURRENCY,
        "agent": name_string("Who took the promise", max_length=100),
    },
    required=("amount", "due_date"),
    description="A promise to pay.",
)


@V1.route(
    "POST",
    "/v1/accounts/{id}/promises",
    tag="promises",
    action="promise.write",
    body=PROMISE,
    responses={
        201: (
            "The promise was recorded",
            obj(
                {"promise_id": STRING, "account": ACCOUNT_SUMMARY},
                required=("promise_id", "account"),
                closed=False,
            ),
        )
    },
)
def make_promise(call: Call) -> Reply:
    """Record the debtor's promise to pay an amount by a date."""
    summary = call.account()
    account = call.service.make_promise(
        call.account_id,
        _money(call, summary, "amount"),
        date.fromisoformat(call.body["due_date"]),
        agent=call.body.get("agent"),
    )
    return _summary_reply(call, promise_id=account.open_promise_id)


# ------------------------------------------------------------------- payments

PAYMENT = obj(
    {
        "amount": money("The amount received."),
        "received_at": moment("When it was received (default now)"),
        "method": choice(PAYMENT_METHODS, "How it was paid"),
        "reference": name_string(
            "The payment's own reference: the same reference is posted once", max_length=200
        ),
        "currency": OPTIONAL_CURRENCY,
    },
    required=("amount", "method"),
    description="A payment received. Posted once per reference: a repeat returns the original.",
)


@V1.route(
    "POST",
    "/v1/accounts/{id}/payments",
    tag="payments",
    action="payment.write",
    body=PAYMENT,
    responses={
        201: (
            "The payment was posted; or one with this reference was posted before, and "
            "this is that payment (created false) — the reference is posted once",
            obj(
                {
                    "payment_id": STRING,
                    "created": boolean("False when the reference was already posted"),
                    "forwarded": boolean("Passed on to the buyer or creditor (sold or closed)"),
                    "allocation": ALLOCATION,
                    "balance": BALANCE,
                    "account": ACCOUNT_SUMMARY,
                },
                required=("payment_id", "allocation", "balance"),
                closed=False,
            ),
        ),
    },
    extra_errors={409: "idempotency_conflict: the reference was posted with another amount"},
)
def post_payment(call: Call) -> Reply:
    """Post a payment; the waterfall allocates it to fees, interest and principal."""
    summary = call.account()
    body = call.body
    result = call.service.post_payment(
        call.account_id,
        _money(call, summary, "amount"),
        method=body["method"],
        received_at=parse_moment(body["received_at"], "received_at")
        if body.get("received_at")
        else None,
        external_reference=body.get("reference"),
    )
    currency = result.account.currency
    payment = result.account.payments.get(result.payment_id)
    split = dict(payment["allocation"]) if payment is not None else {}
    after = views.account_summary(call.summary(result.account))
    return Reply(
        201,  # a repeat of the reference answers as the original did (created: false)
        {
            "payment_id": result.payment_id,
            "created": result.created,
            "forwarded": result.forwarded,
            "allocation": {
                part: show(split.get(part, 0), currency)
                for part in ("fees", "interest", "principal", "credit")
            },
            "balance": after["balance"],
            "account": after,
        },
    )


REVERSAL = obj(
    {
        "reason": text("Why the payment is taken back", max_length=500),
        "kind": choice(REVERSAL_KINDS, "nsf (default) or chargeback", default="nsf"),
    },
    required=("reason",),
    description="A payment that bounced or was charged back.",
)


@V1.route(
    "POST",
    "/v1/accounts/{id}/payments/{payment_id}/reversal",
    tag="payments",
    action="payment.reverse",
    body=REVERSAL,
    responses={
        201: (
            "The payment was reversed: what it paid is owed again",
            obj(
                {"payment_id": STRING, "account": ACCOUNT_SUMMARY},
                required=("payment_id", "account"),
                closed=False,
            ),
        )
    },
)
def reverse_payment(call: Call) -> Reply:
    """Reverse a payment (bounced or charged back); exactly what it settled is owed again."""
    call.account()
    payment_id = call.path["payment_id"]
    call.service.reverse_payment(
        call.account_id,
        payment_id,
        kind=call.body.get("kind", "nsf"),
        reason=call.body["reason"],
    )
    return _summary_reply(call, payment_id=payment_id)


# ---------------------------------------------------------------------- plans

INSTALLMENTS = array(
    obj(
        {"due_date": day("When it falls due"), "amount": money("How much.")},
        required=("due_date", "amount"),
    ),
    "The schedule, due dates strictly increasing",
    min_items=1,
    max_items=120,
)

PLAN = obj(
    {
        "installments": INSTALLMENTS,
        "settlement": boolean(
            "A settlement: pay less than the balance and the rest is waived when it completes",
            default=False,
        ),
        "currency": OPTIONAL_CURRENCY,
    },
    required=("installments",),
    description="A repayment plan (all of the balance) or settlement plan (less).",
)


def _schedule(call: Call, summary: dict[str, Any]) -> tuple[Money, list[Installment]]:
    currency = str(summary["currency"])
    given = call.body.get("currency")
    if given is not None and given != currency:
        raise errors.CurrencyMismatch(
            f"the account is in {currency}, the request is in {given}", expected=currency, got=given
        )
    items = [
        Installment(
            due_date=date.fromisoformat(item["due_date"]),
            amount=parse_amount(item["amount"], currency, f"installments[{i}].amount"),
        )
        for i, item in enumerate(call.body["installments"])
    ]
    total = Money(sum(i.amount.minor for i in items), currency)
    return total, items


@V1.route(
    "POST",
    "/v1/accounts/{id}/plans",
    tag="plans",
    action="account.write",
    body=PLAN,
    responses={
        201: (
            "The plan was agreed",
            obj(
                {"plan_id": STRING, "account": ACCOUNT_SUMMARY},
                required=("plan_id", "account"),
                closed=False,
            ),
        )
    },
)
def agree_plan(call: Call) -> Reply:
    """Agree a repayment or settlement plan; its total is the sum of the installments."""
    summary = call.account()
    total, items = _schedule(call, summary)
    account = call.service.agree_plan(
        call.account_id,
        kind="settlement" if call.body.get("settlement") else "installment",
        total=total,
        installments=items,
    )
    return _summary_reply(call, plan_id=account.plan["id"] if account.plan else None)


def _check_plan(summary: dict[str, Any], plan_id: str) -> None:
    if summary.get("plan_id") != plan_id:
        raise errors.NoActivePlan(
            f"plan {plan_id} is not the account's active plan", plan_id=plan_id
        )


@V1.route(
    "POST",
    "/v1/accounts/{id}/plans/{plan_id}/amendment",
    tag="plans",
    action="account.write",
    body=obj(
        {
            "installments": INSTALLMENTS,
            "reason": text("Why", max_length=500),
            "currency": OPTIONAL_CURRENCY,
        },
        required=("installments", "reason"),
        description="The new remaining schedule; what was paid stays paid.",
    ),
    responses={201: ("The plan was amended", ACCOUNT_RESULT)},
)
def amend_plan(call: Call) -> Reply:
    """Replace the active plan's schedule."""
    summary = call.account()
    _check_plan(summary, call.path["plan_id"])
    total, items = _schedule(call, summary)
    call.service.amend_plan(
        call.account_id, total=total, installments=items, reason=call.body["reason"]
    )
    return _summary_reply(call, plan_id=call.path["plan_id"])


@V1.route(
    "POST",
    "/v1/accounts/{id}/plans/{plan_id}/cancellation",
    tag="plans",
    action="account.write",
    body=obj({"reason": text("Why", max_length=500)}, required=("reason",)),
    responses={201: ("The plan was cancelled", ACCOUNT_RESULT)},
)
def cancel_plan(call: Call) -> Reply:
    """Cancel the active plan."""
    summary = call.account()
    _check_plan(summary, call.path["plan_id"])
    call.service.cancel_plan(call.account_id, call.body["reason"])
    return _summary_reply(call, plan_id=call.path["plan_id"])
