"""Partners calling in: law firms' signed status updates, SMS delivery reports, agency
activity files.

The callbacks carry no bearer token: a law firm authenticates by signing the
body (``Arrears-Signature``, ``adapters.signing``), Twilio by
``X-Twilio-Signature``.  A signature is over the bytes as sent and travels in a
header, and the pipeline hands a handler the parsed body only, so these handlers
read the raw request through Sanic's ``Request.get_current()`` (a context
variable, copied into the worker thread with the rest of the request's context).

The partners' settings come from the ``[adapters.*]`` tables: the loaded config
in ``call.extra["settings"]`` when the server put it there, else the file
``ARREARS_CONFIG`` names, read per callback (callbacks are rare; a changed secret
then needs no restart).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import structlog
from sanic import Request

from adapters.agency.activity import import_activity
from adapters.config import AdapterConfigError, AdaptersConfig, parse_adapters, secret
from adapters.lawfirm.callbacks import CallbacksUnavailable, LawFirmCallbacks
from adapters.signing import HEADER, InvalidSignature
from adapters.sms import handle_status_callback, verify_twilio_signature
from api.auth import authenticate
from api.contract import STRING
from api.endpoints import V1, Call, Param, Reply
from api.errors import bad_request
from api.schemas import array, boolean, choice, day, integer, money, name_string, obj, text
from bootstrap import load_config
from ledger import errors
from ledger.access import require
from ledger.domain.account import LEGAL_STATUSES

log = structlog.get_logger("arrears.http")

TWILIO_HEADER = "X-Twilio-Signature"
FORM = "application/x-www-form-urlencoded"
CSV = "text/csv"
#: The CSV text of an import: as large as a request body may be.
MAX_CSV_CHARS = 1 << 20


# ------------------------------------------------------------------ plumbing


def _request() -> Request:
    """The request being served (see the module doc for why a handler needs it)."""
    return Request.get_current()


def _media_type(request: Request) -> str:
    return str(request.headers.get("content-type", "")).split(";")[0].strip().lower()


def _adapters(call: Call) -> AdaptersConfig:
    settings = call.extra.get("settings")
    try:
        if not isinstance(settings, Mapping) or not settings:
            settings = load_config()  # no config given to the app: ARREARS_CONFIG, read now
        return parse_adapters(settings)
    except (AdapterConfigError, SystemExit) as e:
        log.error("callback_config_unreadable", detail=str(e))
        raise CallbacksUnavailable(
            "the server's partner configuration cannot be read; retry later"
        ) from None


# ------------------------------------------------------------- law firms

CALLBACK_RESULT = obj(
    {
        "firm": STRING,
        "delivery_id": STRING,
        "account_id": STRING,
        "legal_status": STRING,
        "recorded": boolean("False when the ledger already held this update (a retry)"),
        "version": integer("The account's version holding the update", minimum=1),
    },
    required=("firm", "delivery_id", "account_id", "legal_status", "recorded", "version"),
    closed=False,
)


@V1.route(
    "POST",
    "/v1/callbacks/lawfirm/{firm}",
    tag="callbacks",
    action=None,
    body=obj(
        {
            "delivery_id": name_string("The firm's id of this callback: each is applied once"),
            "account_id": name_string("The account, as in the referral package", max_length=64),
            "status": choice(LEGAL_STATUSES, "Where the legal action stands"),
            "effective_on": day("When it took effect"),
            "judgment_amount": money("For a judgment: its amount."),
            "judgment_date": day("For a judgment: its date"),
            "court_reference": name_string("The court's reference", max_length=100),
            "firm_reference": name_string("The firm's reference for the case"),
            "details": text("What happened, in the firm's words", max_length=2000),
        },
        required=("delivery_id", "account_id", "status", "effective_on"),
        description="Signed with the firm's secret: header Arrears-Signature: "
        't=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{body}">.',
    ),
    responses={200: ("The update is in the ledger (recorded now, or before)", CALLBACK_RESULT)},
    extra_errors={
        401: "invalid_signature: not signed with the firm's secret; stale_signature: "
        "signed more than 5 minutes before or after the server's clock",
        404: "no such firm configured, or the account is not referred to it",
        409: "replayed_delivery: this delivery_id was applied before",
        413: "the body is too large",
        422: "the ledger refused the update (e.g. a judgment without amount and date)",
    },
)
def lawfirm_callback(call: Call) -> Reply:
    """Receive a law firm's signed status update on a referred account.

    No bearer token: the firm signs the body.  A forged, stale or replayed
    callback records nothing; a good one becomes a ``LegalStatusChanged`` event,
    and its ``delivery_id`` is remembered so that a replay is refused.
    """
    request = _request()
    receiver = LawFirmCallbacks(call.service, _adapters(call).lawfirms)
    result = receiver.receive(call.path["firm"], bytes(request.body), request.headers.get(HEADER))
    return Reply(200, result.as_dict())


# ------------------------------------------------------------------ SMS


@V1.route(
    "POST",
    "/v1/callbacks/sms",
    tag="callbacks",
    action=None,
    raw_media_types=("application/x-www-form-urlencoded",),
    body=obj(
        {
            "id": name_string("Generic: the message id (or, without account_id, the gateway's)"),
            "status": name_string("Generic: sent, delivered or failed", max_length=32),
            "account_id": name_string("Generic: the account", max_length=64),
            "detail": name_string("Generic: the gateway's error code", max_length=64),
        },
        description="A delivery report: the generic JSON shape with an admin token, or "
        "Twilio's status callback signed with X-Twilio-Signature.",
        closed=False,
    ),
    responses={
        200: (
            "The report was taken (recorded: whether it was news)",
            obj({"recorded": boolean("An event was recorded")}, required=("recorded",)),
        )
    },
    extra_errors={
        401: "unauthorized: no admin token (or invalid_signature: a bad X-Twilio-Signature)",
        403: "forbidden: the token is not an admin's",
        404: "no such account",
        409: "concurrency_conflict: the account kept changing; retry",
        413: "the body is too large",
        422: "unknown_message, or a report that names no message",
    },
)
def sms_callback(call: Call) -> Reply:
    """Record an SMS gateway's delivery report.

    With the ``twilio`` profile, a request carrying ``X-Twilio-Signature`` is
    checked against the auth token (over ``status_callback_url``, else the URL
    called); any other report needs an admin bearer token, since the generic
    profile has no signing secret.
    """
    request = _request()
    sms = _adapters(call).sms
    signature = request.headers.get(TWILIO_HEADER)
    payload: dict[str, Any] = dict(call.body)
    if _media_type(request) == FORM:
        payload = dict(parse_qsl(bytes(request.body).decode("utf-8", "replace")))
    if sms is not None and sms.profile == "twilio" and signature is not None:
        assert sms.auth_token_env is not None  # checked with the config
        try:
            token = secret(sms.auth_token_env, where="[adapters.sms] auth_token_env")
        except AdapterConfigError as e:
            log.error("callback_config_unreadable", detail=e.message)
            raise CallbacksUnavailable("SMS callbacks cannot be checked now; retry later") from e
        params = {str(k): str(v) for k, v in payload.items()}
        url = sms.status_callback_url or request.url
        if not verify_twilio_signature(url, params, str(signature), token):
            raise InvalidSignature(f"the {TWILIO_HEADER} does not match the auth token")
    else:
        principal = authenticate(call.service, request.headers.get("authorization"))
        require(principal, "admin")
    recorded = handle_status_callback(call.service, payload)
    return Reply(200, {"recorded": recorded})


# -------------------------------------------------------------- imports

ROW_RESULT = obj(
    {
        "row": integer("Data row number, from 1 (the header is not a row)", minimum=1),
        "row_key": STRING,
        "kind": STRING,
        "outcome": choice(
            ("posted", "already_posted", "rejected", "in_flight"), "What became of it"
        ),
        "code": STRING,
        "message": STRING,
        "result": STRING,
    },
    required=("row", "row_key", "kind", "outcome"),
    closed=False,
)
IMPORT_REPORT = obj(
    {
        "agency": STRING,
        "source": STRING,
        "posted": integer("Rows posted now", minimum=0),
        "already_posted": integer("Rows posted by an earlier import", minimum=0),
        "rejected": integer("Rows refused, with row number and reason", minimum=0),
        "in_flight": integer("Rows another import is posting now", minimum=0),
        "rows": array(ROW_RESULT, "One result per row, in file order", max_items=1_000_000),
    },
    required=("agency", "source", "posted", "already_posted", "rejected", "in_flight", "rows"),
    closed=False,
)


def import_input(
    media_type: str, raw: bytes, body: Mapping[str, Any], query_agency: str | None = None
) -> tuple[str | None, str, str]:
    """(agency, CSV text, source) of an import request: JSON ``{"agency"?, "csv",
    "source"?}``, or the CSV itself as ``text/csv`` (agency from the query)."""
    if media_type == CSV:
        try:
            return query_agency, raw.decode("utf-8-sig"), "api"
        except UnicodeDecodeError:
            raise bad_request("invalid_value", "the CSV must be UTF-8", field="body") from None
    csv_text = body.get("csv")
    if not isinstance(csv_text, str):
        raise bad_request("missing_field", "csv is required", field="csv")
    agency = body.get("agency", query_agency)
    source = body.get("source")
    return (
        agency if isinstance(agency, str) else None,
        csv_text,
        source if isinstance(source, str) else "api",
    )


@V1.route(
    "POST",
    "/v1/imports",
    tag="imports",
    action="payment.write",
    raw_media_types=("text/csv",),
    query=(
        Param(
            "agency",
            name_string("Whose activity (admin tokens)"),
            "The agency, when the body is the CSV itself (text/csv)",
        ),
    ),
    body=obj(
        {
            "agency": name_string("Whose activity (admin tokens; an agency's is its own)"),
            "csv": text("The activity file: CSV with a header row", max_length=MAX_CSV_CHARS),
            "source": name_string("The file's name, kept with each row (default api)"),
        },
        required=("csv",),
        description="An agency's activity file: contacts, promises, payments and status "
        "updates, one row each with its own row_key.",
    ),
    responses={
        200: ("Every row was posted now or before", IMPORT_REPORT),
        207: ("Some rows were rejected (or are in flight): see rows", IMPORT_REPORT),
    },
    extra_errors={422: "the file as a whole cannot be read (not CSV, a column twice)"},
)
def import_activity_file(call: Call) -> Reply:
    """Import an agency's activity file; each row is posted once, however often it is sent.

    An agency token imports for its own agency; an admin names the agency.
    Rows are checked first, then the valid ones posted, each keyed by its
    ``row_key``: sending the same file again posts nothing twice.
    """
    principal = call.who
    request = _request()
    agency, csv_text, source = import_input(
        _media_type(request), bytes(request.body), call.body, call.query.get("agency")
    )
    if principal.role == "agency":
        if agency is not None and agency != principal.agency:
            raise errors.Forbidden(
                "an agency token imports its own agency's activity only",
                role=principal.role,
                action="import",
            )
        agency = principal.agency
    elif principal.role != "admin":
        raise errors.Forbidden(
            f"{principal.role} tokens may not import activity files; use the agency's token "
            "or an admin token",
            role=principal.role,
            action="import",
        )
    if not agency:
        raise errors.ValidationError("name the agency whose activity this is", field="agency")
    report = import_activity(call.service, agency, csv_text, source=source)
    status = 200 if not (report.rejected or report.in_flight) else 207
    return Reply(status, report.as_dict())
