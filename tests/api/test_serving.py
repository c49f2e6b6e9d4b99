"""``finder serve`` limits (:mod:`api.serving`): slow headers are cut off while normal requests
go on, a slow body gets 408, connections beyond the concurrency limit get 503, and a keep-alive
connection is closed after its request limit. Real uvicorn on 127.0.0.1, a GeoPackage store."""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_server import ROOT, ServerProcess

from geodata.sample import write_sample

HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``finder serve`` with short limits; yields ``host:port``."""
    tmp = tmp_path_factory.mktemp("serve")
    write_sample(tmp / "store.gpkg", 50)
    env = {
        "FINDER_STORE": str(tmp / "store.gpkg"),
        "FINDER_LOG_LEVEL": "WARNING",
        "FINDER_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "FINDER_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
        "FINDER_LIMIT_CONCURRENCY": "4",
        "FINDER_MAX_REQUESTS_PER_CONNECTION": "3",
    }
    server = ServerProcess(
        env,
        command=lambda port: [sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
        timeout_s=60,
        log=Path(os.devnull),
    )
    with server as url:
        yield url.removeprefix("http://")


def _connect(address: str) -> socket.socket:
    host, port = address.split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _closed_after(sock: socket.socket) -> float:
    """Seconds until the server closes ``sock`` (reading whatever it sends)."""
    started = time.monotonic()
    while sock.recv(4096):
        pass
    return time.monotonic() - started


def test_slow_headers_are_cut_off_while_normal_requests_go_on(served: str) -> None:
    slow = _connect(served)
    started = time.monotonic()
    slow.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    with httpx.Client(base_url=f"http://{served}", timeout=5) as client:
        answered = 0
        while time.monotonic() - started < HEADER_TIMEOUT_S * 0.8:
            slow.sendall(b"X: y\r\n")  # one more header line now and then, never the end
            assert client.get("/nearest", params={"lon": 121.47, "lat": 31.23}).is_success
            answered += 1
            time.sleep(0.1)
    lasted = time.monotonic() - started + _closed_after(slow)
    slow.close()
    assert answered >= 3
    assert HEADER_TIMEOUT_S * 0.8 <= lasted < HEADER_TIMEOUT_S + 3


def test_a_slow_body_gets_408(served: str) -> None:
    sock = _connect(served)
    sock.sendall(
        b"POST /facilities HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n{"
    )
    sock.settimeout(BODY_TIMEOUT_S + 5)
    answer = sock.recv(4096)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"application/problem+json" in answer


def test_connections_beyond_the_limit_get_503(served: str) -> None:
    idle = [_connect(served) for _ in range(4)]
    try:
        time.sleep(0.2)
        response = httpx.get(f"http://{served}/health", timeout=5)
        assert response.status_code == 503
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.2)
    assert httpx.get(f"http://{served}/health", timeout=5).status_code == 200


def test_a_keep_alive_connection_closes_after_its_request_limit(served: str) -> None:
    host, port = served.split(":")
    con = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        headers = []
        for _ in range(3):
            con.request("GET", "/health")
            response = con.getresponse()
            response.read()
            headers.append(response.getheader("connection"))
    finally:
        con.close()
    assert headers == [None, None, "close"]


def test_the_header_timeout_is_documented() -> None:
    readme = (Path(ROOT) / "README.md").read_text(encoding="utf-8")
    for name in (
        "FINDER_HEADER_TIMEOUT_S",
        "FINDER_BODY_TIMEOUT_S",
        "FINDER_LIMIT_CONCURRENCY",
        "FINDER_MAX_REQUESTS_PER_CONNECTION",
        "FINDER_STORE_LOCK_TIMEOUT_S",
        "FINDER_DB_STATEMENT_TIMEOUT_S",
    ):
        assert name in readme, name


def _raw_answer(address: str, request: bytes) -> tuple[str, dict[str, str], bytes]:
    with _connect(address) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return status, headers, body


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        # a target far beyond what the HTTP parser accepts (uvicorn answered text/plain 400)
        (
            b"GET /nearest?lon=121.47&lat=31.23&x=" + b"a" * 200_000 + b" HTTP/1.1\r\n"
            b"Host: t\r\n\r\n",
            414,
        ),
        (b"GARBAGE\x00 / HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    ],
    ids=["url-200k", "malformed"],
)
def test_requests_the_parser_refuses_get_problem_json(
    served: str, request_bytes: bytes, status: int
) -> None:
    line, headers, body = _raw_answer(served, request_bytes)
    assert line.startswith(f"HTTP/1.1 {status} ")
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == status and problem["detail"]
