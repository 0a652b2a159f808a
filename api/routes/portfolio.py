"""Across accounts: the event feed, the portfolio report, the worklist, the plugins."""

from __future__ import annotations

from typing import Any

from api import views
from api.contract import EVENT, STRING
from api.endpoints import V1, Call, Param, Reply
from api.schemas import array, integer, moment_or_day, name_string, nullable, obj
from api.schemas import parse_moment_or_day as moment_of
from ledger import access
from plugins.manager import ArrearsPluginManager

LIMIT = Param("limit", integer("Items per page", minimum=1, maximum=500), "Page size")


@V1.route(
    "GET",
    "/v1/feed",
    tag="feed",
    action="feed.read",
    query=(
        Param(
            "after",
            integer("Events after this position", minimum=0),
            "Cursor: next of the page before",
        ),
        LIMIT,
    ),
    responses={
        200: (
            "Account events in global order, only those of accounts the caller sees",
            obj(
                {
                    "events": array(EVENT, "This page", max_items=500),
                    "next": integer("Pass as after for the next page", minimum=0),
                },
                required=("events", "next"),
                closed=False,
            ),
        )
    },
)
def feed(call: Call) -> Reply:
    """Follow the ledger: account events in order, from a cursor.

    ``next`` may move past events the caller does not see; keep passing it as
    ``after``.  An empty page with ``next`` equal to ``after`` means: nothing new yet.
    """
    principal = call.who
    page = call.service.feed(
        after=int(call.query.get("after", 0)),
        limit=call.limit(),
        visible=lambda row: access.sees_account(principal, row),
    )
    return Reply(200, {"events": [views.feed_event(e) for e in page.events], "next": page.next})


@V1.route(
    "GET",
    "/v1/reports/portfolio",
    tag="reports",
    action="report.read",
    query=(
        Param("as_of", moment_or_day("As recorded then (default now)"), "Report date"),
        Param("creditor", name_string("One creditor"), "Creditor"),
        Param("agency", name_string("One agency"), "Agency"),
    ),
    responses={
        200: (
            "Placed, collected, outstanding and aging by creditor and by agency",
            obj(
                {
                    "as_of": STRING,
                    "totals": array({"type": "object"}, "Per currency"),
                    "by_creditor": array({"type": "object"}, "Per creditor", max_items=100_000),
                    "by_agency": array({"type": "object"}, "Per agency", max_items=100_000),
                },
                required=("as_of", "by_creditor", "by_agency"),
                closed=False,
            ),
        )
    },
)
def portfolio_report(call: Call) -> Reply:
    """The portfolio report as the ledger stood on a date; the same today as then."""
    as_of = call.query.get("as_of")
    report = call.service.portfolio_report(
        moment_of(as_of, "as_of") if as_of else None,
        creditor=call.query.get("creditor"),
        agency=call.query.get("agency"),
    )
    return Reply(200, report.as_dict())


@V1.route(
    "GET",
    "/v1/worklist",
    tag="reports",
    action="account.read",
    query=(Param("agent", name_string("One agent's accounts", max_length=100), "Agent"), LIMIT),
    responses={
        200: (
            "Accounts to work now, ranked, and those left out (do not contact) with why",
            obj(
                {
                    "items": array({"type": "object"}, "Ranked", max_items=500),
                    "left_out": array(
                        {"type": "object"}, "Not to be contacted", max_items=1_000_000
                    ),
                    "total": integer("Accounts listed before limit", minimum=0),
                    "agent": nullable(STRING),
                },
                required=("items", "left_out", "total"),
                closed=False,
            ),
        )
    },
)
def worklist(call: Call) -> Reply:
    """Who to work now, ranked; accounts that must not be contacted are left out."""
    principal = call.who
    limit = call.limit()
    result = call.service.worklist(agent=call.query.get("agent"))
    items = [i for i in result.items if access.sees_account(principal, _item_view(i.as_dict()))]
    left_out = [
        e for e in result.left_out if access.sees_account(principal, {"creditor": e.creditor})
    ]
    body = result.as_dict()
    body["total"] = len(items)
    body["items"] = [dict(item.as_dict(), position=n) for n, item in enumerate(items[:limit], 1)]
    body["left_out"] = [e.as_dict() for e in left_out]
    body.pop("left_out_counts", None)
    counts: dict[str, int] = {}
    for entry in left_out:
        counts[entry.excluded_because] = counts.get(entry.excluded_because, 0) + 1
    body["left_out_counts"] = dict(sorted(counts.items()))
    return Reply(200, body)


def _item_view(item: dict[str, Any]) -> dict[str, Any]:
    kind = {"with_agency": "agency", "with_law_firm": "law_firm", "sold": "buyer"}.get(
        item["status"], "creditor"
    )
    return {"creditor": item["creditor"], "holder": {"kind": kind, "name": item["holder"]}}


@V1.route(
    "GET",
    "/v1/plugins",
    tag="system",
    action="plugins.read",
    responses={
        200: (
            "The plugins loaded, where from, and the hooks each implements",
            obj(
                {"plugins": array({"type": "object"}, "Built-in first", max_items=10_000)},
                required=("plugins",),
                closed=False,
            ),
        )
    },
)
def list_plugins(call: Call) -> Reply:
    """The plugins this server loaded."""
    pm = call.plugins
    infos = pm.plugin_infos() if isinstance(pm, ArrearsPluginManager) else []
    return Reply(200, {"plugins": [i.as_dict() for i in infos]})
