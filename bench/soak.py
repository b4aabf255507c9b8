"""A bounded soak: the production process layout on one PostgreSQL database, under mixed traffic and
injected faults, then an audit of what every customer received.

Processes (all on 127.0.0.1, all stopped at the end whatever happens):

* a fresh schema in PostgreSQL's ``test`` database (``DATABASE_URL=…?options=-csearch_path%3D<schema>``),
  migrated here and dropped at the end;
* a fake Telegram Bot API and a fake Twilio REST API, each in a process of its own
  (``tests.fakes.FakeProcess``), answering a seeded ``--error-rate`` of sends with 429 (with
  retry-after) or 500, half each;
* ``cargobot web --workers 4`` (gunicorn) with both webhooks, Telegram in webhook mode;
* two ``cargobot worker`` processes (the dispatchers), with a short dispatch interval and lease.

Traffic, from ``--clients`` threads on a seeded schedule for ``--seconds``:

* setup: the admin (``whatsapp:+447700900001``) adds four shipments by WhatsApp, each linked to a
  customer with ``optin`` (that customer never writes, so their alerts go as approved templates);
* first 30 %: ``--subscribers`` customers (half WhatsApp, half Telegram) send ``ALERT <ref>``
  (some ``ALL``; some Telegram ones press the inline button instead);
* all along: customer questions on both channels at ``--rate`` per second (status lookups in
  English and Kiswahili, unknown and mistyped references, HELP, iCMS, SQL-looking text, now and
  then AGENT); about 12 % of all inbound messages are delivered twice (same MessageSid /
  update_id), a third of those concurrently with the first delivery;
* from 40 % on, once every subscription is answered: staff ``/hold``, ``/update`` and ``/release``
  on the shipments, each fanning out to its subscribers;
* Twilio status callbacks (``delivered``) for some of the WhatsApp messages the fake accepted,
  and ``/healthz`` polled twice a second throughout.

``--kill`` kill -9s one worker just after the first release and starts it again; the rows it
had claimed are taken over when their lease runs out. Up to ``CARGOBOT_DISPATCH_CONCURRENCY``
sends may then arrive twice (the dispatcher's documented in-flight bound), and no more.

SIGTERM and Ctrl-C unwind the run like a failure: every process it started is stopped and the
schema dropped (only a kill -9 of the soak itself would leave ``cargobot`` processes behind).

Afterwards it waits (at most ``--drain-timeout`` s) until the outbox is settled and checks:

* every WhatsApp MessageSid got exactly one non-empty TwiML answer, every redelivery an empty one;
* every Telegram update_id got its reply rows, and each reply reached the fake exactly once;
* every alert went to exactly the subscribers it should (independently of the outbox: from the
  schedule), reached the fake exactly once (matched by the provider's message id, and by text),
  and nothing reached the fake that no outbox row accounts for;
* no 5xx and no connection error from ``cargobot web`` (the fakes' injected ones aside), /healthz
  always 200, no traceback or secret in any log, status callbacks applied.

The last line printed is a JSON object: ``inbound_per_s``, ``alerts_per_s``, ``p99_reply_ms``,
``lost``, ``duplicates``, ``inbound``, ``alerts``, ``http_5xx``, ``seconds`` and more; the exit
status is 0 only when every check passed.

    python bench/soak.py [--seconds 60] [--subscribers 300] [--rate 20] [--kill]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # ``tests`` (the fakes, the process helpers) is not installed
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import Engine, func, select  # noqa: E402
from stdnum import iso6346  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from storage.db import dispose, init_db, make_engine, read_session  # noqa: E402
from storage.models import (  # noqa: E402
    Contact,
    InboundMessage,
    Outbox,
    Reference,
    ShipmentReference,
    Subscription,
)
from tests.e2e import WebProcess, free_port, http_client, postgres_schema  # noqa: E402
from tests.fakes import FakeProcess, telegram_callback_update, telegram_message_update  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "CARGOBOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

ACCOUNT_SID = "AC" + "5" * 32
AUTH_TOKEN = "soak-twilio-auth-token-31337"
BOT_TOKEN = "555000:soak-bot-token-abcdef"
WEBHOOK_SECRET = "soak-webhook-secret-8080"
BUSINESS_NUMBER = "whatsapp:+447700900000"
ADMIN = "whatsapp:+447700900001"
TEMPLATE_RELEASE = "HX" + "a" * 32
TEMPLATE_HOLD = "HX" + "b" * 32

WHATSAPP_PATH = "/webhooks/whatsapp"
STATUS_PATH = "/webhooks/whatsapp/status"
TELEGRAM_PATH = "/webhooks/telegram"

FIRST_CHAT = 81_000_000
DISPATCH_CONCURRENCY = 8
LEASE_SECONDS = 10
UNSETTLED = ("pending", "retry", "sending")
ALERT_KINDS = ("hold", "hold_cleared", "release", "stage")

#: Fractions of the traffic period: subscriptions before SUBSCRIBE_UNTIL, staff changes after.
SUBSCRIBE_UNTIL = 0.30
SHIPMENT_WEIGHTS = (0.4, 0.4, 0.1, 0.1)


# --- options and results -----------------------------------------------------------------------


@dataclass
class Options:
    seconds: float = 60.0
    subscribers: int = 300
    rate: float = 20.0  # customer questions per second (subscriptions and staff come on top)
    clients: int = 8
    kill: bool = False
    seed: int = 20261123
    error_rate: float = 0.05
    # A send that meets the injected 500 three or four times in a row waits out the dispatcher's
    # backoff (2.5-5, 5-10, 10-20, 20-40 s): up to 75 s, rare but not a fault.
    drain_timeout: float = 120.0
    web_workers: int = 4
    workers: int = 2
    workdir: Path | None = None
    pg_url: str = PG_ADMIN_URL


@dataclass
class PlannedShipment:
    """One shipment of the run: its references and the customer staff link to it."""

    name: str
    container: str
    entry: str
    linked: str  # whatsapp:+2547… added with ``optin``; never writes


@dataclass
class Action:
    at: float  # seconds after the traffic starts
    channel: str  # whatsapp | telegram
    sender: str  # whatsapp:+… or telegram:<chat>
    text: str
    kind: str  # subscribe | question
    redeliver: str | None = None  # None | after | concurrent
    button: bool = False  # a Telegram inline-button press instead of a typed message


@dataclass
class Tally:
    """What the clients saw; every method is thread-safe."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    whatsapp: dict[str, list[int]] = field(default_factory=lambda: collections.defaultdict(list))
    telegram: dict[int, tuple[int, list[int]]] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    by_channel: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    transport_errors: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    health: collections.Counter[str] = field(default_factory=collections.Counter)
    callbacks: dict[str, int] = field(default_factory=dict)

    def answered_whatsapp(self, sid: str, messages: int, status: int, seconds: float) -> None:
        with self.lock:
            self.whatsapp[sid].append(messages)
            self.statuses[status] += 1
            self.latencies.append(seconds)
            self.by_channel["whatsapp"].append(seconds)

    def answered_telegram(self, update_id: int, chat: int, status: int, seconds: float) -> None:
        with self.lock:
            self.telegram.setdefault(update_id, (chat, []))[1].append(status)
            self.statuses[status] += 1
            self.latencies.append(seconds)
            self.by_channel["telegram"].append(seconds)

    def failed(self, what: str, exc: BaseException) -> None:
        with self.lock:
            self.transport_errors.append(f"{what}: {type(exc).__name__}: {exc}")

    def note(self, problem: str) -> None:
        with self.lock:
            self.unexpected.append(problem)


def say(message: str) -> None:
    print(message, flush=True)


# --- references and the schedule --------------------------------------------------------------


def container(owner: str, serial: int) -> str:
    body = f"{owner}{serial:06d}"
    return body + iso6346.calc_check_digit(body)


def mistyped(number: str) -> str:
    return number[:-1] + str((int(number[-1]) + 1) % 10)


def make_shipments(rng: random.Random) -> list[PlannedShipment]:
    owners = ("MSKU", "MSCU", "CMAU", "HLXU")
    return [
        PlannedShipment(
            name="ABCD"[i],
            container=container(owner, rng.randrange(100_000, 999_999)),
            entry=f"26MBAIM4{rng.randrange(10**7, 10**8):08d}",
            linked=f"whatsapp:+2547009000{i:02d}",
        )
        for i, owner in enumerate(owners)
    ]


def question(rng: random.Random, shipments: list[PlannedShipment], stranger: str) -> str:
    s = rng.choice(shipments)
    choices: list[tuple[float, str]] = [
        (25, f"Where is my container {s.container}?"),
        (12, f"Habari, mzigo wangu {s.container} iko wapi?"),
        (12, f"status of entry {s.entry} please"),
        (8, f"{s.container} {rng.choice(shipments).entry}"),
        (8, "HELP"),
        (6, "hello"),
        (6, "Is iCMS working today?"),
        (6, f"{stranger} has it arrived?"),
        (6, f"check {mistyped(s.container)}"),
        (4, "'; DROP TABLE shipment; -- " + s.container),
        (4, f"\U0001f4a5 {s.container} \u202e %s {{ref}}"),
        (2, "I need to talk to an agent please"),
    ]
    return rng.choices([c for _, c in choices], weights=[w for w, _ in choices])[0]


@dataclass
class Plan:
    shipments: list[PlannedShipment]
    actions: list[Action]
    subscriptions: dict[str, tuple[int, bool]]  # sender → (shipment index, all stages)
    staff: list[tuple[float, str, str]]  # (at, command, expected reply fragment)


def make_plan(options: Options) -> Plan:
    rng = random.Random(options.seed)
    shipments = make_shipments(rng)
    seconds = options.seconds
    half = options.subscribers // 2
    subscribers = [f"whatsapp:+2547001{n:05d}" for n in range(half)] + [
        f"telegram:{FIRST_CHAT + n}" for n in range(options.subscribers - half)
    ]
    visitors = [f"whatsapp:+2547002{n:05d}" for n in range(40)] + [
        f"telegram:{FIRST_CHAT + 50_000 + n}" for n in range(40)
    ]
    stranger = container("ZIMU", rng.randrange(100_000, 999_999))

    def redelivery() -> str | None:
        roll = rng.random()
        return "after" if roll < 0.08 else "concurrent" if roll < 0.12 else None

    actions: list[Action] = []
    subscriptions: dict[str, tuple[int, bool]] = {}
    for sender in subscribers:
        index = rng.choices(range(len(shipments)), weights=SHIPMENT_WEIGHTS)[0]
        s = shipments[index]
        telegram = sender.startswith("telegram:")
        button = telegram and rng.random() < 0.3
        all_stages = not button and rng.random() < 0.3
        ref = rng.choice((s.container, s.entry))
        words = rng.choice(("ALERT", "alert", "Nijulishe", "subscribe"))
        body = f"ALERT {ref}" if button else f"{words} {ref}{' ALL' if all_stages else ''}"
        subscriptions[sender] = (index, all_stages)
        actions.append(
            Action(
                at=rng.uniform(0, SUBSCRIBE_UNTIL * seconds),
                channel="telegram" if telegram else "whatsapp",
                sender=sender,
                text=body,
                kind="subscribe",
                redeliver=redelivery(),
                button=button,
            )
        )
    askers = subscribers + visitors
    for _ in range(int(options.rate * seconds)):
        sender = rng.choice(askers)
        actions.append(
            Action(
                at=rng.uniform(0, seconds),
                channel=sender.partition(":")[0],
                sender=sender,
                text=question(rng, shipments, stranger),
                kind="question",
                redeliver=redelivery(),
            )
        )
    actions.sort(key=lambda a: a.at)
    a, b, c, d = shipments
    staff = [
        (0.40, f"/hold {a.entry} inspection waiting for the scanner", "On hold"),
        (0.45, f"/update {b.entry} arrived", "→"),
        (0.50, f"/hold {b.entry} kebs", "On hold"),
        (0.55, f"/release {a.entry} CRM26{rng.randrange(10**6):06d}", "Released"),
        (0.60, f"/update {c.entry} declared", "→"),
        (0.65, f"/release {b.entry}", "Released"),
        (0.70, f"/hold {c.container} docs", "On hold"),
        (0.72, f"/update {d.container} in transit", "→"),
        (0.75, f"/find {a.entry}", "Shipment #"),
    ]
    return Plan(
        shipments=shipments,
        actions=actions,
        subscriptions=subscriptions,
        staff=[(frac * seconds, command, expect) for frac, command, expect in staff],
    )


def expected_alerts(plan: Plan) -> dict[tuple[int, str], set[str]]:
    """(shipment index, kind) → who must get that alert, from the schedule alone."""
    subs: dict[int, set[str]] = collections.defaultdict(set)
    every_stage: dict[int, set[str]] = collections.defaultdict(set)
    for sender, (index, all_stages) in plan.subscriptions.items():
        subs[index].add(sender)
        if all_stages:
            every_stage[index].add(sender)
    for index, s in enumerate(plan.shipments):
        subs[index].add(s.linked)  # /add … for <number> optin
    expected: dict[tuple[int, str], set[str]] = {}
    for _, command, _ in plan.staff:
        verb, ref = command.split()[:2]
        index = next(i for i, s in enumerate(plan.shipments) if ref in (s.container, s.entry))
        if verb == "/hold":
            expected[(index, "hold")] = set(subs[index])
        elif verb == "/release":
            expected[(index, "release")] = set(subs[index])
        elif verb == "/update":
            expected[(index, "stage")] = set(every_stage[index])
    return expected


# --- talking to cargobot web ----------------------------------------------------------------------


def twiml_count(body: bytes) -> int:
    """How many non-empty <Message> a TwiML answer carries."""
    root = ET.fromstring(body)
    return sum(1 for m in root.iter("Message") if (m.text or "").strip())


def twiml_text(body: bytes) -> str:
    return "\n".join(m.text or "" for m in ET.fromstring(body).iter("Message"))


class Client:
    """Posts webhooks as Twilio and Telegram would, records what came back in the tally."""

    def __init__(self, base: str, tally: Tally) -> None:
        self.base = base
        self.tally = tally
        self.validator = RequestValidator(AUTH_TOKEN)
        self.http = http_client(timeout=30.0)
        self.side = http_client(timeout=30.0)  # for concurrent redeliveries

    def close(self) -> None:
        self.http.close()
        self.side.close()

    def whatsapp_form(self, sender: str, body: str, sid: str) -> dict[str, str]:
        return {
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "ProfileName": f"Customer {sender[-4:]}",
            "MessageType": "text",
            "SmsSid": sid,
            "WaId": sender.removeprefix("whatsapp:+"),
            "SmsStatus": "received",
            "Body": body,
            "To": BUSINESS_NUMBER,
            "NumSegments": "1",
            "ReferralNumMedia": "0",
            "MessageSid": sid,
            "AccountSid": ACCOUNT_SID,
            "From": sender,
            "ApiVersion": "2010-04-01",
        }

    def post_form(self, http: httpx.Client, path: str, form: dict[str, str]) -> httpx.Response:
        url = self.base + path
        signature = self.validator.compute_signature(url, form)
        return http.post(url, data=form, headers={"X-Twilio-Signature": signature})

    def whatsapp(self, http: httpx.Client, sid: str, form: dict[str, str]) -> bytes | None:
        started = time.perf_counter()
        try:
            response = self.post_form(http, WHATSAPP_PATH, form)
        except httpx.HTTPError as exc:
            self.tally.failed(f"whatsapp {sid}", exc)
            with self.tally.lock:
                self.tally.whatsapp.setdefault(sid, [])  # sent: another delivery must answer it
            return None
        seconds = time.perf_counter() - started
        count = 0
        if response.status_code == 200:
            try:
                count = twiml_count(response.content)
            except ET.ParseError:
                self.tally.note(f"whatsapp {sid}: answer is not TwiML: {response.text[:200]!r}")
        else:
            self.tally.note(f"whatsapp {sid}: HTTP {response.status_code} {response.text[:200]!r}")
        self.tally.answered_whatsapp(sid, count, response.status_code, seconds)
        return response.content if response.status_code == 200 else None

    def telegram(self, http: httpx.Client, update: dict[str, Any], chat: int) -> None:
        started = time.perf_counter()
        headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
        try:
            response = http.post(self.base + TELEGRAM_PATH, json=update, headers=headers)
        except httpx.HTTPError as exc:
            self.tally.failed(f"telegram {update['update_id']}", exc)
            with self.tally.lock:
                self.tally.telegram.setdefault(update["update_id"], (chat, []))
            return
        if response.status_code != 200:
            self.tally.note(
                f"telegram {update['update_id']}: HTTP {response.status_code} {response.text[:200]!r}"
            )
        self.tally.answered_telegram(
            update["update_id"], chat, response.status_code, time.perf_counter() - started
        )

    def deliver(self, send: Callable[[httpx.Client], object], redeliver: str | None) -> None:
        """Once, or twice: one after the other, or both at once (as a provider's retry may)."""
        if redeliver == "concurrent":
            other = threading.Thread(target=send, args=(self.side,), daemon=True)
            other.start()
            send(self.http)
            other.join(60)
            return
        send(self.http)
        if redeliver == "after":
            send(self.http)

    def run(self, action: Action, update_id: int) -> None:
        if action.channel == "whatsapp":
            sid = f"SM{uuid.uuid4().hex}"
            form = self.whatsapp_form(action.sender, action.text, sid)
            self.deliver(lambda http: self.whatsapp(http, sid, form), action.redeliver)
            return
        chat = int(action.sender.partition(":")[2])
        if action.button:
            update = telegram_callback_update(update_id, chat, action.text, bot_id=555000)
        else:
            update = telegram_message_update(update_id, chat, action.text, message_id=update_id)
        self.deliver(lambda http: self.telegram(http, update, chat), action.redeliver)


# --- processes ------------------------------------------------------------------------------------


class Worker:
    """One ``cargobot worker`` in a session of its own (so its whole group can be killed)."""

    def __init__(self, env: dict[str, str], cwd: Path, name: str) -> None:
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TMPDIR")
        self.env = {k: os.environ[k] for k in keep if k in os.environ} | env
        self.cwd = cwd
        self.name = name
        self.log_path = cwd / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._seen = 0

    def start(self) -> Worker:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop() and kill()
        self._seen = self.log().count("running: channels")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "worker"],
            cwd=self.cwd,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def wait_running(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.log().count("running: channels") <= self._seen:
            if self.process is None or self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start:\n{self.log()[-3000:]}")
            time.sleep(0.05)

    def dispatcher_id(self) -> str:
        """The id its dispatcher claims outbox rows under (from its "worker … running" line)."""
        found = re.findall(r"worker (\S+) running: channels", self.log())
        return found[-1] if found else ""

    def kill(self) -> None:
        """kill -9 of the whole process group: no shutdown of any kind."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        self._close()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        self._close()

    def _close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def schema(admin_url: str) -> Iterator[str]:
    """A fresh migrated schema; the database URL for it; dropped at the end."""
    with postgres_schema(admin_url, "cargobot_soak") as url:
        engine = make_engine(url)
        init_db(engine)
        dispose(engine)
        yield url


def cargobot_env(*, url: str, port: int, telegram: FakeProcess, twilio: FakeProcess) -> dict[str, str]:
    return {
        "DATABASE_URL": url,
        "CARGOBOT_DB_POOL_SIZE": "4",
        "CARGOBOT_DB_MAX_OVERFLOW": "4",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_WHATSAPP_FROM": BUSINESS_NUMBER,
        "TWILIO_API_BASE_URL": twilio.base_url,
        "TWILIO_TEMPLATE_RELEASE": TEMPLATE_RELEASE,
        "TWILIO_TEMPLATE_HOLD": TEMPLATE_HOLD,
        "TWILIO_MAX_PER_SECOND": "40",
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "TELEGRAM_API_BASE_URL": telegram.base_url,
        "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "TELEGRAM_MAX_PER_SECOND": "60",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "CARGOBOT_ADMINS": ADMIN,
        "ALERT_GRACE_SECONDS": "0",
        "CARGOBOT_LOOKUP_LIMIT_PER_HOUR": "100000",
        "CARGOBOT_DISPATCH_INTERVAL_SECONDS": "0.5",
        "CARGOBOT_CLAIM_LEASE_SECONDS": str(LEASE_SECONDS),
        "CARGOBOT_DISPATCH_CONCURRENCY": str(DISPATCH_CONCURRENCY),
        "LOG_LEVEL": "INFO",
    }


# --- the run --------------------------------------------------------------------------------------


class Traffic:
    """The client threads, the staff thread, the status-callback thread and the health poller."""

    def __init__(self, options: Options, plan: Plan, base: str, twilio: FakeProcess, tally: Tally) -> None:
        self.options = options
        self.plan = plan
        self.base = base
        self.twilio = twilio
        self.tally = tally
        self.stop = threading.Event()
        self.started = 0.0
        self._next = 0
        self._lock = threading.Lock()
        self._update_ids = iter(range(1, 10**9))
        self._subscriptions_left = sum(a.kind == "subscribe" for a in plan.actions)
        self.subscriptions_done = threading.Event()
        self.first_release = threading.Event()
        if not self._subscriptions_left:
            self.subscriptions_done.set()

    def _take(self) -> tuple[Action, int] | None:
        with self._lock:
            if self._next >= len(self.plan.actions):
                return None
            action = self.plan.actions[self._next]
            self._next += 1
            return action, next(self._update_ids)

    def _wait_until(self, at: float) -> bool:
        """Wait for the schedule (bounded by the run itself); False when the run is stopping."""
        delay = self.started + at - time.monotonic()
        return not (delay > 0 and self.stop.wait(delay))

    def client(self) -> None:
        client = Client(self.base, self.tally)
        try:
            while (item := self._take()) is not None:
                action, update_id = item
                if not self._wait_until(action.at):
                    return
                try:
                    client.run(action, update_id)
                except Exception as exc:  # a bug here must not stall the schedule; the audit reports it
                    self.tally.note(f"client failed on {action}: {exc!r}")
                finally:
                    if action.kind == "subscribe":
                        with self._lock:
                            self._subscriptions_left -= 1
                            if not self._subscriptions_left:
                                self.subscriptions_done.set()
        finally:
            client.close()

    def staff(self) -> None:
        client = Client(self.base, self.tally)
        try:
            deadline = time.monotonic() + self.options.seconds + 60
            while not self.subscriptions_done.wait(0.1):
                if self.stop.is_set():
                    return
                if time.monotonic() > deadline:
                    self.tally.note("the subscriptions were not all answered: staff changes skipped")
                    return
            for at, command, expect in self.plan.staff:
                if not self._wait_until(at):
                    return
                sid = f"SM{uuid.uuid4().hex}"
                body = client.whatsapp(client.http, sid, client.whatsapp_form(ADMIN, command, sid))
                reply = twiml_text(body) if body else ""
                if expect not in reply:
                    self.tally.note(f"staff {command!r} answered {reply[:300]!r}")
                if command.startswith("/release"):
                    self.first_release.set()
        finally:
            client.close()

    def callbacks(self) -> None:
        """Twilio's status callbacks ('delivered') for some of the WhatsApp messages sent."""
        validator = RequestValidator(AUTH_TOKEN)
        done: set[str] = set()
        with http_client(timeout=30.0) as http:
            while not self.stop.wait(3.0):
                try:
                    sent = self.twilio.sent()
                except OSError as exc:
                    self.tally.failed("reading the fake Twilio", exc)
                    continue
                for record in [r for r in sent if r["sid"] not in done][:10]:
                    done.add(record["sid"])
                    params = {
                        "MessageSid": record["sid"],
                        "SmsSid": record["sid"],
                        "AccountSid": ACCOUNT_SID,
                        "From": record["from_"],
                        "To": record["to"],
                        "MessageStatus": "delivered",
                        "SmsStatus": "delivered",
                        "ApiVersion": "2010-04-01",
                        "ChannelPrefix": "whatsapp",
                    }
                    url = record["status_callback"] or self.base + STATUS_PATH
                    started = time.perf_counter()
                    try:
                        response = http.post(
                            url,
                            data=params,
                            headers={"X-Twilio-Signature": validator.compute_signature(url, params)},
                        )
                    except httpx.HTTPError as exc:
                        self.tally.failed(f"status callback {record['sid']}", exc)
                        continue
                    with self.tally.lock:
                        self.tally.callbacks[record["sid"]] = response.status_code
                        self.tally.statuses[response.status_code] += 1
                        self.tally.latencies.append(time.perf_counter() - started)
                        self.tally.by_channel["status"].append(time.perf_counter() - started)

    def health(self) -> None:
        with http_client(timeout=10.0) as http:
            while not self.stop.wait(0.5):
                try:
                    code = str(http.get(self.base + "/healthz").status_code)
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                with self.tally.lock:
                    self.tally.health[code] += 1


def warm_up(base: str, tally: Tally, web_workers: int) -> None:
    """A few concurrent messages on both channels before the clock starts, so that every gunicorn
    worker has made its first database connections and its Telegram client (about a second each
    on a busy machine). They count as inbound messages in the audit; their latency does not."""

    def one(n: int) -> None:
        client = Client(base, tally)
        try:
            sid = f"SM{uuid.uuid4().hex}"
            client.whatsapp(client.http, sid, client.whatsapp_form(f"whatsapp:+2547003{n:05d}", "HELP", sid))
            chat = FIRST_CHAT + 90_000 + n
            client.telegram(client.http, telegram_message_update(900_000_000 + n, chat, "HELP"), chat)
        finally:
            client.close()

    threads = [threading.Thread(target=one, args=(n,), daemon=True) for n in range(2 * web_workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with tally.lock:
        tally.latencies.clear()
        tally.by_channel.clear()


def busiest_worker(engine: Engine, workers: list[Worker], timeout: float) -> tuple[Worker, int]:
    """The worker holding the most outbox claims, as soon as one holds any (polled, bounded)."""
    ids = {worker.dispatcher_id(): worker for worker in workers}
    deadline = time.monotonic() + timeout
    while True:
        with read_session(engine) as session:
            held = session.execute(
                select(Outbox.claimed_by, func.count())
                .where(Outbox.status == "sending", Outbox.claimed_by.in_(list(ids)))  # type: ignore[union-attr]
                .group_by(Outbox.claimed_by)
            ).all()
        if held or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    if not held:
        return workers[0], 0
    claimed_by, count = max(held, key=lambda row: row[1])
    return ids[claimed_by], int(count)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def wait_drained(engine: Engine, timeout: float) -> tuple[bool, float]:
    started = time.monotonic()
    while True:
        with read_session(engine) as session:
            left = session.execute(
                select(func.count()).select_from(Outbox).where(Outbox.status.in_(UNSETTLED))  # type: ignore[attr-defined]
            ).scalar_one()
        elapsed = time.monotonic() - started
        if not left:
            return True, elapsed
        if elapsed > timeout:
            say(f"outbox not drained after {timeout:.0f} s: {left} row(s) still due or in flight")
            return False, elapsed
        time.sleep(0.25)


# --- the audit ------------------------------------------------------------------------------------


@dataclass
class Audit:
    problems: list[str] = field(default_factory=list)
    lost: int = 0
    duplicates: int = 0
    figures: dict[str, Any] = field(default_factory=dict)

    def problem(self, message: str) -> None:
        self.problems.append(message)


def audit(
    plan: Plan,
    tally: Tally,
    engine: Engine,
    telegram_sent: list[dict[str, Any]],
    twilio_sent: list[dict[str, Any]],
    *,
    in_flight_bound: int,
) -> Audit:
    result = Audit()
    with read_session(engine) as session:
        rows = list(session.execute(select(Outbox)).scalars())
        inbound_keys = set(session.execute(select(InboundMessage.provider_key)).scalars())
        refs = session.execute(
            select(ShipmentReference.shipment_id, Reference.value).join(
                Reference, Reference.id == ShipmentReference.reference_id
            )
        ).all()
        subs = session.execute(
            select(Contact.address, Subscription.shipment_id, Subscription.all_stages)
            .join(Contact, Contact.id == Subscription.contact_id)
            .where(Subscription.active.is_(True))  # type: ignore[attr-defined]
        ).all()
        delivery = dict(
            session.execute(
                select(Outbox.provider_id, Outbox.delivery_status).where(Outbox.provider_id.is_not(None))
            ).all()  # type: ignore[union-attr]
        )

    # WhatsApp: one non-empty TwiML per MessageSid, whatever the number of deliveries.
    unanswered = [sid for sid, counts in tally.whatsapp.items() if sum(c > 0 for c in counts) == 0]
    twice = [sid for sid, counts in tally.whatsapp.items() if sum(c > 0 for c in counts) > 1]
    not_stored = [sid for sid in tally.whatsapp if f"whatsapp:{sid}" not in inbound_keys]
    for label, items in (("unanswered", unanswered), ("answered twice", twice), ("not stored", not_stored)):
        if items:
            result.problem(f"{len(items)} WhatsApp message(s) {label}: {items[:5]}")
    result.lost += len(unanswered)
    result.duplicates += len(twice)

    # Telegram: every update stored and answered by reply rows (checked against the fake below).
    replies_by_update: dict[int, list[Outbox]] = collections.defaultdict(list)
    for row in rows:
        if row.event_key.startswith("reply:telegram:"):
            replies_by_update[int(row.event_key.split(":")[2])].append(row)
    tg_unanswered = [uid for uid in tally.telegram if not replies_by_update.get(uid)]
    tg_not_stored = [uid for uid in tally.telegram if f"telegram:{uid}" not in inbound_keys]
    tg_extra = [uid for uid in replies_by_update if uid not in tally.telegram]
    for label, ids in (("unanswered", tg_unanswered), ("not stored", tg_not_stored), ("unknown", tg_extra)):
        if ids:
            result.problem(f"{len(ids)} Telegram update(s) {label}: {sorted(ids)[:5]}")
    result.lost += len(tg_unanswered)
    wrong_chat = [
        uid
        for uid, (chat, _) in tally.telegram.items()
        if any(r.recipient != f"telegram:{chat}" for r in replies_by_update.get(uid, []))
    ]
    if wrong_chat:
        result.problem(f"{len(wrong_chat)} Telegram update(s) answered in another chat: {wrong_chat[:5]}")

    # Subscriptions in the database are the ones the schedule made (plus the staff-linked ones).
    index_of = {
        shipment_id: next(i for i, s in enumerate(plan.shipments) if value in (s.container, s.entry))
        for shipment_id, value in refs
    }
    stored = {(address, index_of[sid]) for address, sid, _ in subs}
    planned = {(sender, index) for sender, (index, _) in plan.subscriptions.items()}
    planned |= {(s.linked, i) for i, s in enumerate(plan.shipments)}
    if stored != planned:
        result.problem(
            f"subscriptions differ from the schedule: {len(planned - stored)} missing "
            f"{sorted(planned - stored)[:3]}, "
            f"{len(stored - planned)} unexpected {sorted(stored - planned)[:3]}"
        )

    # Alerts: exactly the planned recipients, one row each (rows are unique per event and recipient).
    alert_rows = [r for r in rows if r.kind in ALERT_KINDS]
    got: dict[tuple[int, str], collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for row in alert_rows:
        got[(index_of[row.shipment_id], row.kind)][row.recipient] += 1
    expected = expected_alerts(plan)
    missing_rows = 0
    for key in sorted(set(expected) | set(got)):
        want, have = expected.get(key, set()), got.get(key, collections.Counter())
        missing, extra = want - set(have), set(have) - want
        doubled = sum(n - 1 for n in have.values() if n > 1)
        missing_rows += len(missing)
        result.duplicates += doubled
        if missing or extra or doubled:
            name = plan.shipments[key[0]].name
            result.problem(
                f"{key[1]} alerts for shipment {name}: {len(missing)} missing {sorted(missing)[:3]}, "
                f"{len(extra)} unexpected {sorted(extra)[:3]}, {doubled} doubled"
            )
    result.lost += missing_rows

    # Every outbox row (alerts, agent requests, Telegram replies) ended sent ...
    unsent = [r for r in rows if r.status != "sent"]
    if unsent:
        kinds = collections.Counter(f"{r.kind}:{r.status}" for r in unsent)
        result.problem(f"{len(unsent)} outbox row(s) not sent: {dict(kinds)}; e.g. {unsent[0].last_error!r}")
    result.lost += len(unsent)

    # ... and reached the fake exactly once: matched by provider message id, then by content.
    sends: dict[tuple[str, str], dict[str, Any]] = {}
    for record in telegram_sent:
        sends[(f"telegram:{record['chat_id']}", str(record["message_id"]))] = record
    for record in twilio_sent:
        sends[(record["to"], record["sid"])] = record
    matched: set[tuple[str, str]] = set()
    phantom = 0
    mismatched = []
    for row in rows:
        if row.status != "sent":
            continue
        key = (row.recipient, row.provider_id or "")
        record = sends.get(key)
        if record is None:
            phantom += 1
            continue
        matched.add(key)
        body = record.get("text", record.get("body"))
        if body is not None and body != row.text and not body.startswith(row.text):
            mismatched.append(row.id)
        if body is None and record.get("content_sid") not in (TEMPLATE_RELEASE, TEMPLATE_HOLD):
            mismatched.append(row.id)
    orphans = [key for key in sends if key not in matched]
    if phantom:
        result.problem(f"{phantom} outbox row(s) marked sent that the fakes never accepted")
    if mismatched:
        result.problem(f"{len(mismatched)} send(s) whose text differs from the outbox row: {mismatched[:5]}")
    result.lost += phantom

    # Content: per recipient, the texts received against the texts of the rows sent to them.
    received: collections.Counter[tuple[str, str]] = collections.Counter()
    for record in telegram_sent:
        received[(f"telegram:{record['chat_id']}", record["text"])] += 1
    for record in twilio_sent:
        received[(record["to"], record["body"] or f"template:{record['content_sid']}")] += 1
    wanted: collections.Counter[tuple[str, str]] = collections.Counter()
    for row in rows:
        if row.status == "sent":
            record = sends.get((row.recipient, row.provider_id or ""))
            if record is not None and record.get("content_sid"):
                wanted[(row.recipient, f"template:{record['content_sid']}")] += 1
            elif record is not None:
                wanted[(row.recipient, record.get("text") or record.get("body") or "")] += 1
    content_extra = sum(max(0, n - wanted[k]) for k, n in received.items())
    # Judged by the caller against the in-flight bound (zero unless a worker was killed).
    result.duplicates += max(len(orphans), content_extra)
    if orphans or content_extra:
        result.figures["extra_sends"] = (
            f"{len(orphans)} send(s) at the fakes that no outbox row accounts for "
            f"({content_extra} by content): {orphans[:5]}"
        )

    # Status callbacks: answered 2xx and applied.
    bad_callbacks = {sid: code for sid, code in tally.callbacks.items() if code != 200}
    not_applied = [
        sid
        for sid, code in tally.callbacks.items()
        if code == 200 and sid in delivery and delivery[sid] not in ("delivered", "read")
    ]
    if bad_callbacks or not_applied:
        result.problem(f"status callbacks: {len(bad_callbacks)} refused, {len(not_applied)} not applied")

    result.figures.update(
        unanswered=len(unanswered) + len(tg_unanswered),
        answered_twice=len(twice),
        telegram_replies=sum(len(v) for v in replies_by_update.values()),
        alert_rows=len(alert_rows),
        agent_rows=sum(r.kind == "agent" for r in rows),
        telegram_sends=len(telegram_sent),
        twilio_sends=len(twilio_sent),
        templates=sum(1 for r in twilio_sent if r.get("content_sid")),
        orphan_sends=len(orphans),
        status_callbacks=len(tally.callbacks),
        in_flight_bound=in_flight_bound,
    )
    # Alert throughput while alerts were waiting: the union of each fan-out's [created, last sent].
    fanouts: dict[str | None, list[Outbox]] = collections.defaultdict(list)
    for row in alert_rows:
        if row.status == "sent" and row.sent_at is not None:
            fanouts[row.change_id].append(row)
    spans = sorted(
        (min(r.created_at for r in group), max(r.sent_at for r in group if r.sent_at is not None))
        for group in fanouts.values()
    )
    busy, end = 0.0, None
    for start, stop in spans:
        if end is not None and start < end:
            start = end
        if stop > start:
            busy += (stop - start).total_seconds()
        end = max(end, stop) if end is not None else stop
    result.figures["alert_seconds"] = max(busy, 0.001)
    delays = [
        (r.sent_at - r.created_at).total_seconds() for group in fanouts.values() for r in group if r.sent_at
    ]
    result.figures["alert_delay_p50_s"] = round(percentile(delays, 0.50), 2)
    result.figures["alert_delay_p99_s"] = round(percentile(delays, 0.99), 2)
    return result


_TRACEBACK = re.compile(r"^Traceback \(most recent call last\)", re.MULTILINE)


def scan_logs(logs: dict[str, str]) -> list[str]:
    problems = []
    for name, content in logs.items():
        tracebacks = len(_TRACEBACK.findall(content))
        if tracebacks:
            first = content[_TRACEBACK.search(content).start() :][:1500]  # type: ignore[union-attr]
            problems.append(f"{tracebacks} traceback(s) in {name}; the first:\n{first}")
        for secret in (AUTH_TOKEN, BOT_TOKEN, WEBHOOK_SECRET):
            if secret in content:
                problems.append(f"a secret ({secret[:6]}…) appears in {name}")
    return problems


def run(options: Options) -> dict[str, Any]:
    """The whole soak; returns the figures (``ok`` False and ``problems`` when a check failed)."""
    plan = make_plan(options)
    tally = Tally()
    questions = sum(a.kind == "question" for a in plan.actions)
    say(
        f"soak: {options.seconds:g} s of traffic, {options.subscribers} subscribers over "
        f"{len(plan.shipments)} shipments, {questions} questions ({options.rate:g}/s), "
        f"{len(plan.staff)} staff commands, {options.error_rate:.0%} injected send errors"
        + (", kill -9 of a worker" if options.kill else "")
    )
    started_all = time.monotonic()
    figures: dict[str, Any] = {"kill_claims": 0}
    problems: list[str] = []
    with contextlib.ExitStack() as stack:
        workdir = options.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-")))
        workdir.mkdir(parents=True, exist_ok=True)
        url = stack.enter_context(schema(options.pg_url))
        engine = make_engine(url)
        stack.callback(engine.dispose)
        telegram = stack.enter_context(FakeProcess("telegram", token=BOT_TOKEN, bot_id=555000))
        twilio = stack.enter_context(FakeProcess("twilio", account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN))
        half = options.error_rate / 2
        telegram.random_faults(options.seed, p_429=half, p_500=half, retry_after=1.0)
        twilio.random_faults(options.seed + 1, p_429=half, p_500=half, retry_after=1.0)

        port = free_port()
        env = cargobot_env(url=url, port=port, telegram=telegram, twilio=twilio)
        workers = [Worker(env, workdir, f"worker-{n}") for n in range(options.workers)]
        web = WebProcess(env=env, cwd=workdir, port=port, workers=options.web_workers, threads=4)
        logs: dict[str, str] = {}

        def stop_processes() -> None:
            """All at once (each waits for its own graceful exit); process groups killed if they linger."""
            stoppers = [threading.Thread(target=p.stop) for p in (*workers, web)]
            for stopper in stoppers:
                stopper.start()
            for stopper in stoppers:
                stopper.join(60)
            logs.update({w.name: w.log() for w in workers} | {"web": web.log()})

        stack.callback(stop_processes)
        for worker in workers:
            worker.start()
        web.start(timeout=60)
        for worker in workers:
            worker.wait_running()
        say(
            f"up in {time.monotonic() - started_all:.1f} s: web on {web.url} "
            f"({options.web_workers} workers), {options.workers} dispatch workers, "
            f"fakes on {telegram.url} and {twilio.url}"
        )

        # Setup: the admin adds the shipments by WhatsApp, each linked to a customer with optin.
        setup = Client(web.url, tally)
        for s in plan.shipments:
            sid = f"SM{uuid.uuid4().hex}"
            command = f"/add {s.container} {s.entry} for {s.linked.removeprefix('whatsapp:')} optin"
            body = setup.whatsapp(setup.http, sid, setup.whatsapp_form(ADMIN, command, sid))
            reply = twiml_text(body) if body else ""
            if "subscribed to alerts" not in reply:
                problems.append(f"{command!r} answered {reply[:300]!r}")
        setup.close()
        warm_up(web.url, tally, options.web_workers)

        traffic = Traffic(options, plan, web.url, twilio, tally)
        threads = [
            threading.Thread(target=traffic.client, name=f"client-{n}", daemon=True)
            for n in range(options.clients)
        ]
        threads.append(threading.Thread(target=traffic.staff, name="staff", daemon=True))
        side = [
            threading.Thread(target=traffic.callbacks, name="callbacks", daemon=True),
            threading.Thread(target=traffic.health, name="health", daemon=True),
        ]
        kills = 0
        try:
            traffic.started = time.monotonic()
            for thread in threads + side:
                thread.start()
            if options.kill and options.workers:
                if traffic.first_release.wait(options.seconds + 60):
                    victim, held = busiest_worker(engine, workers, timeout=10.0)
                    victim.kill()
                    kills += 1
                    at = time.monotonic() - traffic.started
                    say(f"killed {victim.name} (kill -9) {at:.1f} s in, holding {held} claim(s); restarted")
                    figures["kill_claims"] = held
                    victim.start()
                    victim.wait_running()
            for thread in threads:
                thread.join(options.seconds + 120)
            traffic_seconds = time.monotonic() - traffic.started
        finally:
            traffic.stop.set()
            deadline = time.monotonic() + 40  # a request in flight may take its full timeout
            for thread in threads + side:
                thread.join(max(0.0, deadline - time.monotonic()))
        say(f"traffic done in {traffic_seconds:.1f} s; waiting for the outbox to drain")
        drained, drain_seconds = wait_drained(engine, options.drain_timeout)
        say(f"outbox {'drained' if drained else 'NOT drained'} {drain_seconds:.1f} s after the traffic")

        stopping = time.monotonic()
        stop_processes()  # nothing may send while the fakes are read
        say(f"cargobot processes stopped in {time.monotonic() - stopping:.1f} s")
        telegram_sent, twilio_sent = telegram.sent(), twilio.sent()
        fake_stats = {"telegram": telegram.stats(), "twilio": twilio.stats()}
        result = audit(
            plan,
            tally,
            engine,
            telegram_sent,
            twilio_sent,
            in_flight_bound=DISPATCH_CONCURRENCY * kills,
        )

    problems.extend(result.problems)
    problems.extend(scan_logs(logs))
    for name, stats in fake_stats.items():
        if stats["errors"]:
            problems.append(f"the fake {name} failed inside: {stats['errors'][:3]}")
    http_5xx = sum(n for code, n in tally.statuses.items() if code >= 500)
    other = {code: n for code, n in tally.statuses.items() if code != 200}
    if other:
        problems.append(f"cargobot web answered {other}: {tally.unexpected[:3]}")
    if tally.transport_errors:
        problems.append(f"{len(tally.transport_errors)} request(s) failed: {tally.transport_errors[:3]}")
    problems.extend(tally.unexpected[:5] if not other else [])
    health_bad = {code: n for code, n in tally.health.items() if code != "200"}
    if health_bad or not tally.health:
        problems.append(f"/healthz answered {dict(tally.health)}")
    if not drained:
        problems.append("the outbox did not drain in time")
    duplicates_allowed = result.figures["in_flight_bound"]
    extra_sends = result.figures.pop("extra_sends", "")
    if result.duplicates > duplicates_allowed:
        problems.append(f"{result.duplicates} duplicate(s), allowed {duplicates_allowed}; {extra_sends}")
    elif extra_sends:
        say(f"within the in-flight bound after the kill: {extra_sends}")

    inbound = len(tally.whatsapp) + len(tally.telegram)
    deliveries = sum(len(v) for v in tally.whatsapp.values()) + sum(
        len(v[1]) for v in tally.telegram.values()
    )
    alerts = result.figures["alert_rows"]
    injected = {
        f"{name}_{key}": n
        for name, stats in fake_stats.items()
        for key, n in stats["counts"].items()
        if key in ("http_429", "http_500")
    }
    figures |= {
        "inbound_per_s": round(inbound / traffic_seconds, 2),
        "alerts_per_s": round(alerts / result.figures.get("alert_seconds", 1.0), 2),
        "p50_reply_ms": round(percentile(tally.latencies, 0.50) * 1000, 1),
        "p99_reply_ms": round(percentile(tally.latencies, 0.99) * 1000, 1),
        "max_reply_ms": round(max(tally.latencies, default=0.0) * 1000, 1),
        **{
            f"p99_{channel}_ms": round(percentile(values, 0.99) * 1000, 1)
            for channel, values in sorted(tally.by_channel.items())
        },
        "lost": result.lost,
        "duplicates": result.duplicates,
        "inbound": inbound,
        "whatsapp_inbound": len(tally.whatsapp),
        "telegram_inbound": len(tally.telegram),
        "redeliveries": deliveries - inbound,
        "alerts": alerts,
        "http_5xx": http_5xx,
        "http_non_200": sum(other.values()),
        "transport_errors": len(tally.transport_errors),
        "healthz_polls": sum(tally.health.values()),
        "healthz_failures": sum(health_bad.values()),
        "seconds": round(traffic_seconds, 1),
        "drain_seconds": round(drain_seconds, 1),
        "total_seconds": round(time.monotonic() - started_all, 1),
        "kill": bool(kills),
        **{k: v for k, v in result.figures.items() if k != "alert_seconds"},
        **injected,
        "ok": not problems,
        "problems": problems[:20],
    }
    return figures


def report(figures: dict[str, Any]) -> None:
    say(
        f"inbound: {figures['inbound']} messages ({figures['whatsapp_inbound']} WhatsApp, "
        f"{figures['telegram_inbound']} Telegram) + {figures['redeliveries']} redeliveries, "
        f"{figures['inbound_per_s']}/s; reply latency p50 {figures['p50_reply_ms']} ms, "
        f"p99 {figures['p99_reply_ms']} ms (WhatsApp {figures.get('p99_whatsapp_ms')}, Telegram "
        f"{figures.get('p99_telegram_ms')}, status callbacks {figures.get('p99_status_ms')}), "
        f"max {figures['max_reply_ms']} ms"
    )
    say(
        f"alerts: {figures['alerts']} ({figures['alerts_per_s']}/s while any waited; delay p50 "
        f"{figures['alert_delay_p50_s']} s, p99 {figures['alert_delay_p99_s']} s), "
        f"{figures['templates']} as templates; "
        f"{figures['telegram_replies']} Telegram replies, {figures['agent_rows']} agent requests; "
        f"injected 429/500: Telegram {figures.get('telegram_http_429', 0)}/"
        f"{figures.get('telegram_http_500', 0)}, Twilio {figures.get('twilio_http_429', 0)}/"
        f"{figures.get('twilio_http_500', 0)}"
    )
    say(
        f"lost {figures['lost']}, duplicates {figures['duplicates']} (in-flight bound "
        f"{figures['in_flight_bound']}), cargobot web 5xx {figures['http_5xx']}, /healthz failures "
        f"{figures['healthz_failures']} of {figures['healthz_polls']}"
    )
    for problem in figures["problems"]:
        say(f"PROBLEM: {problem}")
    say("soak passed" if figures["ok"] else "soak FAILED")


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="traffic period (default 60)")
    parser.add_argument("--subscribers", type=int, default=300, help="customers who subscribe (default 300)")
    parser.add_argument("--rate", type=float, default=20.0, help="customer questions per second (default 20)")
    parser.add_argument("--clients", type=int, default=8, help="client threads (default 8)")
    parser.add_argument("--kill", action="store_true", help="kill -9 a worker mid-fan-out and restart it")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--error-rate", type=float, default=0.05, help="injected 429s + 500s per send")
    parser.add_argument("--drain-timeout", type=float, default=120.0, help="longest wait for the outbox")
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--workers", type=int, default=2, help="cargobot worker processes (default 2)")
    parser.add_argument("--workdir", type=Path, help="keep logs here (default: a temporary directory)")
    args = parser.parse_args(argv)
    options = Options(
        seconds=args.seconds,
        subscribers=args.subscribers,
        rate=args.rate,
        clients=args.clients,
        kill=args.kill,
        seed=args.seed,
        error_rate=args.error_rate,
        drain_timeout=args.drain_timeout,
        web_workers=args.web_workers,
        workers=args.workers,
        workdir=args.workdir,
    )
    # SIGTERM (a test's timeout, CI cancelling) unwinds like Ctrl-C, so every process started is stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        figures = run(options)
    except KeyboardInterrupt as exc:
        say(f"soak interrupted ({exc or 'Ctrl-C'}); every process it started was stopped")
        return 130
    report(figures)
    print(json.dumps(figures), flush=True)
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
