"""schemathesis against a live server's ``/openapi.json``: no 5xx, every answer as documented.

``arrears serve`` runs over a small demo portfolio; every operation gets a few
generated requests (valid and invalid ones, derandomized so a run repeats), sent
with an admin token.  Generated account ids would almost always be missing, so
each is swapped for one of the portfolio's accounts (chosen from the generated id,
so the choice repeats too): the requests reach the handlers, not only the 404.

Checks: ``not_a_server_error``, ``status_code_conformance`` (only documented
statuses), ``content_type_conformance`` and ``response_schema_conformance``.

The tests are generated at collection time, before the server runs, from the
document the server builds (``api.openapi.document``); a test checks that the live
``/openapi.json`` is exactly that document.  (``schemathesis.pytest.from_fixture``
would load it from the live server, but fails on pytest 9: it sets
``request.node._nodeid``, which pytest 9 nodes no longer have.)
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from api_helpers import LiveServer
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import api.routes  # noqa: F401  (declares every route on V1)
from api.config import ServerConfig
from api.endpoints import V1
from api.openapi import document
from api.plugin_routes import collect
from plugins.manager import build_plugin_manager

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
DEMO_ACCOUNTS = 6


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("schemathesis")
    store = f"sqlite:///{workdir / 'fuzzed.db'}"
    with LiveServer(store, workdir, demo_accounts=DEMO_ACCOUNTS) as server:
        yield server


@pytest.fixture(scope="module")
def account_ids(live: LiveServer) -> list[str]:
    page = httpx.get(f"{live.base}/v1/accounts?limit=50", headers=live.headers, timeout=30)
    assert page.status_code == 200, page.text
    ids = sorted(item["id"] for item in page.json()["items"])
    assert len(ids) == DEMO_ACCOUNTS
    return ids


#: What ``arrears serve`` (default settings, the plugins this environment enables) serves.
DOCUMENT = document(list(V1.endpoints), ServerConfig(), collect(build_plugin_manager()))
schema = schemathesis.openapi.from_dict(DOCUMENT)


def test_the_live_server_serves_the_document_under_test(live: LiveServer) -> None:
    """The operations fuzzed below are exactly those of the live server's /openapi.json."""
    served = httpx.get(f"{live.base}/openapi.json", timeout=30)
    assert served.status_code == 200
    assert served.json() == DOCUMENT


@schema.parametrize()
@settings(
    max_examples=5,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(
    case: schemathesis.Case, live: LiveServer, account_ids: list[str]
) -> None:
    """Valid or not, a request gets no 5xx and a documented status, content type and body."""
    generated = case.path_parameters.get("id") if case.path_parameters else None
    if generated is not None:
        index = zlib.crc32(str(generated).encode()) % len(account_ids)
        case.path_parameters["id"] = account_ids[index]
    case.call_and_validate(base_url=live.base, headers=live.headers, checks=CHECKS, timeout=30)
