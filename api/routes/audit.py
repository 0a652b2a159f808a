"""An account as an auditor sees it: history as of any moment, chain verification,
and the Regulation F itemization."""

from __future__ import annotations

from typing import Any

from api import views
from api.contract import EVENT, STRING
from api.endpoints import V1, Call, Param, Reply
from api.schemas import array, boolean, integer, moment_or_day, money_out, nullable, obj
from api.schemas import parse_moment_or_day as moment_of

AS_OF = Param(
    "as_of",
    moment_or_day("As the ledger stood then (default now)"),
    "Replay up to this moment",
)


def _as_of(call: Call) -> Any:
    text = call.query.get("as_of")
    return moment_of(text, "as_of") if text else None


@V1.route(
    "GET",
    "/v1/accounts/{id}/history",
    tag="audit",
    action="history.read",
    query=(AS_OF,),
    responses={
        200: (
            "Every event up to as_of, with the balance after each, and the account then",
            obj(
                {
                    "account_id": STRING,
                    "as_of": nullable({"type": "string", "format": "date-time"}),
                    "account": nullable({"type": "object"}),
                    "events": array(EVENT, "In version order", max_items=1_000_000),
                },
                required=("account", "events"),
                closed=False,
            ),
        )
    },
)
def account_history(call: Call) -> Reply:
    """The account's events, each with its position, hashes and the balance after it."""
    call.account()
    result = call.service.history(call.account_id, _as_of(call))
    rows = call.service.account_rows(call.account_id)
    body = views.history(result, rows)
    for event in body["events"]:
        event["account_id"] = body["account_id"]
    return Reply(200, body)


@V1.route(
    "GET",
    "/v1/accounts/{id}/verification",
    tag="audit",
    action="history.read",
    responses={
        200: (
            "The account's hash chain checked against the stored rows and seals",
            obj(
                {
                    "ok": boolean("Intact"),
                    "events": integer("Events checked", minimum=0),
                    "head": nullable({"type": "string", "description": "Hash of the last event"}),
                    "problems": array({"type": "object"}, "What was altered, and where"),
                },
                required=("ok", "events", "head", "problems"),
                closed=False,
            ),
        )
    },
)
def verify_account(call: Call) -> Reply:
    """Verify the account's hash chain: modified, removed, inserted or reordered events."""
    call.account()
    report = call.service.verify(account_id=call.account_id)
    rows = call.service.account_rows(call.account_id)
    last = rows[max(rows)] if rows else None
    return Reply(
        200,
        {
            "ok": report.ok,
            "events": report.events_checked,
            "head": last.hash.hex() if last is not None and last.hash else None,
            "head_version": last.version if last is not None else None,
            "problems": [p.as_dict() for p in report.problems],
            "seals_checked": report.seals_checked,
            "latest_seal": report.latest_seal,
        },
    )


@V1.route(
    "GET",
    "/v1/accounts/{id}/itemization",
    tag="audit",
    action="account.read",
    query=(AS_OF,),
    responses={
        200: (
            "The Regulation F validation itemization (12 CFR 1006.34(c)(2))",
            obj(
                {
                    "currency": STRING,
                    "itemization_date": {"type": "string", "format": "date"},
                    "itemization_kind": STRING,
                    "amount_at_itemization": money_out("Owed on the itemization date"),
                    "interest_since": money_out("Interest charged since"),
                    "fees_since": money_out("Fees charged since"),
                    "payments_credits_since": money_out("Payments and credits since"),
                    "current_amount": money_out("Owed now"),
                },
                required=(
                    "itemization_date",
                    "amount_at_itemization",
                    "interest_since",
                    "fees_since",
                    "payments_credits_since",
                    "current_amount",
                ),
                closed=False,
            ),
        )
    },
)
def itemization(call: Call) -> Reply:
    """The validation notice's itemization: amount then, interest, fees, payments, now."""
    call.account()
    return Reply(200, call.service.itemization(call.account_id, _as_of(call)).as_dict())
