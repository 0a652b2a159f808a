"""Health, metrics, and the contract itself (``/openapi.json``, ``/docs``); all public."""

from __future__ import annotations

from api.endpoints import V1, Call, Reply
from api.schemas import integer, obj
from ledger import errors

PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


@V1.route(
    "GET",
    "/healthz",
    tag="system",
    action=None,
    responses={
        200: (
            "The server is up and its store answers",
            obj(
                {
                    "status": {"type": "string", "enum": ["ok"]},
                    "head": integer("Events in the ledger", minimum=0),
                },
                required=("status",),
                closed=False,
            ),
        )
    },
)
def healthz(call: Call) -> Reply:
    """Liveness and readiness: the store is reachable."""
    try:
        head = int(call.service.ledger.recorder.max_notification_id() or 0)
    except Exception as e:  # any driver error means: not ready
        raise errors.StoreError(f"the store does not answer: {type(e).__name__}") from e
    return Reply(200, {"status": "ok", "head": head})


@V1.route(
    "GET",
    "/metrics",
    tag="system",
    action=None,
    content_type=PROMETHEUS,
    responses={200: ("Prometheus metrics (text exposition format 0.0.4)", {"type": "string"})},
)
def metrics(call: Call) -> Reply:
    """Requests, latencies, events appended and read-model lag, for Prometheus."""
    engine = call.service.read_models().engine
    statuses = engine.status()
    head = statuses[0].head if statuses else engine.head()
    text = call.extra["metrics"].render(head, statuses)
    return Reply(200, text, content_type=PROMETHEUS)


@V1.route(
    "GET",
    "/openapi.json",
    tag="system",
    action=None,
    responses={200: ("This API's OpenAPI 3.1 document", {"type": "object"})},
)
def openapi(call: Call) -> Reply:
    """The OpenAPI 3.1 document of this API: every route, body, response and error."""
    return Reply(200, call.extra["openapi"])


@V1.route(
    "GET",
    "/docs",
    tag="system",
    action=None,
    content_type="text/html; charset=utf-8",
    responses={200: ("The API documentation, readable offline", {"type": "string"})},
)
def docs(call: Call) -> Reply:
    """The API documentation as one self-contained page (no network needed)."""
    return Reply(200, call.extra["docs"], content_type="text/html; charset=utf-8")
