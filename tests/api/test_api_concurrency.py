"""Payments arriving at once at a real server: each posted once, and the balance right.

``arrears serve`` runs in its own process (one per backend, shared by the module's
tests); the requests go out together from one ``httpx.AsyncClient``.  Each test
places an account of its own, so the tests do not see each other's payments.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from api_helpers import LiveServer, placement_body
from conftest import PG_URL, requires_postgres

#: A waiting duplicate must outlast the whole burst on a slow machine, not give up
#: with 409 idempotency_key_in_flight.
SERVER_CONFIG = "idempotency_wait = 120\nthreads = 32"
AMOUNT = "2.50"
METHODS = ("card", "ach", "bank_transfer", "check", "cash")


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=requires_postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """``arrears serve`` over a fresh SQLite file or PostgreSQL schema."""
    workdir = tmp_path_factory.mktemp(f"concurrency-{request.param}")
    if request.param == "sqlite":
        with LiveServer(
            f"sqlite:///{workdir / 'served.db'}", workdir, config=SERVER_CONFIG
        ) as live:
            yield live
        return
    import psycopg

    assert PG_URL
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"
        with LiveServer(url, workdir, config=SERVER_CONFIG) as live:
            yield live
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


_references = itertools.count(1)


async def place(http: httpx.AsyncClient) -> dict[str, Any]:
    """A new account owing 1200.00 (1000.00 principal, 150.00 interest, 50.00 fees)."""
    reference = f"CONC-{uuid.uuid4().hex[:8]}-{next(_references)}"
    response = await http.post("/v1/accounts", json=placement_body(reference=reference))
    assert response.status_code == 201, response.text
    assert response.json()["balance"]["total"] == "1200.00"
    return dict(response.json())


async def payments_in_ledger(http: httpx.AsyncClient, account_id: str) -> list[dict[str, Any]]:
    history = await http.get(f"/v1/accounts/{account_id}/history")
    assert history.status_code == 200, history.text
    return [e for e in history.json()["events"] if e["type"] == "PaymentReceived"]


def client(server: LiveServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.base,
        headers=server.headers,
        timeout=180,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
    )


async def test_fifty_payments_at_once_ten_reusing_a_key_post_forty(server: LiveServer) -> None:
    """50 payments at once, 10 repeating another's key and body: 40 posted, the balance right."""
    async with client(server) as http:
        account = await place(http)
        url = f"/v1/accounts/{account['id']}/payments"
        run = uuid.uuid4().hex[:8]
        originals = [
            ({"Idempotency-Key": f"{run}-pay-{n}"}, {"amount": AMOUNT, "method": METHODS[n % 5]})
            for n in range(40)
        ]
        repeated = list(range(0, 40, 4))  # the ten originals whose request is sent twice
        requests = [(n, *originals[n]) for n in range(40)] + [(n, *originals[n]) for n in repeated]
        random.Random(50).shuffle(requests)

        responses = await asyncio.gather(
            *(http.post(url, json=body, headers=headers) for _, headers, body in requests)
        )

        by_original: dict[int, list[httpx.Response]] = {}
        for (n, _, _), response in zip(requests, responses, strict=True):
            assert response.status_code == 201, response.text
            by_original.setdefault(n, []).append(response)
        payment_ids = {n: sent[0].json()["payment_id"] for n, sent in by_original.items()}
        assert len(set(payment_ids.values())) == 40
        for n in repeated:
            first, second = by_original[n]
            assert first.json() == second.json()
            replayed = [r.headers.get("idempotent-replayed") == "true" for r in (first, second)]
            assert sorted(replayed) == [False, True], "exactly one of the pair is the replay"

        posted = await payments_in_ledger(http, account["id"])
        assert len(posted) == 40
        assert {e["data"]["payment_id"] for e in posted} == set(payment_ids.values())
        after = (await http.get(f"/v1/accounts/{account['id']}")).json()
        paid = Decimal(AMOUNT) * 40
        assert after["paid_total"] == f"{paid:.2f}" == "100.00"
        assert after["balance"]["total"] == f"{Decimal('1200.00') - paid:.2f}" == "1100.00"


async def test_a_key_reused_for_another_body_is_409_and_posts_nothing(server: LiveServer) -> None:
    """The same Idempotency-Key with another body, at once or later: 409, one payment only."""
    async with client(server) as http:
        account = await place(http)
        url = f"/v1/accounts/{account['id']}/payments"
        headers = {"Idempotency-Key": f"reused-{uuid.uuid4().hex[:8]}"}
        together = await asyncio.gather(
            http.post(url, json={"amount": "10.00", "method": "card"}, headers=headers),
            http.post(url, json={"amount": "99.00", "method": "card"}, headers=headers),
        )
        assert sorted(r.status_code for r in together) == [201, 409]
        later = await http.post(url, json={"amount": "11.00", "method": "ach"}, headers=headers)
        for refused in [*(r for r in together if r.status_code == 409), later]:
            assert refused.status_code == 409, refused.text
            assert refused.json()["error"]["code"] == "idempotency_key_reused"
        assert len(await payments_in_ledger(http, account["id"])) == 1


async def test_payments_sharing_a_reference_post_once_without_keys(server: LiveServer) -> None:
    """Five copies of a payment with one reference and no key, at once: one payment, one id."""
    async with client(server) as http:
        account = await place(http)
        url = f"/v1/accounts/{account['id']}/payments"
        body = {"amount": "40.00", "method": "check", "reference": "CHK-1001"}
        responses = await asyncio.gather(*(http.post(url, json=body) for _ in range(5)))

        assert [r.status_code for r in responses] == [201] * 5
        assert len({r.json()["payment_id"] for r in responses}) == 1
        assert [r.json()["created"] for r in responses].count(True) == 1
        posted = await payments_in_ledger(http, account["id"])
        assert [e["data"]["payment_id"] for e in posted] == [responses[0].json()["payment_id"]]
        after = (await http.get(f"/v1/accounts/{account['id']}")).json()
        assert after["balance"]["total"] == "1160.00"

        other = await http.post(url, json={**body, "amount": "41.00"})
        assert other.status_code == 409, other.text
        assert other.json()["error"]["code"] == "idempotency_conflict"
        assert len(await payments_in_ledger(http, account["id"])) == 1
