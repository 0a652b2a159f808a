"""The authorization matrix: every route of contract v1 x every kind of caller.

The routes come from their declarations (``api.endpoints.V1``), so a route added
later joins the matrix, and fails it until ``ROUTES`` says what it needs.  What a
caller should get is the issue's table (``ISSUE``), kept here apart from the actions
the routes declare and from ``ledger.access``; both are checked against it.

Outcomes:

* ``ok`` - the route's success status (writes go to a fresh account of their own);
* ``forbidden`` - 403 ``forbidden``: the role may not, on an account it sees;
* ``hidden`` - 404, the very body a truly missing id gets: an account outside the
  caller's scope (another creditor, agency or law firm) does not exist for it;
* ``unauthorized`` - 401: a revoked, forged or malformed token, or none;
* ``token_blind`` - a partner callback authenticated by a signature: whatever the
  bearer token, or none, the answer is the one without a token.

Routes beyond the issue's table (partner callbacks, activity imports) narrow their
action to fewer roles in their handlers; ``Spec.roles`` says which.

A refused request records nothing: the account's version is checked after it.
"""

from __future__ import annotations

import copy
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from api_helpers import conforms, placement_body
from sanic import Sanic
from sanic_testing import testing

from api.config import ServerConfig
from api.endpoints import V1
from bootstrap import build_service
from ledger.access import ACTIONS, ROLES, Principal, can
from ledger.clock import MovableClock
from ledger.services import LedgerService
from plugins.manager import build_plugin_manager
from server import create_app

#: The module shares one event loop: its app and session live as long as the module.
module_loop = pytest.mark.asyncio(loop_scope="module")

CREDITOR = "acme-bank"
AGENCY, OTHER_AGENCY = "agency-a", "agency-b"
FIRM, OTHER_FIRM = "firm-f", "firm-g"

# --------------------------------------------------------------- the issue's table

#: Who may do each action on the accounts they see (issue 5, "Behaviour"; the table
#: in ``ledger.access``).
ISSUE: dict[str, frozenset[str]] = {
    "account.read": frozenset(ROLES),
    "account.write": frozenset({"admin", "collector"}),
    "contact.write": frozenset({"admin", "collector", "agency", "lawfirm"}),
    "promise.write": frozenset({"admin", "collector", "agency", "lawfirm"}),
    "message.write": frozenset({"admin", "collector"}),
    "payment.write": frozenset({"admin", "collector", "agency", "lawfirm"}),
    "payment.reverse": frozenset({"admin", "collector"}),
    "legal_status.write": frozenset({"admin", "collector", "agency", "lawfirm"}),
    "history.read": frozenset({"admin", "collector", "auditor"}),
    "feed.read": frozenset(ROLES),
    "report.read": frozenset({"admin", "auditor"}),
    "plugins.read": frozenset({"admin", "auditor"}),
    "admin": frozenset({"admin"}),
}


@dataclass(frozen=True)
class Caller:
    """Who is asking: a token of a role and scope, or no valid token at all."""

    role: str | None
    scope: dict[str, str] = field(default_factory=dict)
    #: The shared account it is pointed at: "plain" (held by the creditor), "agency"
    #: (placed with agency A) or "firm" (referred to firm F).
    account: str = "plain"
    #: False when that account is outside its scope (it must look missing).
    in_scope: bool = True
    #: How its Authorization header goes wrong, for callers without a valid token.
    token: str | None = None


CALLERS: dict[str, Caller] = {
    "admin": Caller("admin"),
    "collector": Caller("collector", {"creditor": CREDITOR}),
    "collector_other": Caller("collector", {"creditor": "globex-finance"}, in_scope=False),
    "auditor": Caller("auditor"),
    "agency_a": Caller("agency", {"agency": AGENCY}, account="agency"),
    "agency_b": Caller("agency", {"agency": OTHER_AGENCY}, account="agency", in_scope=False),
    "lawfirm": Caller("lawfirm", {"firm": FIRM}, account="firm"),
    "lawfirm_other": Caller("lawfirm", {"firm": OTHER_FIRM}, account="firm", in_scope=False),
    "revoked": Caller(None, token="revoked"),
    "forged": Caller(None, token="forged"),
    "malformed": Caller(None, token="malformed"),
    "no_token": Caller(None, token="none"),
}

# ----------------------------------------------------------------- the routes

Body = dict[str, Any] | Callable[[str], dict[str, Any]] | None


@dataclass(frozen=True)
class Spec:
    """What the matrix needs to know of a route."""

    action: str | None
    ok: int = 200
    body: Body = None
    query: str = ""
    #: The holder a fresh account needs for the write to succeed ("agency", "firm").
    needs: str | None = None
    #: A sub-resource the path names, created first ("payment", "plan", ...).
    prereq: str | None = None
    #: A placement: out of a collector's scope when it names another creditor.
    creditor_scoped: bool = False
    #: The only roles the handler lets through, when fewer than the action's.
    roles: frozenset[str] | None = None
    #: The action a refusal by the handler itself names (``details.action``).
    refused_as: str | None = None
    #: Authenticated by a partner's signature: bearer tokens make no difference.
    signed: bool = False

    def request_body(self, caller: str) -> dict[str, Any] | None:
        """The body ``caller`` sends (some bodies name the caller's own agency)."""
        if callable(self.body):
            return self.body(caller)
        return copy.deepcopy(self.body)


_references = itertools.count(1)


def _placement(caller: str = "admin") -> dict[str, Any]:
    return placement_body(reference=f"AUTHZ-{next(_references):04d}", creditor=CREDITOR)


def _activity_file(caller: str) -> dict[str, Any]:
    """An activity file with a header and no rows; an admin names the agency."""
    body = {"csv": "row_key,kind,account_id\n", "source": "matrix.csv"}
    return {**body, "agency": AGENCY} if CALLERS[caller].role == "admin" else body


INSTALLMENTS = [
    {"due_date": "2026-04-01", "amount": "600.00"},
    {"due_date": "2026-05-01", "amount": "600.00"},
]
A = "/v1/accounts/{id}"

ROUTES: dict[tuple[str, str], Spec] = {
    ("POST", "/v1/accounts"): Spec(
        "account.write", 201, _placement, creditor_scoped=True, refused_as="account.write"
    ),
    ("GET", A): Spec("account.read"),
    ("GET", "/v1/accounts"): Spec("account.read", query="?limit=5"),
    ("POST", f"{A}/contacts"): Spec(
        "contact.write",
        201,
        {
            "channel": "phone",
            "direction": "inbound",
            "outcome": "right_party_contact",
            "occurred_at": "2026-03-02T16:00:00Z",
        },
    ),
    ("GET", f"{A}/contact-check"): Spec("account.read", query="?channel=email"),
    ("POST", f"{A}/messages"): Spec(
        "message.write", 202, {"channel": "email", "template": "reminder"}
    ),
    ("POST", f"{A}/promises"): Spec(
        "promise.write", 201, {"amount": "100.00", "due_date": "2026-03-20"}
    ),
    ("POST", f"{A}/payments"): Spec("payment.write", 201, {"amount": "10.00", "method": "card"}),
    ("POST", f"{A}/payments/{{payment_id}}/reversal"): Spec(
        "payment.reverse", 201, {"reason": "returned unpaid"}, prereq="payment"
    ),
    ("POST", f"{A}/plans"): Spec("account.write", 201, {"installments": INSTALLMENTS}),
    ("POST", f"{A}/plans/{{plan_id}}/amendment"): Spec(
        "account.write",
        201,
        {"installments": INSTALLMENTS, "reason": "new dates"},
        prereq="plan",
    ),
    ("POST", f"{A}/plans/{{plan_id}}/cancellation"): Spec(
        "account.write", 201, {"reason": "debtor asked"}, prereq="plan"
    ),
    ("POST", f"{A}/charges"): Spec(
        "account.write", 201, {"component": "fees", "amount": "5.00", "reason": "late fee"}
    ),
    ("POST", f"{A}/waivers"): Spec(
        "account.write", 201, {"component": "interest", "amount": "5.00", "reason": "goodwill"}
    ),
    ("POST", f"{A}/disputes"): Spec(
        "account.write", 201, {"reason": "not mine", "received_at": "2026-03-02", "written": True}
    ),
    ("POST", f"{A}/disputes/{{dispute_id}}/verification"): Spec(
        "account.write", 201, {}, prereq="dispute"
    ),
    ("POST", f"{A}/disputes/{{dispute_id}}/resolution"): Spec(
        "account.write", 201, {"outcome": "rejected"}, prereq="dispute"
    ),
    ("POST", f"{A}/complaints"): Spec(
        "account.write", 201, {"channel": "phone", "category": "conduct"}
    ),
    ("POST", f"{A}/complaints/{{complaint_id}}/resolution"): Spec(
        "account.write", 201, {"outcome": "apology sent"}, prereq="complaint"
    ),
    ("POST", f"{A}/cease"): Spec("account.write", 201, {"received_at": "2026-03-02"}),
    ("POST", f"{A}/breathing-space"): Spec(
        "account.write",
        201,
        {"kind": "standard", "started_on": "2026-03-02", "reference": "BS-1"},
    ),
    ("POST", f"{A}/breathing-space/treatment-end"): Spec(
        "account.write", 201, {"treatment_ended_on": "2026-03-02"}, prereq="crisis"
    ),
    ("POST", f"{A}/breathing-space/cancellation"): Spec(
        "account.write",
        201,
        {"ended_on": "2026-03-02", "reason": "adviser cancelled"},
        prereq="breathing_space",
    ),
    ("POST", f"{A}/contact-preferences"): Spec(
        "account.write",
        201,
        {"refused_channels": ["sms"], "window_start": "09:00", "window_end": "18:00"},
    ),
    ("POST", f"{A}/limitation"): Spec(
        "account.write", 201, {"expires_on": "2031-11-30", "basis": "IL 5-year written contract"}
    ),
    ("POST", f"{A}/call-consents"): Spec(
        "contact.write",
        201,
        {"given_at": "2026-03-02T15:00:00Z", "until": "2026-03-02T23:00:00Z"},
    ),
    ("POST", f"{A}/consents"): Spec("account.write", 201, {"channel": "sms", "granted": True}),
    ("POST", f"{A}/attorney"): Spec("account.write", 201, {"firm": "Debtor Counsel LLP"}),
    ("POST", f"{A}/bankruptcy"): Spec("account.write", 201, {"chapter": "7"}),
    ("POST", f"{A}/deceased"): Spec("account.write", 201, {}),
    ("POST", f"{A}/placement"): Spec(
        "account.write", 201, {"agency": "agency-c", "commission_rate": "0.25"}
    ),
    ("POST", f"{A}/recall"): Spec("account.write", 201, {"reason": "term ended"}, needs="agency"),
    ("POST", f"{A}/legal-referral"): Spec("account.write", 201, {"firm": "firm-h"}),
    ("POST", f"{A}/legal-status"): Spec(
        "legal_status.write", 201, {"status": "suit_filed"}, needs="firm"
    ),
    ("POST", f"{A}/sale"): Spec(
        "account.write",
        201,
        {"buyer": "buyer-co", "price": "100.00", "sold_at": "2026-03-02", "portfolio": "P-1"},
    ),
    ("POST", f"{A}/notes"): Spec("account.write", 201, {"text": "called, no answer"}),
    ("POST", f"{A}/closure"): Spec("account.write", 201, {"reason": "uncollectible"}),
    ("GET", f"{A}/history"): Spec("history.read"),
    ("GET", f"{A}/verification"): Spec("history.read"),
    ("GET", f"{A}/itemization"): Spec("account.read"),
    ("GET", "/v1/feed"): Spec("feed.read", query="?limit=5"),
    ("GET", "/v1/reports/portfolio"): Spec("report.read"),
    ("GET", "/v1/worklist"): Spec("account.read", query="?limit=5"),
    ("GET", "/v1/plugins"): Spec("plugins.read"),
    ("GET", "/healthz"): Spec(None),
    ("GET", "/metrics"): Spec(None),
    ("GET", "/openapi.json"): Spec(None),
    ("GET", "/docs"): Spec(None),
    # Beyond the issue's table: partners calling in.
    ("POST", "/v1/imports"): Spec(
        "payment.write",
        200,
        _activity_file,
        roles=frozenset({"admin", "agency"}),
        refused_as="import",
    ),
    ("POST", "/v1/callbacks/sms"): Spec(
        None,
        200,
        # A Twilio step that is not an outcome: taken, and records nothing.
        {"MessageSid": "SM-matrix", "MessageStatus": "queued"},
        roles=frozenset({"admin"}),
        refused_as="admin",
    ),
    ("POST", "/v1/callbacks/lawfirm/{firm}"): Spec(
        None,
        body={
            "delivery_id": "d-1",
            "account_id": "x",
            "status": "served",
            "effective_on": "2026-03-02",
        },
        signed=True,
    ),
}

DECLARED = [(e.method, e.path) for e in V1.endpoints]

#: Cases where the API is known to differ from the issue: strict, so a fix shows.
KNOWN_BUGS: dict[tuple[tuple[str, str], str], str] = {}


def expected(route: tuple[str, str], caller: Caller) -> str:
    spec = ROUTES[route]
    if spec.signed:
        return "token_blind"
    if spec.action is None and spec.roles is None:
        return "ok"
    if caller.role is None:
        return "unauthorized"
    if "{id}" in route[1] and not caller.in_scope:
        return "hidden"
    if spec.action is not None and caller.role not in ISSUE[spec.action]:
        return "forbidden"
    if spec.roles is not None and caller.role not in spec.roles:
        return "forbidden"
    if spec.creditor_scoped and not caller.in_scope:
        return "forbidden"
    return "ok"


def refused_action(spec: Spec, role: str) -> str | None:
    """The action a 403 names: the route's, or the handler's own for a narrower refusal."""
    if spec.action is not None and role not in ISSUE[spec.action]:
        return spec.action
    return spec.refused_as


def _cases() -> list[Any]:
    cases = []
    for route in DECLARED:
        for name in CALLERS:
            bug = KNOWN_BUGS.get((route, name))
            marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
            cases.append(
                pytest.param(route, name, id=f"{route[0]} {route[1]} | {name}", marks=marks)
            )
    return cases


# -------------------------------------------------------------------- the fixture


class Session:
    """The module's app and tokens, started once, with the accounts the callers probe.

    sanic-testing's ``asgi_client`` starts the app around every request (some 30 ms
    of route compiling on this machine); the matrix sends several hundred requests, so
    only the first goes through ``asgi_client.request`` (which starts the app and
    hooks request capture into every route) and the rest through the same client's
    ASGI transport directly.
    """

    def __init__(self, app: Sanic[Any, Any], service: LedgerService) -> None:
        self.app = app
        self.client = app.asgi_client
        self.service = service
        self.started = False
        self.tokens: dict[str, str | None] = {}
        self.accounts: dict[str, str] = {}

    def token_for(self, name: str) -> str | None:
        if name not in self.tokens:
            caller = CALLERS[name]
            if caller.role is not None:
                _, self.tokens[name] = self.service.tokens().create(
                    caller.role, label=f"matrix {name}", **caller.scope
                )
            elif caller.token == "revoked":
                principal, text = self.service.tokens().create("admin", label="revoked")
                assert self.service.tokens().revoke(principal.token_id)
                self.tokens[name] = text
            elif caller.token == "forged":
                principal, _ = self.service.tokens().create("admin", label="forged")
                self.tokens[name] = f"arr_{principal.token_id}_{'x' * 43}"
            elif caller.token == "malformed":
                self.tokens[name] = "not-a-token"
            else:
                self.tokens[name] = None
        return self.tokens[name]

    async def send(
        self, method: str, path: str, token: str | None, body: dict[str, Any] | None = None
    ) -> testing.TestingResponse:
        """The response, checked against the route's documented statuses and schemas."""
        kwargs: dict[str, Any] = {
            "headers": {"Authorization": f"Bearer {token}"} if token is not None else {}
        }
        if method == "POST":
            kwargs["json"] = {} if body is None else body
        self.client.last_request = None
        if not self.started:
            _, response = await self.client.request(method, path, **kwargs)
            self.started = True
        else:
            response = await httpx.AsyncClient.request(self.client, method, path, **kwargs)
            response.__class__ = testing.TestingResponse
        request = self.client.last_request
        assert request is not None, f"{method} {path} reached no route"
        conforms(self.app, request, response)
        return response

    async def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self.send(method, path, self.token_for("admin"), body)
        assert response.status in (200, 201, 202), f"{method} {path}: {response.text}"
        return response.json

    async def new_account(self, holder: str = "plain") -> str:
        """A freshly placed account of ``CREDITOR``, held by the creditor, agency A or firm F."""
        account_id = str((await self.admin("POST", "/v1/accounts", _placement()))["id"])
        if holder == "agency":
            await self.admin(
                "POST",
                f"/v1/accounts/{account_id}/placement",
                {"agency": AGENCY, "commission_rate": "0.25"},
            )
        elif holder == "firm":
            await self.admin("POST", f"/v1/accounts/{account_id}/legal-referral", {"firm": FIRM})
        return account_id

    async def prerequisite(self, account_id: str, kind: str | None) -> dict[str, str]:
        """The sub-resource ids a path names, created on ``account_id`` first."""
        base = f"/v1/accounts/{account_id}"
        if kind == "payment":
            paid = await self.admin(
                "POST", f"{base}/payments", {"amount": "20.00", "method": "ach"}
            )
            return {"payment_id": paid["payment_id"]}
        if kind == "plan":
            plan = await self.admin("POST", f"{base}/plans", {"installments": INSTALLMENTS})
            return {"plan_id": plan["plan_id"]}
        if kind == "dispute":
            dispute = await self.admin(
                "POST",
                f"{base}/disputes",
                {"reason": "amount wrong", "received_at": "2026-03-02", "written": False},
            )
            return {"dispute_id": dispute["dispute_id"]}
        if kind in ("breathing_space", "crisis"):
            await self.admin(
                "POST",
                f"{base}/breathing-space",
                {
                    "kind": "standard" if kind == "breathing_space" else "mental_health",
                    "started_on": "2026-03-02",
                    "reference": "BS-1",
                },
            )
            return {}
        if kind == "complaint":
            complaint = await self.admin(
                "POST", f"{base}/complaints", {"channel": "email", "category": "conduct"}
            )
            return {"complaint_id": complaint["complaint_id"]}
        return {}

    def version(self, account_id: str) -> int:
        return int(self.service.get_account(uuid.UUID(account_id)).version)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def session(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Session]:
    """One ledger and one app for the whole matrix; accounts with the creditor, agency A
    and firm F for the callers to probe."""
    # 10:00 in Chicago on a Monday: the contact rules let a message go out.
    clock = MovableClock(datetime(2026, 3, 2, 16, 0, tzinfo=UTC), tick=timedelta(seconds=1))
    store = Path(tmp_path_factory.mktemp("authz")) / "authz.db"
    plugins = build_plugin_manager(entry_points=False)
    service = build_service(f"sqlite:///{store}", clock=clock, plugins=plugins)
    app = create_app(service, ServerConfig(worker=False), plugins=plugins, name="arrears_authz")
    session = Session(app, service)
    for holder in ("plain", "agency", "firm"):
        session.accounts[holder] = await session.new_account(holder)
    yield session
    executor = app.ctx.state.executor
    if executor is not None:
        executor.shutdown(wait=True)
    service.ledger.close()


def _fill(path: str, ids: dict[str, str]) -> str:
    for name, value in ids.items():
        path = path.replace(f"{{{name}}}", value)
    return path


# ------------------------------------------------------------------------ the tests


def test_the_matrix_covers_every_declared_route() -> None:
    """Every route declared in api/ has a row here, and no row names a route that is gone."""
    assert len(DECLARED) == len(set(DECLARED))
    assert set(ROUTES) == set(DECLARED)


def test_the_app_serves_exactly_the_declared_routes(session: Session) -> None:
    """No route reaches the app except through the declarations the matrix enumerates."""
    served = {
        (method, "/" + route.path.lstrip("/"))
        for route in session.app.router.routes
        for method in route.methods
        if method != "HEAD"
    }
    declared = {(e.method, e.sanic_path) for e in V1.endpoints}
    assert served == declared


def test_routes_declare_the_actions_of_the_issue() -> None:
    """Each route asks ledger.access for the action the issue gives it."""
    assert {(e.method, e.path): e.action for e in V1.endpoints} == {
        key: spec.action for key, spec in ROUTES.items()
    }


def test_ledger_access_is_the_issue_s_table() -> None:
    """ledger.access allows exactly what the issue's table allows, role by role."""
    assert set(ISSUE) == set(ACTIONS)
    scopes = {"agency": {"agency": AGENCY}, "lawfirm": {"firm": FIRM}}
    for action, role in itertools.product(ACTIONS, ROLES):
        principal = Principal("t", role, **scopes.get(role, {}))
        assert can(principal, action) == (role in ISSUE[action]), (action, role)


@module_loop
@pytest.mark.parametrize(("route", "name"), _cases())
async def test_route_x_caller(session: Session, route: tuple[str, str], name: str) -> None:
    """The route answers the caller as the issue's table says, and a refusal records nothing."""
    method, path = route
    spec = ROUTES[route]
    caller = CALLERS[name]
    outcome = expected(route, caller)
    token = session.token_for(name)
    on_account = "{id}" in path
    if outcome == "ok" and on_account and method == "POST":
        # A write that succeeds changes its account: each gets one of its own.
        holder = caller.account if caller.role in ("agency", "lawfirm") else spec.needs
        account_id = await session.new_account(holder or "plain")
        ids = {"id": account_id, **await session.prerequisite(account_id, spec.prereq)}
    else:
        account_id = session.accounts[caller.account]
        ids = {"id": account_id, "payment_id": "p-1", "plan_id": "pl-1"}
        ids |= {"dispute_id": "d-1", "complaint_id": "c-1", "firm": FIRM}
    url = _fill(path, ids) + spec.query
    before = session.version(account_id) if on_account else None
    response = await session.send(method, url, token, spec.request_body(name))

    if outcome == "ok" and route == ("POST", f"{A}/legal-status") and caller.role == "agency":
        # The agency may record legal status, but the ledger takes it only while a law
        # firm holds the account: a domain refusal, not an access one, and nothing recorded.
        assert response.status == 422, response.text
        assert response.json["error"]["code"] == "invalid_transition"
        assert session.version(account_id) == before
        return
    if outcome == "ok":
        assert response.status == spec.ok, response.text
        return
    if outcome == "token_blind":
        tokenless = await session.send(method, url, None, spec.request_body(name))
        assert response.status < 500, response.text
        assert (response.status, response.json) == (tokenless.status, tokenless.json)
        return
    error = response.json["error"]
    if outcome == "unauthorized":
        assert response.status == 401, response.text
        assert error["code"] == "unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")
    elif outcome == "forbidden":
        assert response.status == 403, response.text
        assert error["code"] == "forbidden"
        assert caller.role is not None
        assert error["details"] == {
            "role": caller.role,
            "action": refused_action(spec, caller.role),
        }
    else:
        missing_id = str(uuid.uuid4())
        missing = await session.send(
            method,
            _fill(path, {**ids, "id": missing_id}) + spec.query,
            token,
            spec.request_body(name),
        )
        assert (response.status, missing.status) == (404, 404), response.text
        as_missing = json.loads(json.dumps(missing.json).replace(missing_id, account_id))
        assert response.json == as_missing
        assert response.headers["content-type"] == missing.headers["content-type"]
    if before is not None:
        assert session.version(account_id) == before, "a refused request recorded something"


@module_loop
@pytest.mark.parametrize("name", ["collector_other", "agency_b", "lawfirm_other"])
async def test_lists_and_the_feed_leave_out_accounts_outside_the_scope(
    session: Session, name: str
) -> None:
    """A caller probing another's accounts finds none of them in lists, worklist or feed."""
    token = session.token_for(name)
    theirs = session.accounts[CALLERS[name].account]
    listed = await session.send("GET", "/v1/accounts?limit=500", token)
    assert theirs not in {item["id"] for item in listed.json["items"]}
    feed = await session.send("GET", "/v1/feed?limit=500", token)
    assert theirs not in {event["account_id"] for event in feed.json["events"]}
    worklist = await session.send("GET", "/v1/worklist?limit=500", token)
    assert theirs not in json.dumps(worklist.json)


@module_loop
@pytest.mark.parametrize("name", ["agency_a", "lawfirm"])
async def test_an_agency_or_firm_lists_only_its_own_accounts(session: Session, name: str) -> None:
    """Agency A and firm F list and follow exactly the accounts they hold, nothing else."""
    token = session.token_for(name)
    holder = {"agency_a": ("agency", AGENCY), "lawfirm": ("law_firm", FIRM)}[name]
    listed = await session.send("GET", "/v1/accounts?limit=500", token)
    items = listed.json["items"]
    assert session.accounts[CALLERS[name].account] in {item["id"] for item in items}
    assert {(i["holder"]["kind"], i["holder"]["name"]) for i in items} == {holder}
    feed = await session.send("GET", "/v1/feed?limit=500", token)
    visible = {item["id"] for item in items}
    assert feed.json["events"]
    assert {event["account_id"] for event in feed.json["events"]} <= visible
