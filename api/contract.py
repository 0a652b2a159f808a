"""The shapes of contract v1 that several routes share, as named schemas.

Response objects are open (``closed=False``): later versions may add fields, never
rename or remove these.  Request bodies are closed: an unknown field is a 400.
"""

from __future__ import annotations

from api.schemas import (
    array,
    choice,
    component,
    day,
    integer,
    money_out,
    nullable,
    obj,
)

STRING = {"type": "string"}
ANY_OBJECT = {"type": "object"}

STATUSES = ("active", "with_agency", "with_law_firm", "sold", "closed")

ERROR = component(
    "Error",
    obj(
        {
            "error": obj(
                {
                    "code": {
                        "type": "string",
                        "description": "Stable, machine-readable: branch on this, never "
                        "on the message.",
                    },
                    "message": {"type": "string", "description": "For a person."},
                    "details": {"type": "object", "description": "What the code is about."},
                },
                required=("code", "message", "details"),
                closed=False,
            )
        },
        required=("error",),
        closed=False,
        description='Every error: {"error": {"code", "message", "details"}}.',
    ),
)

BALANCE = component(
    "Balance",
    obj(
        {
            "principal": money_out("Principal owed"),
            "interest": money_out("Interest owed"),
            "fees": money_out("Fees owed"),
            "total": money_out("Everything owed"),
            "credit": money_out("Overpayment held for the debtor"),
        },
        required=("principal", "interest", "fees", "total"),
        closed=False,
        description="An account's balance by component, in the account's currency.",
    ),
)

ACCOUNT_SUMMARY = component(
    "AccountSummary",
    obj(
        {
            "id": {"type": "string", "format": "uuid", "description": "The account id."},
            "reference": STRING,
            "creditor": STRING,
            "original_creditor": nullable(STRING),
            "status": choice(STATUSES, "Where the account is in its life cycle."),
            "currency": STRING,
            "balance": BALANCE,
            "paid_total": money_out("Paid so far"),
            "open_promise": nullable(
                obj(
                    {
                        "id": STRING,
                        "amount": money_out("Promised"),
                        "due_date": day("Due"),
                    },
                    required=("id", "amount", "due_date"),
                    closed=False,
                )
            ),
            "plan": nullable(
                obj(
                    {
                        "id": STRING,
                        "kind": nullable(STRING),
                        "next_due_date": nullable(day("Next installment due")),
                        "next_amount": money_out("Next installment"),
                        "arrears": money_out("Due and unpaid"),
                    },
                    required=("id", "next_due_date", "next_amount", "arrears"),
                    closed=False,
                )
            ),
            "flags": array(STRING, "disputed, complaint, ceased, attorney, bankrupt, deceased"),
            "holder": obj(
                {
                    "kind": choice(("creditor", "agency", "law_firm", "buyer"), "Who holds it"),
                    "name": STRING,
                },
                required=("kind", "name"),
                closed=False,
            ),
            "legal_status": nullable(STRING),
            "debtor_id": nullable(STRING),
            "version": integer("The account's event count (its stream version)", minimum=1),
        },
        required=(
            "id",
            "reference",
            "creditor",
            "status",
            "currency",
            "balance",
            "paid_total",
            "open_promise",
            "plan",
            "flags",
            "holder",
            "version",
        ),
        closed=False,
        description="An account as collectors and partners see it.",
    ),
)

ACCOUNT_RESULT = component(
    "AccountResult",
    obj(
        {"account": ACCOUNT_SUMMARY},
        required=("account",),
        closed=False,
        description="A write's result: the account with the write applied.",
    ),
)

VERDICT = component(
    "Verdict",
    obj(
        {
            "rule": STRING,
            "version": STRING,
            "outcome": choice(("allow", "block", "warn"), "What the rule says"),
            "reason": STRING,
            "citation": STRING,
        },
        required=("rule", "version", "outcome", "reason", "citation"),
        closed=False,
        description="One contact rule's answer, with the law it applies.",
    ),
)

EVENT = component(
    "LedgerEvent",
    obj(
        {
            "position": nullable(integer("Position in the global event order", minimum=1)),
            "account_id": STRING,
            "version": integer("Version in the account's stream", minimum=1),
            "type": STRING,
            "at": {"type": "string", "format": "date-time"},
            "data": ANY_OBJECT,
            "hash": nullable(STRING),
            "prev_hash": nullable(STRING),
            "balance_after": BALANCE,
        },
        required=("position", "version", "type", "at", "data", "hash", "prev_hash"),
        closed=False,
        description="A recorded event; money in data as decimal strings.",
    ),
)

PAGE_OF_ACCOUNTS = obj(
    {
        "items": array(ACCOUNT_SUMMARY, "This page", max_items=500),
        "next_cursor": nullable(STRING),
    },
    required=("items", "next_cursor"),
    closed=False,
)

ALLOCATION = obj(
    {
        "fees": money_out("To fees"),
        "interest": money_out("To interest"),
        "principal": money_out("To principal"),
        "credit": money_out("Held as a credit balance"),
    },
    required=("fees", "interest", "principal"),
    closed=False,
)
