"""Facts the rule packs read that only a person can record: a UK breathing space, the
debtor's contact preferences, the limitation date, consent to calls (Reg F).

Additions to contract v1: the contract's routes are unchanged; these let an
integrator record what ``uk_conc``, ``cn_collection`` and ``us_reg_f`` decide on.
"""

from __future__ import annotations

from datetime import time
from typing import Any

from api.endpoints import V1, Call, Reply
from api.errors import bad_request
from api.routes.actions import REASON, _done, _result
from api.schemas import (
    array,
    choice,
    day,
    moment_or_day,
    obj,
    parse_day,
    parse_moment_or_day,
    text,
)
from ledger.domain.account import BREATHING_SPACE_KINDS, CHANNELS

HH_MM = {
    "type": "string",
    "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$",
    "description": "A local wall-clock time, HH:MM, in the debtor's time zone",
}


def _clock(value: Any, where: str) -> time | None:
    if value is None:
        return None
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise bad_request("invalid_value", f"{where} must be HH:MM", field=where) from None


@V1.route(
    "POST",
    "/v1/accounts/{id}/breathing-space",
    tag="compliance",
    action="account.write",
    body=obj(
        {
            "kind": choice(BREATHING_SPACE_KINDS, "standard (60 days) or mental_health"),
            "started_on": day("First day of the moratorium"),
            "reference": text("The Insolvency Service's reference", max_length=100),
        },
        required=("kind", "started_on", "reference"),
        description="A Debt Respite Scheme moratorium: contact, interest and fees stop.",
    ),
    responses=_result("The breathing space was recorded"),
)
def start_breathing_space(call: Call) -> Reply:
    """Record a UK breathing space (standard, or mental-health crisis)."""
    call.account()
    call.service.start_breathing_space(
        call.account_id,
        kind=call.body["kind"],
        started_on=parse_day(call.body["started_on"], "started_on"),
        reference=call.body["reference"],
    )
    return _done(call)


@V1.route(
    "POST",
    "/v1/accounts/{id}/breathing-space/treatment-end",
    tag="compliance",
    action="account.write",
    body=obj(
        {"treatment_ended_on": day("The day the crisis treatment ended")},
        required=("treatment_ended_on",),
        description="A mental-health crisis moratorium ends 30 days after its treatment.",
    ),
    responses=_result("The end of treatment was recorded"),
)
def end_crisis_treatment(call: Call) -> Reply:
    """Record the end of mental-health crisis treatment (the moratorium runs 30 more days)."""
    call.account()
    call.service.end_crisis_treatment(
        call.account_id, parse_day(call.body["treatment_ended_on"], "treatment_ended_on")
    )
    return _done(call)


@V1.route(
    "POST",
    "/v1/accounts/{id}/breathing-space/cancellation",
    tag="compliance",
    action="account.write",
    body=obj(
        {"ended_on": day("Last day of the moratorium"), "reason": REASON},
        required=("ended_on", "reason"),
        description="The moratorium ended early (cancelled by the debt adviser or a court).",
    ),
    responses=_result("The cancellation was recorded"),
)
def cancel_breathing_space(call: Call) -> Reply:
    """Record that a breathing space ended early."""
    call.account()
    call.service.cancel_breathing_space(
        call.account_id, parse_day(call.body["ended_on"], "ended_on"), call.body["reason"]
    )
    return _done(call)


@V1.route(
    "POST",
    "/v1/accounts/{id}/contact-preferences",
    tag="compliance",
    action="account.write",
    body=obj(
        {
            "channels": array(choice(CHANNELS, "A channel"), "Contact only on these"),
            "refused_channels": array(choice(CHANNELS, "A channel"), "Never on these"),
            "window_start": HH_MM,
            "window_end": HH_MM,
        },
        description="How the debtor asked to be contacted; replaces earlier preferences. "
        "The window may cross midnight (22:30 to 07:00).",
    ),
    responses=_result("The preferences were recorded"),
)
def set_contact_preferences(call: Call) -> Reply:
    """Record the debtor's contact preferences (channels and hours)."""
    call.account()
    body = call.body
    call.service.set_contact_preferences(
        call.account_id,
        channels=body.get("channels"),
        refused_channels=body.get("refused_channels") or (),
        window_start=_clock(body.get("window_start"), "window_start"),
        window_end=_clock(body.get("window_end"), "window_end"),
    )
    return _done(call)


@V1.route(
    "POST",
    "/v1/accounts/{id}/limitation",
    tag="compliance",
    action="account.write",
    body=obj(
        {
            "expires_on": day("The day the debt becomes time-barred"),
            "basis": text(
                "What the date rests on, e.g. 'IL 5-year written contract'", max_length=500
            ),
        },
        required=("expires_on", "basis"),
        description="From this day no suit, no threat of suit and no referral to a law firm.",
    ),
    responses=_result("The limitation date was recorded"),
)
def set_limitation_date(call: Call) -> Reply:
    """Record when the limitation period for suit runs out."""
    call.account()
    call.service.set_limitation_date(
        call.account_id, parse_day(call.body["expires_on"], "expires_on"), call.body["basis"]
    )
    return _done(call)


@V1.route(
    "POST",
    "/v1/accounts/{id}/call-consents",
    tag="compliance",
    action="contact.write",
    body=obj(
        {
            "given_at": moment_or_day("When the debtor gave it"),
            "until": moment_or_day("Until when calls are agreed"),
            "evidence": text("How we know (e.g. the call it was given in)", max_length=500),
        },
        required=("given_at", "until"),
        description="Consent given directly by the debtor to calls in a period "
        "(12 CFR 1006.14(b)(3)(i)): such calls are outside the 7-in-7 limits.",
    ),
    responses=_result("The consent was recorded"),
)
def give_call_consent(call: Call) -> Reply:
    """Record the debtor's consent to calls in a period."""
    call.account()
    call.service.give_call_consent(
        call.account_id,
        given_at=parse_moment_or_day(call.body["given_at"], "given_at"),
        until=parse_moment_or_day(call.body["until"], "until"),
        evidence=call.body.get("evidence") or "recorded through the API",
    )
    return _done(call)
