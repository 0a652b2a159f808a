"""``Idempotency-Key`` on every POST: a retry gets the original response, nothing twice.

The key is reserved in ``ledger.idempotency`` (scope: the caller's token id) before
the handler runs, and the response, success or domain error, is recorded with
it.  A retry of the same request replays that response (``Idempotent-Replayed:
true``); one that arrives while the first still runs waits for it; the same key
with another request is 409 ``idempotency_key_reused``.  If the handler fails
unexpectedly the reservation is released, so a retry runs again.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from api.endpoints import Reply
from api.errors import ApiError, bad_request, render
from ledger import errors
from ledger.idempotency import MAX_KEY_LENGTH, request_hash
from ledger.services import LedgerService

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"


def check_key(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise bad_request(
            "invalid_idempotency_key",
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
            field=HEADER,
        )
    return key


def encode(reply: Reply) -> bytes:
    return json.dumps(reply.body, ensure_ascii=False, separators=(",", ":")).encode()


def once(
    service: LedgerService,
    *,
    scope: str,
    key: str,
    method: str,
    path: str,
    body: bytes,
    wait: float,
    run: Callable[[], Reply],
) -> Reply:
    """``run()`` at most once per (scope, key) and request; its reply every time."""
    store = service.idempotency()
    digest = request_hash(method, path, body)
    begin = store.reserve(scope, check_key(key), digest, timeout=wait)
    if begin.outcome == "replay":
        assert begin.status is not None and begin.body is not None
        return Reply(begin.status, json.loads(begin.body), headers={REPLAYED: "true"})
    if begin.outcome != "proceed":
        raise ApiError(
            409,
            "idempotency_key_in_flight",
            f"a request with {HEADER} {key!r} is still running; retry it later",
            idempotency_key=key,
        )
    try:
        reply = run()
    except (ApiError, errors.LedgerError) as e:
        status, error = render(e)
        if status >= 500:
            store.release(scope, key)
            raise
        store.complete(scope, key, status, encode(Reply(status, error)))
        raise
    except BaseException:
        store.release(scope, key)
        raise
    store.complete(scope, key, reply.status, encode(reply))
    return reply
