"""The one launcher of live servers for the tests and the benchmarks.

:class:`ServerProcess` runs a server in a subprocess on 127.0.0.1 (by default the service as in
production, ``uvicorn api.app:create_app --factory``), waits until it answers and stops it with
its worker processes. :func:`serve_app` runs an app object with the same uvicorn settings, for the
benchmarks' bare reference servers (``python bench/api.py --serve-bare ...``).

The tests import it as ``live_server`` (``tests/`` is on their path, as for ``postgres``); the
benchmarks put ``tests/`` on ``sys.path`` first.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
LOG_LEVEL = "warning"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def service_command(port: int, *, workers: int = 1) -> list[str]:
    """``uvicorn api.app:create_app --factory`` on 127.0.0.1:``port`` with ``workers``."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "api.app:create_app",
        "--factory",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        LOG_LEVEL,
    ]


def serve_app(app: Any, port: int) -> None:
    """Serve an ASGI ``app`` on 127.0.0.1:``port`` until stopped (one process, no access log)."""
    import uvicorn

    uvicorn.run(app, host=HOST, port=port, log_level=LOG_LEVEL, access_log=False)


class ServerProcess:
    """A server in a subprocess on 127.0.0.1, started by ``with`` (which gives its URL).

    A separate process, as in production: clients that hold the GIL while they wait for an
    answer (GDAL through pyogrio) would stall a server thread in the test process. The server
    gets its own session, so that stopping it also stops its worker processes.

    Parameters
    ----------
    env
        Settings of the server (``FINDER_*``), added to this process's environment without its
        own ``FINDER_*`` variables (the server's settings are exactly these).
    workers
        uvicorn worker processes of the service.
    command
        Another server's command line for a port (default :func:`service_command`).
    ready
        Path (and query) that answers 200 once the server is ready.
    timeout_s
        Seconds the server may take to become ready.
    log
        File for the server's output (default: this process's).

    Attributes
    ----------
    port, url
        Where the server listens.
    ready_s
        Seconds from the start to the first ready answer.
    """

    def __init__(
        self,
        env: dict[str, str] | None = None,
        workers: int = 1,
        *,
        command: Callable[[int], list[str]] | None = None,
        ready: str = "/health",
        timeout_s: float = 120.0,
        log: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("FINDER_")}
        self.env = inherited | (env or {})
        self.args = command(self.port) if command else service_command(self.port, workers=workers)
        self.ready = ready
        self.timeout_s = timeout_s
        self.log = log
        self.ready_s = float("nan")
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> str:
        started = time.perf_counter()
        out = self.log.open("wb") if self.log is not None else None
        try:
            self.process = subprocess.Popen(
                self.args,
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT if out is not None else None,
                start_new_session=True,
            )
        finally:
            if out is not None:
                out.close()
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with status {self.process.returncode}")
            try:
                if httpx.get(self.url + self.ready, timeout=5).status_code == 200:
                    self.ready_s = time.perf_counter() - started
                    return self.url
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"the server did not answer {self.ready} within {self.timeout_s:g} s")

    def __exit__(self, *exc: object) -> None:
        """Stop the server and its workers (SIGTERM, then SIGKILL after 30 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
