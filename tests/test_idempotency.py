"""Idempotency keys, on both backends: a retry replays the original response and appends nothing.

The story: a partner posts a payment with an ``Idempotency-Key``; the network
drops the answer and the partner retries, possibly twenty times at once.  Only
one request runs; the others get its response.  A key reused for a different
request is a conflict; a request that crashed frees its key when its lease ends.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from conftest import JANE, START, placement, usd

from ledger import errors
from ledger.application import Ledger, open_ledger
from ledger.clock import MovableClock, SystemClock
from ledger.idempotency import Begin, IdempotencyStore, request_hash
from ledger.readmodels.sqlstore import ReadStore
from ledger.services import LedgerService

SCOPE = "0123456789abcdef"  # a token id
KEY = "pay-2026-03-02-0001"
BODY = b'{"amount": "100.00", "method": "card"}'
DIGEST = request_hash("POST", "/v1/accounts/a1/payments", BODY)
OTHER = request_hash("POST", "/v1/accounts/a1/payments", b'{"amount": "999.00", "method": "card"}')
RESPONSE = b'{"payment_id": "p1", "balance": "1100.00"}'


@pytest.fixture
def still() -> MovableClock:
    """A clock that moves only when the test says so."""
    return MovableClock(START)


@pytest.fixture
def keys(ledger: Ledger, still: MovableClock) -> Iterator[IdempotencyStore]:
    store = IdempotencyStore(ledger, still, lease_seconds=60)
    yield store
    store.close()


# ----------------------------------------------------------- one at a time


def test_first_request_proceeds_and_its_retry_replays(keys: IdempotencyStore) -> None:
    """The first request reserves the key; after complete, a retry gets status and body back."""
    assert keys.begin(SCOPE, KEY, DIGEST) == Begin("proceed")
    keys.complete(SCOPE, KEY, 201, RESPONSE)
    assert keys.begin(SCOPE, KEY, DIGEST) == Begin("replay", 201, RESPONSE)
    assert keys.wait(SCOPE, KEY, DIGEST) == Begin("replay", 201, RESPONSE)
    assert keys.reserve(SCOPE, KEY, DIGEST) == Begin("replay", 201, RESPONSE)


def test_same_key_different_request_is_a_conflict(keys: IdempotencyStore) -> None:
    """Reusing a key for another body conflicts, while in flight and after completion."""
    keys.begin(SCOPE, KEY, DIGEST)
    assert keys.begin(SCOPE, KEY, OTHER) == Begin("conflict")
    keys.complete(SCOPE, KEY, 201, RESPONSE)
    assert keys.begin(SCOPE, KEY, OTHER) == Begin("conflict")
    with pytest.raises(errors.IdempotencyKeyReused) as caught:
        keys.reserve(SCOPE, KEY, OTHER)
    assert caught.value.code == "idempotency_key_reused"
    assert isinstance(caught.value, errors.IdempotencyConflict)
    assert keys.begin(SCOPE, KEY, DIGEST) == Begin("replay", 201, RESPONSE)


def test_keys_are_per_scope(keys: IdempotencyStore) -> None:
    """Two clients (token ids) using the same key never see each other's requests."""
    assert keys.begin("client-a", KEY, DIGEST).outcome == "proceed"
    assert keys.begin("client-b", KEY, OTHER).outcome == "proceed"
    keys.complete("client-a", KEY, 201, b"a")
    keys.complete("client-b", KEY, 200, b"b")
    assert keys.begin("client-a", KEY, DIGEST) == Begin("replay", 201, b"a")
    assert keys.begin("client-b", KEY, OTHER) == Begin("replay", 200, b"b")


def test_an_empty_response_body_replays_as_empty(keys: IdempotencyStore) -> None:
    """A 204 with no body is replayed as exactly that."""
    keys.begin(SCOPE, KEY, DIGEST)
    keys.complete(SCOPE, KEY, 204, b"")
    assert keys.begin(SCOPE, KEY, DIGEST) == Begin("replay", 204, b"")


def test_a_key_must_be_short_and_present(keys: IdempotencyStore) -> None:
    """An empty key or one over 255 characters is invalid_input."""
    for bad in ("", "k" * 256):
        with pytest.raises(errors.ValidationError) as caught:
            keys.begin(SCOPE, bad, DIGEST)
        assert caught.value.details == {"field": "idempotency_key"}


# ------------------------------------------------------- in flight, leases


def test_a_request_in_flight_holds_its_key_until_its_lease_ends(
    keys: IdempotencyStore, still: MovableClock
) -> None:
    """A second request waits; once the lease (60 s) ends, a retry takes the key over."""
    assert keys.begin(SCOPE, KEY, DIGEST).outcome == "proceed"
    assert keys.begin(SCOPE, KEY, DIGEST) == Begin("in_flight")
    still.advance(timedelta(seconds=59))
    assert keys.begin(SCOPE, KEY, DIGEST) == Begin("in_flight")
    still.advance(timedelta(seconds=1))
    assert keys.begin(SCOPE, KEY, DIGEST) == Begin("proceed")  # the first one crashed
    assert keys.begin(SCOPE, KEY, DIGEST) == Begin("in_flight")  # a fresh lease
    still.advance(timedelta(seconds=30))
    assert keys.begin(SCOPE, KEY, DIGEST) == Begin("in_flight")
    keys.complete(SCOPE, KEY, 201, RESPONSE)
    still.advance(timedelta(days=1))
    assert keys.begin(SCOPE, KEY, DIGEST) == Begin("replay", 201, RESPONSE)


def test_release_lets_a_retry_proceed(keys: IdempotencyStore) -> None:
    """A request that failed unexpectedly releases its key; a completed key is never released."""
    keys.begin(SCOPE, KEY, DIGEST)
    keys.release(SCOPE, KEY)
    assert keys.begin(SCOPE, KEY, OTHER) == Begin("proceed")  # nothing was recorded
    keys.complete(SCOPE, KEY, 201, RESPONSE)
    keys.release(SCOPE, KEY)
    assert keys.begin(SCOPE, KEY, OTHER) == Begin("replay", 201, RESPONSE)


def test_complete_is_recorded_once(keys: IdempotencyStore) -> None:
    """A second complete (a request whose lease was taken over) leaves the first response."""
    keys.begin(SCOPE, KEY, DIGEST)
    keys.complete(SCOPE, KEY, 201, RESPONSE)
    keys.complete(SCOPE, KEY, 500, b"late")
    assert keys.begin(SCOPE, KEY, DIGEST) == Begin("replay", 201, RESPONSE)


def test_wait_gives_up_after_its_timeout(keys: IdempotencyStore) -> None:
    """Waiting on a key that stays in flight returns in_flight once the timeout has passed."""
    keys.begin(SCOPE, KEY, DIGEST)
    started = time.monotonic()
    assert keys.wait(SCOPE, KEY, DIGEST, timeout=0.3) == Begin("in_flight")
    assert 0.3 <= time.monotonic() - started < 5


def test_a_waiter_proceeds_when_the_holder_releases(ledger: Ledger, still: MovableClock) -> None:
    """If the first request fails and releases, the waiting duplicate runs it instead."""
    holder = IdempotencyStore(ledger, still)
    holder.begin(SCOPE, KEY, DIGEST)
    result: list[Begin] = []

    def waiter() -> None:
        store = IdempotencyStore(ledger, still)
        try:
            result.append(store.wait(SCOPE, KEY, DIGEST, timeout=30))
        finally:
            store.close()

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.3)
    holder.release(SCOPE, KEY)
    thread.join(timeout=60)
    holder.close()
    assert result == [Begin("proceed")]


def test_responses_outlive_the_process(store_url: str, still: MovableClock) -> None:
    """A response completed through one ledger replays through another opened later."""
    for step in ("first", "retry"):
        ledger = open_ledger(store_url)
        store = IdempotencyStore(ledger, still)
        try:
            if step == "first":
                assert store.begin(SCOPE, KEY, DIGEST).outcome == "proceed"
                store.complete(SCOPE, KEY, 201, RESPONSE)
            else:
                assert store.begin(SCOPE, KEY, DIGEST) == Begin("replay", 201, RESPONSE)
        finally:
            store.close()
            ledger.close()


# ------------------------------------------------------------------- races


def test_twenty_identical_requests_at_once_append_one_payment(
    ledger: Ledger, service: LedgerService
) -> None:
    """20 threads post the same payment with the same key at the same moment: exactly one
    proceeds and appends; the 19 others wait and replay its response."""
    account_id = service.place_account(placement(), debtor=JANE).id
    body = json.dumps({"amount": "100.00", "method": "card"}).encode()
    digest = request_hash("POST", f"/v1/accounts/{account_id}/payments", body)
    keys = IdempotencyStore(ledger, SystemClock())
    start = threading.Barrier(20)
    outcomes: list[tuple[str, Begin]] = []
    failures: list[BaseException] = []

    def post() -> None:
        try:
            start.wait(timeout=60)
            first = keys.begin(SCOPE, KEY, digest)
            if first.outcome == "proceed":
                payment = service.post_payment(account_id, usd("100.00"), method="card")
                time.sleep(0.2)  # hold the key while the duplicates arrive
                response = json.dumps({"payment_id": payment.payment_id}).encode()
                keys.complete(SCOPE, KEY, 201, response)
                outcomes.append(("proceed", Begin("replay", 201, response)))
            else:
                outcomes.append((first.outcome, keys.wait(SCOPE, KEY, digest, timeout=60)))
        except BaseException as e:
            failures.append(e)
        finally:
            keys.close()  # this thread's connection

    threads = [threading.Thread(target=post) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    assert [first for first, _ in outcomes].count("proceed") == 1
    assert {first for first, _ in outcomes} <= {"proceed", "in_flight", "replay"}
    (original,) = {result for first, result in outcomes if first == "proceed"}
    assert [result for _, result in outcomes] == [original] * 20
    payments = [e for e in ledger.events.get(account_id) if type(e).__name__ == "PaymentReceived"]
    assert len(payments) == 1
    assert service.get_account(account_id).total_balance == 110000


def test_twenty_retries_after_a_crash_take_the_key_over_once(
    ledger: Ledger, still: MovableClock
) -> None:
    """When a lease ends, 20 simultaneous retries race for it and exactly one wins."""
    keys = IdempotencyStore(ledger, still, lease_seconds=60)
    assert keys.begin(SCOPE, KEY, DIGEST).outcome == "proceed"  # then the process dies
    still.advance(timedelta(minutes=2))
    start = threading.Barrier(20)
    seen: list[str] = []

    def retry() -> None:
        try:
            start.wait(timeout=60)
            seen.append(keys.begin(SCOPE, KEY, DIGEST).outcome)
        finally:
            keys.close()

    threads = [threading.Thread(target=retry) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(seen) == ["in_flight"] * 19 + ["proceed"]


# ------------------------------------------------------------ request hash


def test_request_hash_compares_json_by_content() -> None:
    """Key order and spacing do not change the hash; values, method and path do."""
    base = request_hash("POST", "/v1/x", b'{"a": 1, "b": [1, 2]}')
    assert request_hash("post", "/v1/x", b'{"b":[1,2],"a":1}') == base
    assert request_hash("POST", "/v1/x", b'{"a": 2, "b": [1, 2]}') != base
    assert request_hash("POST", "/v1/x", b'{"a": 1, "b": [2, 1]}') != base
    assert request_hash("PUT", "/v1/x", b'{"a": 1, "b": [1, 2]}') != base
    assert request_hash("POST", "/v1/y", b'{"a": 1, "b": [1, 2]}') != base
    assert IdempotencyStore.request_hash("POST", "/v1/x", b'{"a":1,"b":[1,2]}') == base


def test_request_hash_of_other_bodies_is_byte_for_byte() -> None:
    """A body that is not JSON (or not UTF-8) is hashed as raw bytes."""
    assert request_hash("POST", "/x", b"a=1&b=2") != request_hash("POST", "/x", b"b=2&a=1")
    assert request_hash("POST", "/x", b"\xff\xfe") == request_hash("POST", "/x", b"\xff\xfe")
    assert request_hash("POST", "/x", b"") != request_hash("POST", "/x", b"null")


def test_the_table_holds_the_key_and_response(ledger: Ledger, keys: IdempotencyStore) -> None:
    """The row names the scope, key, request hash and stored response, with its times."""
    keys.begin(SCOPE, KEY, DIGEST)
    keys.complete(SCOPE, KEY, 201, RESPONSE)
    assert ledger.store_config is not None
    reader = ReadStore(ledger.store_config)
    try:
        (row,) = reader.query("SELECT * FROM idempotency_keys")
    finally:
        reader.close()
    expected: dict[str, Any] = {
        "scope": SCOPE,
        "key": KEY,
        "request_hash": DIGEST,
        "state": "completed",
        "response_status": 201,
    }
    assert {k: row[k] for k in expected} == expected
    assert bytes(row["response_body"]) == RESPONSE
    assert row["created_at"] == row["completed_at"] == "2026-03-02T14:00:00.000000Z"
