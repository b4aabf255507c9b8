"""Run ``cargobot web`` as a real process for end-to-end tests and benchmarks.

    with WebProcess(env={...}, workers=2, cwd=tmp_path) as web:
        httpx.post(web.url + "/webhooks/telegram", ...)
        assert "secret" not in web.log()

The process gets only the environment given (plus PATH and the Python ones), in a working
directory of its own, so neither the developer's shell nor a ``.env`` file leaks into a test.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

import httpx
from sqlalchemy import create_engine, text

#: Variables a child Python needs from the parent; everything cargobot reads is passed explicitly.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "SYSTEMROOT", "TMPDIR")


@contextmanager
def postgres_schema(admin_url: str, prefix: str = "cargobot_test") -> Iterator[str]:
    """An empty schema of its own in ``admin_url``'s database, dropped at the end; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        yield f"{admin_url}{'&' if '?' in admin_url else '?'}options=-csearch_path%3D{name}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Whether ``predicate`` came true within ``timeout`` seconds (checked every 0.05 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def http_client(timeout: float) -> httpx.Client:
    """A client for ``cargobot web`` that never reuses a connection gunicorn may be closing: it
    drops idle connections at 2 s, gunicorn at 5 s (``keepalive``). With both at 5 s a request
    sent at that moment met a reset connection."""
    return httpx.Client(timeout=timeout, limits=httpx.Limits(keepalive_expiry=2.0))


def _ports_to_hand_out() -> Iterator[int]:
    """Ports outside the kernel's ephemeral range (below it, or above it where it starts low),
    from a random start: a port is bound some time after it is handed out, and an ephemeral one
    could meanwhile become the source port of one of the connections the processes under test
    open (or be handed to a server binding port 0). Empty where the range leaves no room."""
    try:
        low, high = (int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    for first, last in ((max(1024, low - 10_000), low), (high + 1, min(65536, high + 10_001))):
        if last - first >= 1000:
            start = random.randrange(first, last)
            return itertools.chain(range(start, last), range(first, start))
    return iter(())


_PORTS = _ports_to_hand_out()


def free_port() -> int:
    """A localhost port nothing listens on, not handed out before by this process (one the
    kernel picks, where its ephemeral range leaves no other room)."""
    for port in _PORTS:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WebProcess:
    """``cargobot web`` on a free localhost port; ``start`` waits for ``/healthz`` to answer 200.

    ``command`` replaces the cargobot arguments (e.g. to run the benchmark's baseline app); the
    host and port are appended either way.
    """

    def __init__(
        self,
        *,
        env: dict[str, str],
        cwd: Path,
        workers: int = 1,
        threads: int = 4,
        port: int | None = None,
        command: list[str] | None = None,
        health_path: str = "/healthz",
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cwd = cwd
        self.env = {k: os.environ[k] for k in _INHERITED if k in os.environ} | env
        base = command or [sys.executable, "-m", "bot.cli", "web"]
        self.args = [
            *base,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
            "--threads",
            str(threads),
        ]
        self.health_path = health_path
        self.log_path = cwd / f"web-{self.port}.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> Self:
        with open(self.log_path, "wb") as log_file:
            self._process = subprocess.Popen(
                self.args,
                cwd=self.cwd,
                env=self.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise RuntimeError(f"cargobot web exited with {self._process.returncode}:\n{self.log()}")
                try:
                    if client.get(self.url + self.health_path).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"cargobot web did not become healthy in {timeout:.0f}s:\n{self.log()}")

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (gunicorn's graceful stop), then SIGKILL to the process group if it lingers."""
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        return process.returncode

    def log(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def run_web_command(
    args: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run ``cargobot ARGS`` to completion (for refusals to start) and capture its output."""
    full_env = {k: os.environ[k] for k in _INHERITED if k in os.environ} | env
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
