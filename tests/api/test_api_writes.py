"""Contract v1: every account write, each answering with the account after it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from api_helpers import *  # noqa: F403  (the API fixtures)
from api_helpers import Api, error_code, placement_body

from ledger.clock import MovableClock


def path(account: dict[str, Any], tail: str) -> str:
    return f"/v1/accounts/{account['id']}/{tail}"


async def test_a_recorded_contact_answers_with_its_event(
    admin: Api, account: dict[str, Any]
) -> None:
    """POST contacts is 201 with the contact id, the recorded event and no violations."""
    response = await admin.post(
        path(account, "contacts"),
        {
            "channel": "phone",
            "direction": "outbound",
            "outcome": "right_party_contact",
            "occurred_at": "2026-03-02T14:00:00Z",
            "agent": "agent-01",
            "note": "agreed to call back",
        },
    )
    assert response.status == 201, response.text
    body = response.json
    assert body["violations"] == []
    assert body["event"]["type"] == "ContactRecorded"
    assert body["event"]["data"]["contact_id"] == body["contact_id"]
    assert body["event"]["position"] >= 1
    assert body["account"]["version"] > account["version"]


async def test_a_contact_the_rules_forbade_is_kept_with_its_violations(
    admin: Api, account: dict[str, Any]
) -> None:
    """A call at 05:00 the debtor's time is recorded, and the breach listed with its rule."""
    response = await admin.post(
        path(account, "contacts"),
        {
            "channel": "phone",
            "direction": "outbound",
            "outcome": "no_answer",
            "occurred_at": "2026-03-02T11:00:00Z",
        },
    )
    assert response.status == 201, response.text
    rules = {v["rule"] for v in response.json["violations"]}
    assert "us_reg_f.inconvenient_time" in rules


async def test_contact_check_lists_every_verdict(admin: Api, account: dict[str, Any]) -> None:
    """contact-check says allowed or not, with rule, version, outcome, reason and citation."""
    allowed = await admin.get(path(account, "contact-check?channel=phone&at=2026-03-02T16:00:00Z"))
    assert allowed.status == 200, allowed.text
    assert allowed.json["allowed"] is True
    assert allowed.json["verdicts"]
    assert set(allowed.json["verdicts"][0]) == {"rule", "version", "outcome", "reason", "citation"}
    night = await admin.get(path(account, "contact-check?channel=phone&at=2026-03-02T05:00:00Z"))
    assert night.json["allowed"] is False


async def test_a_message_is_queued_or_refused_with_the_verdicts(
    admin: Api, account: dict[str, Any], clock: MovableClock
) -> None:
    """A message is 202 queued; after a cease request it is 422 contact_blocked, recorded."""
    clock.advance(timedelta(hours=3))
    queued = await admin.post(
        path(account, "messages"), {"channel": "email", "template": "reminder"}
    )
    assert queued.status == 202, queued.text
    assert queued.json["message_id"] and queued.json["status"]
    version = (await admin.get(f"/v1/accounts/{account['id']}")).json["version"]
    unknown = await admin.post(
        path(account, "messages"), {"channel": "sms", "template": "no_such_template"}
    )
    assert (unknown.status, error_code(unknown)) == (422, "unknown_template")
    assert (await admin.get(f"/v1/accounts/{account['id']}")).json["version"] == version
    assert (await admin.post(path(account, "cease"), {"received_at": "2026-03-02"})).status == 201
    blocked = await admin.post(
        path(account, "messages"), {"channel": "email", "template": "reminder"}
    )
    assert blocked.status == 422
    assert error_code(blocked) == "contact_blocked"
    assert any(v["outcome"] == "block" for v in blocked.json["error"]["details"]["verdicts"])
    history = await admin.get(path(account, "history"))
    assert "ContactBlocked" in [e["type"] for e in history.json["events"]]


async def test_promise(admin: Api, account: dict[str, Any]) -> None:
    """A promise is 201 with its id; the summary shows it as the open promise."""
    response = await admin.post(
        path(account, "promises"), {"amount": "200.00", "due_date": "2026-03-20"}
    )
    assert response.status == 201, response.text
    promise = response.json["account"]["open_promise"]
    assert promise == {
        "id": response.json["promise_id"],
        "amount": "200.00",
        "due_date": "2026-03-20",
    }
    again = await admin.post(
        path(account, "promises"), {"amount": "5.00", "due_date": "2026-03-21"}
    )
    assert again.status == 422
    assert error_code(again) == "promise_already_open"


async def test_payment_allocation_balance_and_reference(
    admin: Api, account: dict[str, Any]
) -> None:
    """A payment is allocated fees, interest, principal; its reference posts it once."""
    body = {
        "amount": "250.00",
        "method": "card",
        "reference": "PAY-1",
        "received_at": "2026-03-02T13:00:00Z",
    }
    response = await admin.post(path(account, "payments"), body)
    assert response.status == 201, response.text
    assert response.json["allocation"] == {
        "fees": "50.00",
        "interest": "150.00",
        "principal": "50.00",
        "credit": "0.00",
    }
    assert response.json["balance"]["total"] == "950.00"
    again = await admin.post(path(account, "payments"), body)
    assert again.status == 201
    assert (again.json["payment_id"], again.json["created"]) == (response.json["payment_id"], False)
    assert again.json["balance"]["total"] == "950.00"
    other = await admin.post(path(account, "payments"), {**body, "amount": "1.00"})
    assert other.status == 409


async def test_payment_reversal_restores_what_it_paid(admin: Api, account: dict[str, Any]) -> None:
    """A reversal owes again exactly what its payment settled."""
    paid = await admin.post(path(account, "payments"), {"amount": "100.00", "method": "check"})
    payment_id = paid.json["payment_id"]
    reversed_ = await admin.post(
        path(account, f"payments/{payment_id}/reversal"), {"reason": "bounced"}
    )
    assert reversed_.status == 201, reversed_.text
    assert reversed_.json["account"]["balance"]["total"] == "1200.00"
    twice = await admin.post(path(account, f"payments/{payment_id}/reversal"), {"reason": "again"})
    assert twice.status == 422
    assert error_code(twice) == "payment_already_reversed"


async def test_plan_amendment_and_cancellation(admin: Api, account: dict[str, Any]) -> None:
    """A plan is agreed (201 plan_id), amended, then cancelled; a wrong plan id is 422."""
    plan = await admin.post(
        path(account, "plans"),
        {
            "installments": [
                {"due_date": "2026-04-01", "amount": "600.00"},
                {"due_date": "2026-05-01", "amount": "600.00"},
            ]
        },
    )
    assert plan.status == 201, plan.text
    plan_id = plan.json["plan_id"]
    assert plan.json["account"]["plan"]["next_due_date"] == "2026-04-01"
    amended = await admin.post(
        path(account, f"plans/{plan_id}/amendment"),
        {"installments": [{"due_date": "2026-04-15", "amount": "1200.00"}], "reason": "lump sum"},
    )
    assert amended.status == 201, amended.text
    assert amended.json["account"]["plan"]["next_amount"] == "1200.00"
    wrong = await admin.post(path(account, "plans/nope/cancellation"), {"reason": "x"})
    assert wrong.status == 422
    cancelled = await admin.post(
        path(account, f"plans/{plan_id}/cancellation"), {"reason": "changed mind"}
    )
    assert cancelled.status == 201
    assert cancelled.json["account"]["plan"] is None


async def test_settlement_plan_may_be_less_than_the_balance(
    admin: Api, account: dict[str, Any]
) -> None:
    """settlement: true agrees a plan for less than the balance."""
    plan = await admin.post(
        path(account, "plans"),
        {"installments": [{"due_date": "2026-04-01", "amount": "700.00"}], "settlement": True},
    )
    assert plan.status == 201, plan.text
    assert plan.json["account"]["plan"]["kind"] == "settlement"


async def test_charges_and_waivers(admin: Api, account: dict[str, Any]) -> None:
    """Charges add interest or fees; waivers forgive part of a component."""
    charged = await admin.post(
        path(account, "charges"), {"component": "fees", "amount": "25.00", "reason": "late fee"}
    )
    assert charged.status == 201, charged.text
    assert charged.json["account"]["balance"]["fees"] == "75.00"
    interest = await admin.post(
        path(account, "charges"), {"component": "interest", "amount": "10.00", "reason": "March"}
    )
    assert interest.json["account"]["balance"]["interest"] == "160.00"
    waived = await admin.post(
        path(account, "waivers"), {"component": "interest", "amount": "60.00", "reason": "goodwill"}
    )
    assert waived.status == 201, waived.text
    assert waived.json["account"]["balance"]["interest"] == "100.00"
    too_much = await admin.post(
        path(account, "waivers"), {"component": "fees", "amount": "99.00", "reason": "x"}
    )
    assert too_much.status == 422
    assert error_code(too_much) == "waiver_exceeds_balance"
    hardship = await admin.post(
        path(account, "waivers"),
        {"component": "principal", "amount": "100.00", "reason": "hardship"},
    )
    assert hardship.json["account"]["balance"]["principal"] == "900.00"
    events = (await admin.get(f"/v1/accounts/{account['id']}/history")).json["events"]
    kinds = [e["data"]["kind"] for e in events if e["type"] == "BalanceWaived"]
    assert kinds == ["interest", "principal"]  # never "settlement": no settlement was made


async def test_dispute_verification_resolution(admin: Api, account: dict[str, Any]) -> None:
    """A written dispute in the validation period flags the account until resolved."""
    raised = await admin.post(
        path(account, "disputes"),
        {"reason": "not mine", "received_at": "2026-03-02T13:00:00Z", "written": True},
    )
    assert raised.status == 201, raised.text
    dispute_id = raised.json["dispute_id"]
    assert "disputed" in raised.json["account"]["flags"]
    verified = await admin.post(
        path(account, f"disputes/{dispute_id}/verification"), {"method": "statement"}
    )
    assert verified.status == 201, verified.text
    resolved = await admin.post(
        path(account, f"disputes/{dispute_id}/resolution"), {"outcome": "rejected"}
    )
    assert resolved.status == 201, resolved.text
    assert "disputed" not in resolved.json["account"]["flags"]
    unknown = await admin.post(path(account, "disputes/nope/resolution"), {"outcome": "upheld"})
    assert unknown.status == 422
    assert error_code(unknown) == "no_open_dispute"


async def test_when_a_dispute_or_cease_arrived_is_kept_and_never_in_the_future(
    admin: Api, account: dict[str, Any]
) -> None:
    """received_at is recorded on the event; a future one is 400 invalid_date and records
    nothing; a bare date of today is today, not its last moment."""
    future = await admin.post(
        path(account, "disputes"),
        {"reason": "not mine", "received_at": "2030-01-01T00:00:00Z", "written": True},
    )
    assert future.status == 400, future.text
    assert error_code(future) == "invalid_date"
    today = await admin.post(
        path(account, "disputes"),
        {"reason": "not mine", "received_at": "2026-03-02", "written": False},
    )
    assert today.status == 201, today.text
    ceased = await admin.post(path(account, "cease"), {"received_at": "2026-03-01T09:30:00Z"})
    assert ceased.status == 201, ceased.text
    late_cease = await admin.post(path(account, "cease"), {"received_at": "2026-03-03"})
    assert error_code(late_cease) == "invalid_date"
    events = (await admin.get(f"/v1/accounts/{account['id']}/history")).json["events"]
    data = {e["type"]: e["data"] for e in events}
    assert data["DisputeRaised"]["written"] is False
    assert data["DisputeRaised"]["received_at"].startswith("2026-03-02T")
    assert data["CeaseCommunicationReceived"]["received_at"].startswith("2026-03-01T09:30:00")
    assert [e["type"] for e in events].count("DisputeRaised") == 1


async def test_complaint_and_its_resolution(admin: Api, account: dict[str, Any]) -> None:
    """A complaint flags the account; its description is kept as a note; resolution clears it."""
    complaint = await admin.post(
        path(account, "complaints"),
        {"channel": "phone", "category": "conduct", "description": "rude agent"},
    )
    assert complaint.status == 201, complaint.text
    assert "complaint" in complaint.json["account"]["flags"]
    complaint_id = complaint.json["complaint_id"]
    resolved = await admin.post(
        path(account, f"complaints/{complaint_id}/resolution"), {"outcome": "apologised"}
    )
    assert resolved.status == 201
    assert "complaint" not in resolved.json["account"]["flags"]


async def test_compliance_facts(admin: Api, account: dict[str, Any]) -> None:
    """Cease, consent, attorney, bankruptcy and death are recorded and flagged."""
    assert (
        await admin.post(path(account, "consents"), {"channel": "sms", "granted": False})
    ).status == 201
    assert (
        await admin.post(path(account, "consents"), {"channel": "sms", "granted": True})
    ).status == 201
    attorney = await admin.post(path(account, "attorney"), {"firm": "Dewey & Co"})
    assert "attorney" in attorney.json["account"]["flags"]
    bankrupt = await admin.post(
        path(account, "bankruptcy"), {"chapter": "7", "case_number": "26-1"}
    )
    assert "bankrupt" in bankrupt.json["account"]["flags"]
    deceased = await admin.post(path(account, "deceased"), {"date_of_death": "2026-02-01"})
    assert "deceased" in deceased.json["account"]["flags"]
    cease = await admin.post(path(account, "cease"), {})
    assert "ceased" in cease.json["account"]["flags"]


async def test_agency_placement_and_recall(admin: Api, account: dict[str, Any]) -> None:
    """Placement with an agency makes it the holder; a recall gives the account back."""
    placed = await admin.post(
        path(account, "placement"), {"agency": "north", "commission_rate": "0.3"}
    )
    assert placed.status == 201, placed.text
    assert placed.json["account"]["holder"] == {"kind": "agency", "name": "north"}
    assert placed.json["account"]["status"] == "with_agency"
    bad_rate = await admin.post(
        path(account, "placement"), {"agency": "x", "commission_rate": "1.5"}
    )
    assert bad_rate.status == 400
    recalled = await admin.post(path(account, "recall"), {"reason": "end of term"})
    assert recalled.json["account"]["status"] == "active"


async def test_legal_referral_and_status(admin: Api, account: dict[str, Any]) -> None:
    """A referral hands the account to a law firm, whose legal status then changes."""
    referred = await admin.post(path(account, "legal-referral"), {"firm": "Law & Partners"})
    assert referred.status == 201, referred.text
    assert referred.json["account"]["holder"]["kind"] == "law_firm"
    status = await admin.post(
        path(account, "legal-status"),
        {"status": "judgment", "judgment_amount": "1300.00", "judgment_date": "2026-03-01"},
    )
    assert status.status == 201, status.text
    assert status.json["account"]["legal_status"] == "judgment"
    served = await admin.post(
        path(account, "legal-status"),
        {"status": "garnishment", "details": "Wage garnishment order served on the employer"},
    )
    assert served.status == 201, served.text
    history = await admin.get(f"/v1/accounts/{account['id']}/history")
    changes = [e["data"] for e in history.json["events"] if e["type"] == "LegalStatusChanged"]
    assert [(c["legal_status"], c["details"]) for c in changes] == [
        ("judgment", ""),
        ("garnishment", "Wage garnishment order served on the employer"),
    ]


async def test_sale_notes_and_closure(admin: Api, account: dict[str, Any]) -> None:
    """A sold account belongs to the buyer and refuses closure; another account closes."""
    note = await admin.post(path(account, "notes"), {"text": "called HR", "agent": "agent-02"})
    assert note.status == 201, note.text
    sold = await admin.post(
        path(account, "sale"),
        {"buyer": "Buyer LLC", "price": "120.00", "sold_at": "2026-03-02", "portfolio": "P-7"},
    )
    assert sold.status == 201, sold.text
    assert sold.json["account"]["holder"] == {"kind": "buyer", "name": "Buyer LLC"}
    refused = await admin.post(path(account, "closure"), {"reason": "uncollectible"})
    assert refused.status == 422
    assert error_code(refused) == "account_sold"
    other = (await admin.post("/v1/accounts", placement_body("ACC-0002"))).json
    closed = await admin.post(path(other, "closure"), {"reason": "uncollectible", "note": "gone"})
    assert closed.status == 201, closed.text
    assert closed.json["account"]["status"] == "closed"
