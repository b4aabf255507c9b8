"""Signed WhatsApp status questions per second through ``cargobot web`` against a bare Flask app.

Both servers run at once under the same gunicorn settings (``bot.web.gunicorn_options``: gthread,
same workers and threads) on loopback and are driven by the same load generator: a few threads,
each with one keep-alive httpx connection, posting pre-signed Twilio webhooks. The baseline
(``bench/bare_flask.py``) answers empty TwiML without reading the body. Seven rounds alternate
between the two servers so that other load on the machine falls on both alike; ``ratio`` is the
median of the rounds' ratios (each round against the bare app's beside it), the rates are totals.

Two workloads, each on a SQLite database seeded here:

* status questions (the headline ``whatsapp_rps``): customers ask "where is MSKU9070323?"; each
  is signature-checked, stored, deduplicated, routed, looked up and answered in TwiML. Senders
  change every 20 questions, under the per-sender hourly lookup limit.
* status callbacks (``status_callback_rps``): Twilio reports sent / delivered / read on alerts
  the dispatcher sent; each is signature-checked and moves an outbox row forward.

The last line printed is a JSON object with ``whatsapp_rps``, ``bare_flask_rps`` and ``ratio``
(goal: at least 0.5), and the same for callbacks.

    python bench/webhooks.py [--requests N] [--workers N] [--threads N] [--connections N]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # ``tests`` (the schema helper) is not part of the installed package
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from bot.app import build_app
from bot.config import Settings
from bot.demo import DEMO_SHIPMENTS, seed_demo
from bot.web import WHATSAPP_PATH, WHATSAPP_STATUS_PATH
from storage import repo
from storage.db import dispose, write_session  # noqa: E402
from tests.e2e import free_port, postgres_schema  # noqa: E402

ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-auth-token-0123456789"
STATUSES = ("sent", "delivered", "read")
QUESTIONS_PER_SENDER = 20
ROUNDS = 7
BARE_APP = Path(__file__).with_name("bare_flask.py")

Request = tuple[bytes, dict[str, str]]


class Server:
    """A server process on a free port; ``start`` waits until its /healthz answers 200."""

    def __init__(self, name: str, command: list[str], *, env: dict[str, str], cwd: Path) -> None:
        self.name = name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.command = [*command, "--host", "127.0.0.1", "--port", str(self.port)]
        self.env = env | {"PUBLIC_BASE_URL": self.base}
        self.cwd = cwd
        self.log_path = cwd / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise SystemExit(f"{self.name} exited early:\n{self.log()}")
                try:
                    if client.get(self.base + "/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        raise SystemExit(f"{self.name} did not start:\n{self.log()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextmanager
def database(postgres: str | None, workdir: Path) -> Iterator[str]:
    """A SQLite file in ``workdir``, or a schema of its own in ``postgres`` (dropped afterwards)."""
    if not postgres:
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    with postgres_schema(postgres, "cargobot_bench") as url:
        yield url


def sid(prefix: str, index: int) -> str:
    return f"{prefix}{index:032x}"


def seed(database_url: str, callbacks: int) -> None:
    """The demo shipments (for questions) and sent alerts waiting for status callbacks."""
    app = build_app(Settings(_env_file=None, database_url=database_url))
    now = datetime.now(UTC)
    seed_demo(app.engine, now=now)
    with write_session(app.engine) as session:
        repo.enqueue(
            session=session,
            rows=[
                {
                    "event_key": f"bench:{i}",
                    "recipient": "whatsapp:+254700000001",
                    "kind": "release",
                    "text": "Released",
                    "status": "sent",
                    "due_at": now,
                    "attempts": 1,
                    "force_template": False,
                    "provider_id": sid("SM", i),
                    "sent_at": now,
                    "created_at": now,
                }
                for i in range(callbacks)
            ],
        )
    dispose(app.engine)


def sign(url: str, params: dict[str, str]) -> Request:
    headers = {
        "X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(url, params),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return urlencode(params).encode(), headers


def questions(url: str, count: int, first: int) -> list[Request]:
    refs = [value for shipment in DEMO_SHIPMENTS for _, value in shipment.refs]
    asks = ("Hi, where is {}?", "Status of {} please", "{}", "Habari, mzigo {} umefika?")
    requests = []
    for n in range(first, first + count):
        sender = f"whatsapp:+2547{n // QUESTIONS_PER_SENDER:08d}"
        body = asks[n % len(asks)].format(refs[n % len(refs)])
        requests.append(
            sign(
                url,
                {
                    "From": sender,
                    "To": "whatsapp:+447700900123",
                    "Body": body,
                    "MessageSid": sid("SMq", n),
                    "AccountSid": ACCOUNT_SID,
                    "NumMedia": "0",
                    "ProfileName": "Bench",
                    "WaId": sender[10:],
                },
            )
        )
    return requests


def callbacks(url: str, count: int, rows: int) -> list[Request]:
    """sent, delivered, read for each seeded row, in that order."""
    requests = []
    for n in range(count):
        index, status = n % rows, STATUSES[(n // rows) % len(STATUSES)]
        requests.append(
            sign(
                url,
                {
                    "MessageSid": sid("SM", index),
                    "SmsSid": sid("SM", index),
                    "AccountSid": ACCOUNT_SID,
                    "MessageStatus": status,
                    "SmsStatus": status,
                    "To": "whatsapp:+254700000001",
                    "From": "whatsapp:+447700900123",
                    "ApiVersion": "2010-04-01",
                    "ChannelPrefix": "whatsapp",
                },
            )
        )
    return requests


class Tally:
    def __init__(self) -> None:
        self.done = 0
        self.seconds = 0.0
        self.statuses: dict[int, int] = {}
        self.rounds: list[float] = []  # requests per second in each round

    @property
    def rps(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0


def drive(url: str, requests: list[Request], tally: Tally, *, connections: int, deadline: float) -> None:
    """Post ``requests`` from ``connections`` threads (or stop at ``deadline``), adding to ``tally``."""
    cursor = itertools.count()
    lock = threading.Lock()

    def work() -> None:
        with httpx.Client(timeout=30) as client:
            while time.monotonic() < deadline and (n := next(cursor)) < len(requests):
                body, headers = requests[n]
                try:
                    code = client.post(url, content=body, headers=headers).status_code
                except httpx.TransportError:
                    code = 0
                with lock:
                    tally.statuses[code] = tally.statuses.get(code, 0) + 1
                    tally.done += 1

    threads = [threading.Thread(target=work) for _ in range(connections)]
    done, started = tally.done, time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    tally.seconds += seconds
    tally.rounds.append((tally.done - done) / seconds if seconds else 0.0)


def measure(
    servers: list[Server], path: str, build: dict[str, list[Request]], *, connections: int, max_seconds: float
) -> dict[str, Tally]:
    """Alternate rounds between the servers; each round posts one slice of that server's requests."""
    tallies = {server.name: Tally() for server in servers}
    deadline = time.monotonic() + max_seconds
    for round_index in range(ROUNDS):
        for server in servers:
            requests = build[server.name]
            size = -(-len(requests) // ROUNDS)
            chunk = requests[round_index * size : (round_index + 1) * size]
            if not chunk:
                continue
            drive(server.base + path, chunk, tallies[server.name], connections=connections, deadline=deadline)
    return tallies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=3500, help="requests per server and workload")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (default 4)")
    parser.add_argument("--connections", type=int, default=4, help="client connections (default 4)")
    parser.add_argument("--max-seconds", type=float, default=60, help="time limit per workload")
    parser.add_argument("--postgres", metavar="URL", help="run on a fresh schema in this PostgreSQL database")
    args = parser.parse_args()
    if args.requests < 1 or args.workers < 1:
        raise SystemExit("--requests and --workers must be at least 1")

    with (
        tempfile.TemporaryDirectory(prefix="cargobot-bench-") as tmp,
        database(args.postgres, Path(tmp)) as url,
    ):
        workdir = Path(tmp)
        database_url = url
        rows = max(1, args.requests // len(STATUSES))
        seed(database_url, rows)
        clean = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TWILIO_", "TELEGRAM_", "CARGOBOT_", "PUBLIC_BASE_URL", "DATABASE_URL"))
        }
        env = clean | {
            "DATABASE_URL": database_url,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "LOG_LEVEL": "WARNING",
        }
        sizing = ["--workers", str(args.workers), "--threads", str(args.threads)]
        servers = [
            Server("cargobot", [sys.executable, "-m", "bot.cli", "web", *sizing], env=env, cwd=workdir),
            Server("bare_flask", [sys.executable, str(BARE_APP), *sizing], env=env, cwd=workdir),
        ]
        try:
            for server in servers:
                server.start()
            for server in servers:  # warm up: imports, connection pools, SQLite page cache
                warm = questions(server.base + WHATSAPP_PATH, min(40, args.requests), first=10**6)
                drive(
                    server.base + WHATSAPP_PATH,
                    warm,
                    Tally(),
                    connections=args.connections,
                    deadline=time.monotonic() + 20,
                )
            asked = measure(
                servers,
                WHATSAPP_PATH,
                {s.name: questions(s.base + WHATSAPP_PATH, args.requests, first=0) for s in servers},
                connections=args.connections,
                max_seconds=args.max_seconds,
            )
            reported = measure(
                servers,
                WHATSAPP_STATUS_PATH,
                {s.name: callbacks(s.base + WHATSAPP_STATUS_PATH, args.requests, rows) for s in servers},
                connections=args.connections,
                max_seconds=args.max_seconds,
            )
        finally:
            for server in servers:
                server.stop()
        for workload, tallies in (("status questions", asked), ("status callbacks", reported)):
            for name, tally in tallies.items():
                print(
                    f"{workload}, {name}: {tally.done} in {tally.seconds:.1f}s = {tally.rps:,.0f}/s, "
                    f"HTTP statuses {tally.statuses}",
                    file=sys.stderr,
                )
                if set(tally.statuses) != {200}:
                    print(
                        servers[0].log()[-3000:] if name == "cargobot" else servers[1].log()[-3000:],
                        file=sys.stderr,
                    )

    def ratio(tallies: dict[str, Tally]) -> float | None:
        """The median over rounds of cargobot's rate over the bare app's in the round beside it:
        a slow spell of a shared machine then weighs on one pair, not on one side."""
        pairs = zip(tallies["cargobot"].rounds, tallies["bare_flask"].rounds, strict=True)
        ratios = [ours / bare for ours, bare in pairs if ours and bare]  # not a round the deadline cut
        return round(statistics.median(ratios), 3) if ratios else None

    print(
        json.dumps(
            {
                "whatsapp_rps": round(asked["cargobot"].rps, 1),
                "bare_flask_rps": round(asked["bare_flask"].rps, 1),
                "ratio": ratio(asked),
                "status_callback_rps": round(reported["cargobot"].rps, 1),
                "status_callback_bare_flask_rps": round(reported["bare_flask"].rps, 1),
                "status_callback_ratio": ratio(reported),
                "requests": args.requests,
                "workers": args.workers,
                "threads": args.threads,
                "connections": args.connections,
                "server": "gunicorn gthread",
                "database": "postgresql" if args.postgres else "sqlite",
                "all_200": all(set(t.statuses) == {200} for t in (*asked.values(), *reported.values())),
            }
        )
    )


if __name__ == "__main__":
    main()
