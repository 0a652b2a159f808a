"""The real thing: ``arrears serve`` in its own process, on a free port, over httpx."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> tuple[str, str, subprocess.Popen[str]]:
    port = free_port()
    config = tmp_path / "arrears.toml"
    config.write_text("[server]\nmax_body_size = 8192\nworker_tick = 1\n")
    arrears = Path(sys.executable).parent / "arrears"
    env = {**os.environ, "ARREARS_DISABLE_PLUGINS": "", "NO_COLOR": "1"}
    process = subprocess.Popen(
        [
            str(arrears),
            "serve",
            "--port",
            str(port),
            "--store",
            f"sqlite:///{tmp_path / 'served.db'}",
            "--config",
            str(config),
            "--demo",
            "--demo-accounts",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    token = None
    deadline = time.monotonic() + 60
    assert process.stdout is not None
    while token is None and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        found = re.search(r"admin token \(shown once\): (\S+)", line)
        if found:
            token = found[1]
    assert token, "arrears serve printed no admin token"
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    yield base, token, process
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def test_arrears_serve_answers_over_http(served: tuple[str, str, subprocess.Popen[str]]) -> None:
    """arrears serve --demo: the demo portfolio over HTTP, writes, limits, a clean stop."""
    base, token, process = served
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
        page = http.get("/v1/accounts", params={"limit": 2})
        assert page.status_code == 200, page.text
        assert len(page.json()["items"]) == 2
        account = page.json()["items"][0]
        paid = http.post(
            f"/v1/accounts/{account['id']}/payments",
            json={"amount": "1.00", "method": "cash"},
            headers={"Idempotency-Key": "served-1"},
        )
        assert paid.status_code == 201, paid.text
        after = http.get(f"/v1/accounts/{account['id']}")
        assert after.json()["paid_total"] == paid.json()["account"]["paid_total"]
        assert paid.headers["x-request-id"]
        too_big = http.post("/v1/accounts", content=b"{" + b" " * 20000 + b"}")
        assert too_big.status_code == 413
        assert too_big.json()["error"]["code"] == "payload_too_large"
        assert http.get("/v1/accounts", headers={"Authorization": "Bearer nope"}).status_code == 401
        big_header = http.get("/v1/accounts", headers={"X-Padding": "x" * 20000})
        assert big_header.status_code == 431
        assert big_header.json()["error"]["code"] == "headers_too_large"
        assert "arrears_http_requests_total" in http.get("/metrics").text
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=20) == 0
