"""Uploads to ``POST /facilities/import`` against a real uvicorn server of each backend.

The key is checked before a byte of the body is read; the upload limit holds for a declared
``Content-Length`` (413 before reading) and for a chunked stream (413 as soon as it passes the
limit, the temporary file removed); a zip bomb is refused at once without the server growing;
the CSV the API writes quotes cells a spreadsheet would run.
"""

from __future__ import annotations

import csv
import io
import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from api_support import Live
from zipbombs import MiB, xlsx_with_sheet

from geodata.boundaries import SHANGHAI_DISTRICTS

MAX_UPLOAD_MB = 3
FORMULA = '=HYPERLINK("http://x","click")'
BOUNDARY = "finder-test-boundary"


def server_env(tmp: Path) -> dict[str, str]:
    """This module's server: a 3 MB upload limit, its own temporary directory, and a district
    whose name is a formula."""
    spool = tmp / "spool"
    spool.mkdir()
    document = json.loads(SHANGHAI_DISTRICTS.read_text(encoding="utf-8"))
    document["features"][0]["properties"]["name"] = FORMULA
    districts = tmp / "districts.geojson"
    districts.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return {
        "FINDER_MAX_UPLOAD_MB": str(MAX_UPLOAD_MB),
        "FINDER_BOUNDARIES": str(districts),
        "TMPDIR": str(spool),
    }


class Server:
    """The server process of ``edit_live``: its pid, memory and temporary files, from /proc."""

    def __init__(self, live: Live) -> None:
        port = str(urlsplit(live.url).port).encode()
        self.pid = next(
            int(proc.name)
            for proc in Path("/proc").iterdir()
            if proc.name.isdigit() and _is_server(proc, port)
        )
        env = (Path("/proc") / str(self.pid) / "environ").read_bytes().split(b"\0")
        self.spool = Path(next(e[7:].decode() for e in env if e.startswith(b"TMPDIR=")))

    def kib(self, field: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(field)

    def bytes_read(self) -> int:
        """Bytes the server has read so far (files and sockets), from /proc/<pid>/io."""
        for line in Path(f"/proc/{self.pid}/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
        raise AssertionError("rchar")

    def reset_peak(self) -> int:
        """Set the peak resident size to the current one; return the current one (KiB)."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        return self.kib("VmRSS")

    def spooled_bytes(self) -> int:
        """Bytes in files under the server's TMPDIR, open (even unlinked) or not."""
        total = sum(p.stat().st_size for p in self.spool.rglob("*") if p.is_file())
        for fd in Path(f"/proc/{self.pid}/fd").iterdir():
            try:
                if str(fd.readlink()).startswith(str(self.spool)):
                    total += fd.stat().st_size
            except OSError:
                continue
        return total


def _is_server(proc: Path, port: bytes) -> bool:
    try:
        args = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"uvicorn" in args and port in args


@pytest.fixture(scope="module")
def server(edit_live: Live) -> Server:
    return Server(edit_live)


def _head(live: Live, headers: dict[str, str]) -> bytes:
    lines = ["POST /facilities/import HTTP/1.1", f"Host: {urlsplit(live.url).netloc}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _part_head(filename: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{filename}"\r\nContent-Type: text/csv\r\n\r\n'
    ).encode()


def _response(sock: socket.socket, timeout_s: float = 10.0) -> tuple[int, dict[str, object]]:
    """Status and problem body of the answer on ``sock``."""
    sock.settimeout(timeout_s)
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"application/problem+json" in head, data[:500]
    return int(head.split()[1]), json.loads(body)


def _stream_chunked(sock: socket.socket, limit_bytes: int) -> int:
    """Send a multipart body in 64 KiB chunks until the server answers (or 4x the limit);
    return the bytes sent."""
    sent = 0
    chunk = b"x" * 65536
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    first = _part_head("big.csv")
    sock.sendall(f"{len(first):x}\r\n".encode() + first + b"\r\n")
    while sent < 4 * limit_bytes:
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            break
        try:
            sock.sendall(framed)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(chunk)
    return sent


@pytest.fixture
def raw(edit_live: Live) -> Iterator[socket.socket]:
    url = urlsplit(edit_live.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        yield sock


def test_anonymous_huge_upload_is_refused_before_the_body(
    edit_live: Live, server: Server, raw: socket.socket
) -> None:
    start, read = time.perf_counter(), server.bytes_read()
    raw.sendall(
        _head(
            edit_live,
            {
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                "Content-Length": str(3 << 30),
            },
        )
        + _part_head("big.csv")
        + b"x" * MiB
    )
    status, problem = _response(raw)
    assert status == 401 and problem["status"] == 401
    assert time.perf_counter() - start < 5.0
    assert server.bytes_read() - read < MiB
    assert server.spooled_bytes() == 0


def test_anonymous_chunked_upload_is_refused_before_the_body(
    edit_live: Live, server: Server, raw: socket.socket
) -> None:
    headers = {
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Transfer-Encoding": "chunked",
    }
    read = server.bytes_read()
    raw.sendall(_head(edit_live, headers))
    _stream_chunked(raw, MAX_UPLOAD_MB * MiB)
    status, _ = _response(raw)
    assert status == 401
    assert server.bytes_read() - read < MiB  # the body was left unread
    assert server.spooled_bytes() == 0


def test_declared_oversize_upload_is_413_before_reading(
    edit_live: Live, server: Server, raw: socket.socket
) -> None:
    read = server.bytes_read()
    raw.sendall(
        _head(
            edit_live,
            {
                "Authorization": f"Bearer {edit_live.keys.editor}",
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                "Content-Length": str(3 << 30),
            },
        )
        + _part_head("big.csv")
    )
    status, problem = _response(raw)
    assert status == 413
    assert f"{MAX_UPLOAD_MB} MB" in str(problem["detail"])
    assert server.bytes_read() - read < MiB
    assert server.spooled_bytes() == 0


def test_chunked_oversize_upload_is_cut_off(
    edit_live: Live, server: Server, raw: socket.socket
) -> None:
    headers = {
        "Authorization": f"Bearer {edit_live.keys.editor}",
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Transfer-Encoding": "chunked",
    }
    read = server.bytes_read()
    raw.sendall(_head(edit_live, headers))
    sent = _stream_chunked(raw, MAX_UPLOAD_MB * MiB)
    status, problem = _response(raw)
    assert status == 413, problem
    taken = server.bytes_read() - read
    assert MAX_UPLOAD_MB * MiB < taken < (MAX_UPLOAD_MB + 1) * MiB < sent  # cut off at the limit
    assert server.spooled_bytes() == 0  # the partial upload is gone


def test_upload_within_the_limit_is_imported(edit_live: Live) -> None:
    data = "id,name,kind,lon,lat,access\nup-1,上传驿站,rest_stop,121.45,31.22,public\n"
    with edit_live.client(edit_live.keys.editor) as client:
        r = client.post(
            "/facilities/import",
            data={"crs": "wgs84", "dry_run": "true"},
            files={"file": ("list.csv", io.BytesIO(data.encode()), "text/csv")},
        )
        assert r.status_code == 200, r.text
        assert (r.json()["accepted"], r.json()["dry_run"]) == (1, True)
        bad = client.post(
            "/facilities/import",
            data={"crs": "mars"},
            files={"file": ("list.csv", io.BytesIO(data.encode()), "text/csv")},
        )
        assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"


def test_zip_bomb_is_refused_at_once_without_growing_the_server(
    edit_live: Live, server: Server, tmp_path: Path
) -> None:
    bomb = xlsx_with_sheet(tmp_path / "bomb.xlsx", spaces_mib=2048).read_bytes()
    assert len(bomb) < MAX_UPLOAD_MB * MiB
    before = server.reset_peak()
    with edit_live.client(edit_live.keys.editor) as client:
        start = time.perf_counter()
        r = client.post(
            "/facilities/import",
            files={"file": ("bomb.xlsx", io.BytesIO(bomb), "application/octet-stream")},
        )
        elapsed = time.perf_counter() - start
    assert r.status_code == 413, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "bomb.xlsx" in r.json()["detail"] and "max_expanded_mb" in r.json()["detail"]
    assert elapsed < 2.0
    assert (server.kib("VmHWM") - before) / 1024 < 100
    assert server.spooled_bytes() == 0


def test_coverage_csv_quotes_formulas(edit_live: Live) -> None:
    with edit_live.client() as client:
        r = client.get("/coverage", params={"f": "csv"})
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.text)))
    names = [row["name"] for row in rows]
    assert "'" + FORMULA in names and FORMULA not in names
    assert all(0 <= float(row["covered_share"]) <= 1 for row in rows)  # numbers stay numbers
