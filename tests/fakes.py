"""Fake Telegram Bot API and fake Twilio REST servers on localhost, for tests, e2e runs and benchmarks.

Each fake is a real HTTP/1.1 server (asyncio, on its own thread and event loop) on a free port of
127.0.0.1, so the real python-telegram-bot and twilio SDKs talk to it exactly as they would to the
real services. Both record what they get and misbehave on demand::

    with FakeTelegram() as tg:
        settings = Settings(_env_file=None, telegram_bot_token="123:ABC",
                            telegram_api_base_url=tg.base_url)
        tg.next_429(2, retry_after=3)          # the next two sendMessage calls answer 429
        tg.block_chat(42)                      # every send to chat 42 answers 403 from now on
        tg.enforce_rate_limit(per_second=30, per_chat_per_second=1)
        ...
        assert [s.text for s in tg.sent] == [...]

Faults, in the order a request meets them:
  1. the one-shot queue (``inject(fault, times, method)`` and the ``next_*`` helpers), first match wins;
  2. per-target faults (``set_target_fault`` and ``block_chat`` / ``close_window`` ...), which last;
  3. random faults (``random_faults(seed, p_429=..)``), seeded, for soak tests;
  4. rate-limit enforcement (``enforce_rate_limit``: overall and per chat, as a token bucket that
     forgives 0.1 s of jitter, or strict sliding one-second windows);
  then ``latency`` plus any fault's ``delay`` before the answer.
Successful sends are recorded when they arrive (before any delay): a client that timed out waiting
may still have "delivered", as with the real services.

Counters: ``counts`` (``requests``, ``connections``, ``http_200``, ``http_429``, ``rate_limited``,
``dropped`` ...), with ``http_429`` / ``http_5xx`` / ``requests`` properties; ``errors`` lists
exceptions inside the fake itself.

For benchmarks, ``FakeProcess("telegram", latency=0.05)`` runs the same fake in a process of its
own (``python -m tests.fakes``) and drives it through a small control API under ``/_fake/``, so
the fake's clock does not share the GIL with the client it measures.

Nothing here reads the environment or reaches beyond 127.0.0.1, except ``send_status_callback``,
which posts to whatever StatusCallback URL the client gave (in tests, a local server).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import itertools
import json
import logging
import math
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Self

log = logging.getLogger(__name__)

CONTROL_PREFIX = "/_fake/"

__all__ = [
    "Fault",
    "RandomFaults",
    "FakeTelegram",
    "FakeTwilio",
    "FakeProcess",
    "TelegramSend",
    "TwilioSend",
    "telegram_message_update",
    "telegram_callback_update",
    "twilio_signature",
    "wait_until",
]


# --------------------------------------------------------------------------------------------
# fault model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """How to misbehave on one request.

    ``status`` None means "answer normally" (useful with ``delay`` alone). ``description`` is
    Telegram's error description or Twilio's message; ``code`` Twilio's error code.
    ``drop`` closes the connection without any answer.
    """

    status: int | None = None
    delay: float = 0.0
    retry_after: float | None = None
    description: str | None = None
    code: int | None = None
    drop: bool = False


@dataclass(frozen=True)
class RandomFaults:
    """Seeded random misbehaviour for soak tests; probabilities are per send request."""

    seed: int = 0
    p_429: float = 0.0
    p_500: float = 0.0
    p_drop: float = 0.0
    p_delay: float = 0.0
    delay: float = 0.5
    retry_after: float = 1.0


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    arrived: float  # time.monotonic(), for windows
    received: float  # time.time(), for records

    def form(self) -> dict[str, str]:
        """Query string, then form or JSON body, merged into one flat dict of strings or values."""
        params: dict[str, Any] = dict(self.query)
        ctype = self.headers.get("content-type", "")
        if not self.body:
            return params
        if ctype.startswith("application/json"):
            loaded = json.loads(self.body)
            if isinstance(loaded, dict):
                params.update(loaded)
        else:
            params.update(urllib.parse.parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))
        return params


@dataclass
class _Response:
    status: int
    payload: Any
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self, keep_alive: bool) -> bytes:
        body = json.dumps(self.payload).encode("utf-8")
        try:
            phrase = HTTPStatus(self.status).phrase
        except ValueError:
            phrase = "Unknown"
        lines = [
            f"HTTP/1.1 {self.status} {phrase}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            f"Connection: {'keep-alive' if keep_alive else 'close'}",
            *(f"{k}: {v}" for k, v in self.headers.items()),
        ]
        # One write for head and body: no Nagle / delayed-ACK stall on keep-alive (DESIGN §7).
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _BucketLimit:
    """GCRA per second, overall and per key: a token bucket holding ``1 + rate * tolerance``.

    Even pacing at the rate passes with up to ``tolerance`` seconds of jitter; a burst larger than
    ``rate * tolerance`` or a long-run rate above the limit gets 429s.
    """

    def __init__(self, per_second: float | None, per_key: float | None, tolerance: float) -> None:
        self.per_second = per_second
        self.per_key = per_key
        self.tolerance = tolerance
        self._tat = -math.inf
        self._tat_by_key: dict[str, float] = {}

    def admit(self, key: str, now: float) -> bool:
        key_tat = self._tat_by_key.get(key, -math.inf)
        if self.per_second is not None and now < self._tat - self.tolerance:
            return False
        if self.per_key is not None and now < key_tat - self.tolerance:
            return False
        if self.per_second is not None:
            self._tat = max(self._tat, now) + 1.0 / self.per_second
        if self.per_key is not None:
            self._tat_by_key[key] = max(key_tat, now) + 1.0 / self.per_key
        return True


class _SlidingWindow:
    """Accepted-request timestamps in the last ``window`` seconds, overall and per key."""

    def __init__(self, per_window: float | None, per_key: float | None, window: float = 1.0) -> None:
        self.per_window = per_window
        self.per_key = per_key
        self.window = window
        self._all: collections.deque[float] = collections.deque()
        self._by_key: dict[str, collections.deque[float]] = {}

    def admit(self, key: str, now: float) -> bool:
        horizon = now - self.window
        while self._all and self._all[0] <= horizon:
            self._all.popleft()
        mine = self._by_key.setdefault(key, collections.deque())
        while mine and mine[0] <= horizon:
            mine.popleft()
        if self.per_window is not None and len(self._all) >= self.per_window:
            return False
        if self.per_key is not None and len(mine) >= self.per_key:
            return False
        self._all.append(now)
        mine.append(now)
        return True


# --------------------------------------------------------------------------------------------
# the HTTP server underneath both fakes
# --------------------------------------------------------------------------------------------


class _FakeHTTPServer:
    """A small HTTP/1.1 keep-alive server on its own thread and asyncio loop.

    asyncio rather than ``http.server``: delays cost nothing (a sleeping coroutine, not a thread),
    and it keeps up with benchmark loads on two cores.
    """

    #: Methods (Telegram) or operations (Twilio) that count as "a send" for faults and limits.
    send_operations: frozenset[str] = frozenset()
    #: What ``inject(..., method=None)`` applies to.
    default_operation: str = ""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0, backlog: int = 512
    ) -> None:
        self.host = host
        self._port = port
        self.latency = latency
        self._backlog = backlog
        self._lock = threading.RLock()
        self._queued: list[tuple[str | None, Fault]] = []
        self._target_faults: dict[str, Fault] = {}
        self._random: RandomFaults | None = None
        self._rng = random.Random(0)
        self._limits: _SlidingWindow | _BucketLimit | None = None
        self._limit_retry_after: float = 1.0
        self.counts: collections.Counter[str] = collections.Counter()
        self.errors: list[str] = []  # exceptions inside the fake itself: a test may assert none
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[asyncio.Task[None]] = set()

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("already started")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._startup())
            except BaseException as exc:  # surfaced to the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name=type(self).__name__, daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        future.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _startup(self) -> None:
        self._server = await asyncio.start_server(
            self._serve_connection, self.host, self._port, backlog=self._backlog
        )
        self._port = self._server.sockets[0].getsockname()[1]
        await self._on_startup()

    async def _on_startup(self) -> None:
        """Hook for subclasses to make loop-bound objects."""

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://{self.host}:{self._port}"

    # ---- fault injection --------------------------------------------------------------------

    def inject(self, fault: Fault, times: int = 1, method: str | None = None) -> None:
        """The next ``times`` requests for ``method`` (default: the send operation) get ``fault``."""
        op = (method or self.default_operation).lower()
        with self._lock:
            self._queued.extend((op, fault) for _ in range(times))

    def set_target_fault(self, target: str | int, fault: Fault | None) -> None:
        """Every send to ``target`` (chat id / To number) gets ``fault`` until cleared with None."""
        with self._lock:
            if fault is None:
                self._target_faults.pop(str(target), None)
            else:
                self._target_faults[str(target)] = fault

    def random_faults(self, seed: int = 0, **probabilities: float) -> None:
        """Seeded random faults on sends, e.g. ``random_faults(7, p_429=0.05, p_500=0.02)``."""
        with self._lock:
            self._random = RandomFaults(seed=seed, **probabilities)
            self._rng = random.Random(seed)

    def enforce_rate_limit(
        self,
        per_second: float | None,
        per_target_per_second: float | None = None,
        retry_after: float = 1.0,
        *,
        mode: str = "bucket",
        tolerance: float = 0.1,
    ) -> None:
        """Answer 429 (with ``retry_after``) to sends over ``per_second`` overall or over
        ``per_target_per_second`` to one target. ``None`` switches a limit off.

        ``mode="bucket"`` (default): GCRA, i.e. a token bucket refilling at the rate and holding
        ``rate * tolerance`` extra: catches bursts and a long-run excess, forgives ``tolerance``
        seconds of arrival jitter. ``mode="window"``: strict count of accepted sends in any sliding
        one-second window, which also fails an evenly paced client at exactly the rate whenever
        scheduling jitter bunches two arrivals.
        """
        if mode not in ("bucket", "window"):
            raise ValueError("mode is 'bucket' or 'window'")
        with self._lock:
            if per_second is None and per_target_per_second is None:
                self._limits = None
            elif mode == "window":
                self._limits = _SlidingWindow(per_second, per_target_per_second)
            else:
                self._limits = _BucketLimit(per_second, per_target_per_second, tolerance)
            self._limit_retry_after = retry_after

    def clear_faults(self) -> None:
        with self._lock:
            self._queued.clear()
            self._target_faults.clear()
            self._random = None
            self._limits = None

    def pending_faults(self) -> int:
        """How many one-shot faults are still queued."""
        with self._lock:
            return len(self._queued)

    def _choose_fault(
        self, op: str, target: str | None, now: float, applies: Callable[[Fault], bool] = lambda fault: True
    ) -> Fault | None:
        """The fault this request meets, if any; ``applies`` lets a request skip (not use up) a
        fault that cannot concern it, such as 63016 for a template."""
        is_send = op in self.send_operations
        with self._lock:
            for index, (wanted, fault) in enumerate(self._queued):
                if wanted == op and applies(fault):
                    del self._queued[index]
                    return fault
            if not is_send:
                return None
            if target is not None and target in self._target_faults and applies(self._target_faults[target]):
                return self._target_faults[target]
            if self._random is not None:
                fault = self._draw_random(self._random)
                if fault is not None:
                    return fault
            if self._limits is not None and not self._limits.admit(target or "", now):
                self.counts["rate_limited"] += 1
                return self._rate_limit_fault(self._limit_retry_after)
        return None

    def _draw_random(self, spec: RandomFaults) -> Fault | None:
        roll = self._rng.random()
        for probability, fault in (
            (spec.p_429, self._rate_limit_fault(spec.retry_after)),
            (spec.p_500, self._server_error_fault(500)),
            (spec.p_drop, Fault(drop=True)),
            (spec.p_delay, Fault(delay=spec.delay)),
        ):
            if roll < probability:
                return fault
            roll -= probability
        return None

    # subclasses say what their errors look like
    def _rate_limit_fault(self, retry_after: float) -> Fault:
        raise NotImplementedError

    def _server_error_fault(self, status: int) -> Fault:
        raise NotImplementedError

    # ---- counters ---------------------------------------------------------------------------

    @property
    def http_429(self) -> int:
        return self.counts["http_429"]

    @property
    def http_5xx(self) -> int:
        return sum(n for key, n in self.counts.items() if key.startswith("http_5"))

    @property
    def requests(self) -> int:
        return self.counts["requests"]

    # ---- HTTP plumbing ----------------------------------------------------------------------

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        with self._lock:
            self.counts["connections"] += 1
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                request, keep_alive = await self._read_request(reader)
                if request is None:
                    break
                response = await self._answer(request)
                if response is None:  # a dropped connection
                    break
                writer.write(response.encode(keep_alive))
                await writer.drain()
                if not keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read_request(self, reader: asyncio.StreamReader) -> tuple[_Request | None, bool]:
        line = await reader.readline()
        while line in (b"\r\n", b"\n"):
            line = await reader.readline()
        if not line:
            return None, False
        method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        headers: dict[str, str] = {}
        while True:
            raw = await reader.readline()
            if raw in (b"\r\n", b"\n", b""):
                break
            name, _, value = raw.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._read_chunked(reader)
        else:
            length = int(headers.get("content-length") or 0)
            body = await reader.readexactly(length) if length else b""
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        parsed = urllib.parse.urlsplit(target)
        request = _Request(
            method=method.upper(),
            path=urllib.parse.unquote(parsed.path),
            query=dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)),
            headers=headers,
            body=body,
            arrived=time.monotonic(),
            received=time.time(),
        )
        return request, keep_alive

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        chunks = []
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readline()

    async def _answer(self, request: _Request) -> _Response | None:
        if request.path.startswith(CONTROL_PREFIX):
            return self._control(request)
        with self._lock:
            self.counts["requests"] += 1
        try:
            response = await self._handle(request)
        except Exception as exc:  # a bug in the fake: answer 500 and keep it for the test to see
            log.exception("fake server failed on %s %s", request.method, request.path)
            with self._lock:
                self.errors.append(f"{request.method} {request.path}: {exc!r}")
            response = _Response(500, {"ok": False, "error_code": 500, "description": repr(exc)})
        with self._lock:
            self.counts["dropped" if response is None else f"http_{response.status}"] += 1
        return response

    async def _handle(self, request: _Request) -> _Response | None:
        raise NotImplementedError

    def _sent_records(self) -> list[Any]:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def _control(self, request: _Request) -> _Response:
        """The control API of a fake in another process (see ``FakeProcess``); not counted."""
        action = request.path[len(CONTROL_PREFIX) :]
        body = json.loads(request.body) if request.body else {}
        if action == "stats":
            with self._lock:
                stats = {
                    "counts": dict(self.counts),
                    "sent": len(self._sent_records()),
                    "errors": list(self.errors),
                    "pending_faults": len(self._queued),
                }
            return _Response(200, stats)
        if action == "sent":
            return _Response(200, [asdict(record) for record in self._sent_records()])
        if action == "inject":
            self.inject(Fault(**body["fault"]), int(body.get("times", 1)), body.get("method"))
        elif action == "target":
            self.set_target_fault(body["target"], Fault(**body["fault"]) if body.get("fault") else None)
        elif action == "rate_limit":
            self.enforce_rate_limit(
                body.get("per_second"),
                body.get("per_target_per_second"),
                float(body.get("retry_after", 1.0)),
                mode=body.get("mode", "bucket"),
                tolerance=float(body.get("tolerance", 0.1)),
            )
        elif action == "random":
            self.random_faults(**body)
        elif action == "latency":
            self.latency = float(body["seconds"])
        elif action == "reset":
            self.reset()
        else:
            return _Response(404, {"error": f"unknown control action {action!r}"})
        return _Response(200, {"ok": True})

    async def _pause(self, fault: Fault | None) -> None:
        delay = self.latency + (fault.delay if fault else 0.0)
        if delay > 0:
            await asyncio.sleep(delay)


# --------------------------------------------------------------------------------------------
# Telegram
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TelegramSend:
    """One sendMessage the fake accepted."""

    chat_id: int | str
    text: str
    reply_markup: dict[str, Any] | None
    message_id: int
    params: dict[str, Any]
    at: float

    @property
    def button_data(self) -> list[str]:
        """The callback_data of every inline button, row by row."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [button.get("callback_data", "") for row in rows for button in row]


def _telegram_user(
    user_id: int, first_name: str, username: str | None = None, is_bot: bool = False
) -> dict[str, Any]:
    user: dict[str, Any] = {"id": user_id, "is_bot": is_bot, "first_name": first_name}
    if username:
        user["username"] = username
    return user


def _telegram_chat(chat_id: int | str, first_name: str = "Test") -> dict[str, Any]:
    if isinstance(chat_id, str):  # "@channelusername"
        return {
            "id": -1001000000000 - abs(hash(chat_id)) % 10**9,
            "type": "channel",
            "title": chat_id,
            "username": chat_id.lstrip("@"),
        }
    if chat_id < 0:
        return {"id": chat_id, "type": "supergroup" if chat_id < -(10**12) else "group", "title": "Group"}
    return {"id": chat_id, "type": "private", "first_name": first_name}


def telegram_message_update(
    update_id: int,
    chat_id: int,
    text: str,
    *,
    user_id: int | None = None,
    first_name: str = "Test",
    username: str | None = None,
    message_id: int = 1,
    date: int | None = None,
) -> dict[str, Any]:
    """A Bot API ``Update`` carrying a text message, as Telegram would post or serve it."""
    sender = user_id if user_id is not None else (chat_id if chat_id > 0 else 1000)
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "date": int(date if date is not None else time.time()),
            "chat": _telegram_chat(chat_id, first_name),
            "from": _telegram_user(sender, first_name, username),
            "text": text,
        },
    }


def telegram_callback_update(
    update_id: int,
    chat_id: int,
    data: str,
    *,
    user_id: int | None = None,
    message_id: int = 1,
    bot_id: int = 123,
    query_id: str | None = None,
    first_name: str = "Test",
) -> dict[str, Any]:
    """A Bot API ``Update`` carrying an inline-button press (``callback_query``)."""
    sender = user_id if user_id is not None else (chat_id if chat_id > 0 else 1000)
    return {
        "update_id": update_id,
        "callback_query": {
            "id": query_id or uuid.uuid4().hex[:16],
            "from": _telegram_user(sender, first_name),
            "chat_instance": str(chat_id),
            "data": data,
            "message": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": _telegram_chat(chat_id, first_name),
                "from": _telegram_user(bot_id, "CargoBot", "cargobot_test_bot", is_bot=True),
                "text": "(earlier message)",
            },
        },
    }


def _as_chat_id(value: Any) -> int | str:
    text = str(value)
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def _json_param(value: Any) -> Any:
    """PTB sends non-string parameters JSON-encoded inside the form."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        return json.loads(value)
    return value


class FakeTelegram(_FakeHTTPServer):
    """A fake Bot API: ``Bot(token, base_url=fake.base_url)`` talks to it.

    ``token``: when given, requests with another token answer 401 (as Telegram does).
    ``poll_cap``: longest a getUpdates long poll is held, whatever ``timeout`` the client asked for.
    """

    send_operations = frozenset({"sendmessage"})
    default_operation = "sendmessage"

    def __init__(
        self,
        *,
        token: str | None = None,
        latency: float = 0.0,
        poll_cap: float = 1.0,
        bot_id: int = 123,
        bot_username: str = "cargobot_test_bot",
        **kwargs: Any,
    ) -> None:
        super().__init__(latency=latency, **kwargs)
        self.token = token
        self.poll_cap = poll_cap
        self.bot_id = bot_id
        self.bot_username = bot_username
        self._sent: list[TelegramSend] = []
        self._calls: list[tuple[str, dict[str, Any]]] = []
        self._message_ids = itertools.count(1)
        self._update_ids = itertools.count(1)
        self._updates: list[dict[str, Any]] = []
        self._updates_changed: asyncio.Event | None = None
        self.webhook: dict[str, Any] | None = None
        self.commands: list[dict[str, str]] = []
        self.callback_answers: list[dict[str, Any]] = []

    @property
    def base_url(self) -> str:
        """The value for TELEGRAM_API_BASE_URL: PTB appends the token and the method."""
        return f"{self.url}/bot"

    @property
    def sent(self) -> list[TelegramSend]:
        """Accepted sendMessage calls, oldest first (a copy)."""
        with self._lock:
            return list(self._sent)

    def _sent_records(self) -> list[Any]:
        return self.sent

    @property
    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        """Every request as (method, params), including failed ones (a copy)."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name.lower() == method.lower()]

    def reset(self) -> None:
        """Forget what was recorded and every fault; keep updates and the webhook."""
        self.clear_faults()
        with self._lock:
            self._sent.clear()
            self._calls.clear()
            self.counts.clear()
            self.errors.clear()

    # ---- fault helpers ----------------------------------------------------------------------

    def _rate_limit_fault(self, retry_after: float) -> Fault:
        shown = int(retry_after) if float(retry_after).is_integer() else retry_after
        return Fault(
            status=429, retry_after=retry_after, description=f"Too Many Requests: retry after {shown}"
        )

    def _server_error_fault(self, status: int) -> Fault:
        return Fault(status=status, description="Internal Server Error")

    def next_429(self, times: int = 1, retry_after: float = 1, method: str | None = None) -> None:
        self.inject(self._rate_limit_fault(retry_after), times, method)

    def next_500(self, times: int = 1, status: int = 500, method: str | None = None) -> None:
        self.inject(self._server_error_fault(status), times, method)

    def next_delay(self, times: int = 1, seconds: float = 1.0, method: str | None = None) -> None:
        self.inject(Fault(delay=seconds), times, method)

    def next_drop(self, times: int = 1, method: str | None = None) -> None:
        self.inject(Fault(drop=True), times, method)

    BLOCKED = Fault(status=403, description="Forbidden: bot was blocked by the user")
    CHAT_NOT_FOUND = Fault(status=400, description="Bad Request: chat not found")

    def next_blocked(self, times: int = 1) -> None:
        self.inject(self.BLOCKED, times)

    def next_chat_not_found(self, times: int = 1) -> None:
        self.inject(self.CHAT_NOT_FOUND, times)

    def next_bad_request(self, description: str, times: int = 1, method: str | None = None) -> None:
        self.inject(Fault(status=400, description=f"Bad Request: {description}"), times, method)

    def block_chat(self, chat_id: int | str) -> None:
        """From now on every send to ``chat_id`` answers 403 "bot was blocked by the user"."""
        self.set_target_fault(chat_id, self.BLOCKED)

    def forget_chat(self, chat_id: int | str) -> None:
        """From now on every send to ``chat_id`` answers 400 "chat not found"."""
        self.set_target_fault(chat_id, self.CHAT_NOT_FOUND)

    def enforce_rate_limit(
        self,
        per_second: float | None,
        per_chat_per_second: float | None = None,
        retry_after: float = 1.0,
        *,
        mode: str = "bucket",
        tolerance: float = 0.1,
    ) -> None:
        """Telegram-style flood control on sendMessage, overall and per chat (see the base class)."""
        super().enforce_rate_limit(
            per_second, per_chat_per_second, retry_after, mode=mode, tolerance=tolerance
        )

    # ---- updates ----------------------------------------------------------------------------

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue an update for getUpdates (an ``update_id`` is assigned if missing); returns its id."""
        with self._lock:
            if "update_id" not in update:
                update = {"update_id": next(self._update_ids), **update}
            self._updates.append(update)
        self._wake_pollers()
        return int(update["update_id"])

    def push_message(self, chat_id: int, text: str, **kwargs: Any) -> int:
        with self._lock:
            update_id = next(self._update_ids)
        message_id = 10_000 + update_id
        return self.push_update(
            telegram_message_update(update_id, chat_id, text, message_id=message_id, **kwargs)
        )

    def push_callback_query(self, chat_id: int, data: str, **kwargs: Any) -> int:
        with self._lock:
            update_id = next(self._update_ids)
        return self.push_update(
            telegram_callback_update(update_id, chat_id, data, bot_id=self.bot_id, **kwargs)
        )

    def pending_updates(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._updates)

    def _wake_pollers(self) -> None:
        loop, event = self._loop, self._updates_changed
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(event.set)

    async def _on_startup(self) -> None:
        self._updates_changed = asyncio.Event()

    # ---- the Bot API --------------------------------------------------------------------------

    def _ok(self, result: Any) -> _Response:
        return _Response(200, {"ok": True, "result": result})

    @staticmethod
    def _error(status: int, description: str, retry_after: float | None = None) -> _Response:
        payload: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            payload["parameters"] = {"retry_after": retry_after}
        return _Response(status, payload)

    def _bot_user(self) -> dict[str, Any]:
        user = _telegram_user(self.bot_id, "CargoBot", self.bot_username, is_bot=True)
        user.update(can_join_groups=True, can_read_all_group_messages=False, supports_inline_queries=False)
        return user

    def _message(self, chat_id: int | str, text: str, reply_markup: Any, message_id: int) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": _telegram_chat(chat_id),
            "from": _telegram_user(self.bot_id, "CargoBot", self.bot_username, is_bot=True),
            "text": text,
        }
        if reply_markup:
            message["reply_markup"] = reply_markup
        return message

    async def _handle(self, request: _Request) -> _Response | None:
        parts = request.path.split("/", 2)
        if len(parts) < 3 or not parts[1].startswith("bot"):
            return self._error(404, "Not Found")
        token, method = parts[1][3:], parts[2]
        params = {k: _json_param(v) for k, v in request.form().items()}
        with self._lock:
            self._calls.append((method, params))
        if self.token is not None and token != self.token:
            return self._error(401, "Unauthorized")
        op = method.lower()
        target = str(_as_chat_id(params["chat_id"])) if "chat_id" in params else None
        fault = self._choose_fault(op, target, request.arrived)
        if fault is None or (fault.status is None and not fault.drop):
            result = self._perform(op, params, request.received)  # recorded on arrival, answered late
            await self._pause(fault)
            return result if result is not None else await self._handle_slow(op, params)
        await self._pause(fault)
        if fault.drop:
            return None
        assert fault.status is not None
        return self._error(
            fault.status, fault.description or HTTPStatus(fault.status).phrase, fault.retry_after
        )

    def _perform(self, op: str, params: dict[str, Any], received: float) -> _Response | None:
        """Answer the quick methods; None for the ones that wait (getUpdates)."""
        if op == "getme":
            return self._ok(self._bot_user())
        if op == "sendmessage":
            if "chat_id" not in params or not str(params.get("text", "")).strip():
                return self._error(400, "Bad Request: message text is empty")
            text = str(params["text"])
            if len(text.encode("utf-16-le")) // 2 > 4096:
                return self._error(400, "Bad Request: message is too long")
            chat_id = _as_chat_id(params["chat_id"])
            markup = params.get("reply_markup")
            with self._lock:
                message_id = next(self._message_ids)
                self._sent.append(TelegramSend(chat_id, text, markup, message_id, params, received))
            return self._ok(self._message(chat_id, text, markup, message_id))
        if op in ("editmessagetext", "editmessagereplymarkup"):
            chat_id = _as_chat_id(params.get("chat_id", 0))
            return self._ok(
                self._message(
                    chat_id,
                    str(params.get("text", "")),
                    params.get("reply_markup"),
                    int(params.get("message_id", 0)),
                )
            )
        if op == "setwebhook":
            with self._lock:
                self.webhook = {
                    "url": params.get("url", ""),
                    "secret_token": params.get("secret_token"),
                    "allowed_updates": params.get("allowed_updates"),
                    "drop_pending_updates": params.get("drop_pending_updates"),
                }
            return self._ok(True)
        if op == "deletewebhook":
            with self._lock:
                self.webhook = None
                if str(params.get("drop_pending_updates", "")).lower() == "true":
                    self._updates.clear()
            return self._ok(True)
        if op == "getwebhookinfo":
            with self._lock:
                info = {
                    "url": (self.webhook or {}).get("url", ""),
                    "has_custom_certificate": False,
                    "pending_update_count": len(self._updates),
                }
            return self._ok(info)
        if op == "setmycommands":
            with self._lock:
                self.commands = list(params.get("commands") or [])
            return self._ok(True)
        if op == "getmycommands":
            with self._lock:
                return self._ok(list(self.commands))
        if op == "deletemycommands":
            with self._lock:
                self.commands = []
            return self._ok(True)
        if op == "answercallbackquery":
            with self._lock:
                self.callback_answers.append(params)
            return self._ok(True)
        if op in ("sendchataction", "deletemessage"):
            return self._ok(True)
        if op == "getupdates":
            return None
        return self._error(404, "Not Found")

    async def _handle_slow(self, op: str, params: dict[str, Any]) -> _Response:
        assert op == "getupdates"
        with self._lock:
            if self.webhook is not None:
                return self._error(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        wait = min(float(params.get("timeout") or 0), self.poll_cap)
        deadline = time.monotonic() + wait
        assert self._updates_changed is not None
        while True:
            with self._lock:
                if offset:  # confirms every update before offset
                    self._updates = [u for u in self._updates if u["update_id"] >= offset]
                ready = [u for u in self._updates if u["update_id"] >= offset][:limit]
            remaining = deadline - time.monotonic()
            if ready or remaining <= 0:
                return self._ok(ready)
            self._updates_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._updates_changed.wait(), remaining)


# --------------------------------------------------------------------------------------------
# Twilio
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TwilioSend:
    """One Messages.json create the fake accepted."""

    sid: str
    account_sid: str  # from the basic-auth user name
    path_account_sid: str
    to: str
    from_: str
    body: str | None
    content_sid: str | None
    content_variables: dict[str, str] | None
    status_callback: str | None
    params: dict[str, str]
    at: float


_WHATSAPP_ADDRESS = re.compile(r"^whatsapp:\+[1-9]\d{6,14}$")
_MESSAGES = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages(?:/(?P<sid>[^/]+))?\.json$")


def twilio_signature(url: str, params: dict[str, str], auth_token: str) -> str:
    """``X-Twilio-Signature`` for a form POST to ``url``, as Twilio computes it."""
    from twilio.request_validator import RequestValidator

    return RequestValidator(auth_token).compute_signature(url, params)


class FakeTwilio(_FakeHTTPServer):
    """A fake Twilio REST API for ``Messages.json``: point TWILIO_API_BASE_URL at ``fake.base_url``.

    ``account_sid`` / ``auth_token``: when given, other credentials answer 401 (code 20003).
    """

    send_operations = frozenset({"messages"})
    default_operation = "messages"

    def __init__(
        self,
        *,
        account_sid: str | None = None,
        auth_token: str | None = None,
        latency: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(latency=latency, **kwargs)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self._sent: list[TwilioSend] = []
        self._attempts: list[dict[str, str]] = []

    @property
    def base_url(self) -> str:
        """The value for TWILIO_API_BASE_URL."""
        return self.url

    @property
    def sent(self) -> list[TwilioSend]:
        """Accepted message creates, oldest first (a copy)."""
        with self._lock:
            return list(self._sent)

    def _sent_records(self) -> list[Any]:
        return self.sent

    @property
    def attempts(self) -> list[dict[str, str]]:
        """The form of every create request, including refused ones."""
        with self._lock:
            return list(self._attempts)

    def reset(self) -> None:
        self.clear_faults()
        with self._lock:
            self._sent.clear()
            self._attempts.clear()
            self.counts.clear()
            self.errors.clear()

    # ---- fault helpers ----------------------------------------------------------------------

    @staticmethod
    def error_fault(
        status: int, code: int, message: str, delay: float = 0.0, retry_after: float | None = None
    ) -> Fault:
        return Fault(status=status, code=code, description=message, delay=delay, retry_after=retry_after)

    def _rate_limit_fault(self, retry_after: float | None) -> Fault:
        return self.error_fault(429, 20429, "Too Many Requests", retry_after=retry_after)

    def _server_error_fault(self, status: int) -> Fault:
        return self.error_fault(status, 20500, "Internal Server Error")

    def next_429(self, times: int = 1, retry_after: float | None = None) -> None:
        """429 / 20429; with ``retry_after`` the answer carries a Retry-After header."""
        self.inject(self._rate_limit_fault(retry_after), times)

    def next_500(self, times: int = 1, status: int = 500) -> None:
        self.inject(self._server_error_fault(status), times)

    def next_delay(self, times: int = 1, seconds: float = 1.0) -> None:
        self.inject(Fault(delay=seconds), times)

    def next_drop(self, times: int = 1) -> None:
        self.inject(Fault(drop=True), times)

    def next_invalid_number(self, times: int = 1) -> None:
        self.inject(self.error_fault(400, 21211, "Invalid 'To' Phone Number"), times)

    def next_outside_window(self, times: int = 1) -> None:
        self.inject(self._outside_window_fault(), times)

    def next_error(self, status: int, code: int, message: str, times: int = 1) -> None:
        self.inject(self.error_fault(status, code, message), times)

    @classmethod
    def _outside_window_fault(cls) -> Fault:
        return cls.error_fault(
            400,
            63016,
            "Failed to send freeform message because you are outside the allowed window. "
            "If you are using WhatsApp, please use a Message Template.",
        )

    def close_window(self, to: str) -> None:
        """Free text to ``to`` answers 63016 from now on (templates still go through)."""
        self.set_target_fault(to, self._outside_window_fault())

    def invalidate_number(self, to: str) -> None:
        self.set_target_fault(to, self.error_fault(400, 21211, "Invalid 'To' Phone Number"))

    # ---- the REST API -----------------------------------------------------------------------

    @staticmethod
    def _error(status: int, code: int, message: str, retry_after: float | None = None) -> _Response:
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        return _Response(
            status,
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
            headers,
        )

    def _basic_auth(self, request: _Request) -> tuple[str, str] | None:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except ValueError:
            return None
        return user, password

    async def _handle(self, request: _Request) -> _Response | None:
        match = _MESSAGES.match(request.path)
        if match is None:
            return self._error(404, 20404, "The requested resource was not found")
        credentials = self._basic_auth(request)
        if (
            credentials is None
            or (self.account_sid is not None and credentials[0] != self.account_sid)
            or (self.auth_token is not None and credentials[1] != self.auth_token)
        ):
            return self._error(401, 20003, "Authenticate")
        if request.method == "GET" and match["sid"]:
            with self._lock:
                found = next((s for s in self._sent if s.sid == match["sid"]), None)
            if found is None:
                return self._error(404, 20404, f"The requested resource {request.path} was not found")
            return _Response(200, self._resource(found))
        if request.method != "POST" or match["sid"]:
            return self._error(405, 20004, "Method not allowed")
        form = {k: str(v) for k, v in request.form().items()}
        with self._lock:
            self._attempts.append(form)
        to = form.get("To", "")
        # Twilio checks the request before any delivery question
        if not to:
            return self._error(400, 21604, "A 'To' phone number is required.")
        if not form.get("Body") and not form.get("ContentSid"):
            return self._error(400, 21602, "Message body is required.")
        if len(form.get("Body", "")) > 1600:
            return self._error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if not _WHATSAPP_ADDRESS.match(to):
            return self._error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        template = bool(form.get("ContentSid"))
        # the 24-hour window only restricts free text: templates pass a 63016 fault by
        fault = self._choose_fault(
            "messages", to, request.arrived, applies=lambda f: not (template and f.code == 63016)
        )
        record = None
        if fault is None or (fault.status is None and not fault.drop):
            record = self._accept(credentials[0], match["account"], form, request.received)
        await self._pause(fault)
        if fault is not None and fault.drop:
            return None
        if fault is not None and fault.status is not None:
            return self._error(
                fault.status,
                fault.code or fault.status,
                fault.description or HTTPStatus(fault.status).phrase,
                fault.retry_after,
            )
        assert record is not None
        return _Response(201, self._resource(record))

    def _accept(self, user: str, account: str, form: dict[str, str], received: float) -> TwilioSend:
        variables = form.get("ContentVariables")
        record = TwilioSend(
            sid="SM" + uuid.uuid4().hex,
            account_sid=user,
            path_account_sid=account,
            to=form["To"],
            from_=form.get("From", ""),
            body=form.get("Body"),
            content_sid=form.get("ContentSid"),
            content_variables=json.loads(variables) if variables else None,
            status_callback=form.get("StatusCallback"),
            params=form,
            at=received,
        )
        with self._lock:
            self._sent.append(record)
        return record

    @staticmethod
    def _resource(record: TwilioSend) -> dict[str, Any]:
        now = formatdate(record.at, usegmt=True)
        body = record.body if record.body is not None else f"(template {record.content_sid})"
        return {
            "sid": record.sid,
            "account_sid": record.path_account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": record.from_,
            "to": record.to,
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": str(max(1, -(-len(body) // 160))),
            "price": None,
            "price_unit": "USD",
            "status": "queued",
            "subresource_uris": {
                "media": f"/2010-04-01/Accounts/{record.path_account_sid}/Messages/{record.sid}/Media.json"
            },
            "uri": f"/2010-04-01/Accounts/{record.path_account_sid}/Messages/{record.sid}.json",
        }

    # ---- status callbacks ---------------------------------------------------------------------

    def send_status_callback(
        self,
        sid: str,
        status: str = "delivered",
        *,
        auth_token: str | None = None,
        error_code: int | None = None,
        timeout: float = 5.0,
    ) -> int:
        """POST a signed status callback for message ``sid`` to the StatusCallback URL it was sent
        with, as Twilio does; returns the HTTP status the receiver answered."""
        with self._lock:
            record = next(s for s in self._sent if s.sid == sid)
        if not record.status_callback:
            raise ValueError(f"message {sid} was sent without a StatusCallback")
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": record.path_account_sid,
            "From": record.from_,
            "To": record.to,
            "MessageStatus": status,
            "SmsStatus": status,
            "ApiVersion": "2010-04-01",
            "ChannelPrefix": "whatsapp",
        }
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        token = auth_token or self.auth_token or ""
        request = urllib.request.Request(
            record.status_callback,
            data=urllib.parse.urlencode(params).encode(),
            headers={
                "X-Twilio-Signature": twilio_signature(record.status_callback, params, token),
                "Content-Type": "application/x-www-form-urlencoded",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (local URL)
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01) -> bool:
    """Poll ``predicate`` until true or ``timeout``; for e2e scripts watching a fake from outside."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# --------------------------------------------------------------------------------------------
# a fake in its own process
# --------------------------------------------------------------------------------------------


class FakeProcess:
    """A fake served by another Python process, driven through its control API.

    For throughput runs: a fake on a thread of the client's own process shares its GIL, so every
    stall of the client delays the fake's clock and bunches arrivals (measured: a few 429s per
    3,000 sends at 300/s, none with the fake in its own process). ``kind`` is "telegram" or
    "twilio"; options as for the fake's constructor (``latency``, ``token``, ``account_sid`` ...).
    """

    def __init__(self, kind: str, **options: Any) -> None:
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {sorted(_KINDS)}")
        self.kind = kind
        self.options = options
        self._process: subprocess.Popen[str] | None = None
        self.base_url = ""
        self.url = ""

    def start(self) -> Self:
        command = [sys.executable, "-m", "tests.fakes", self.kind, "--options", json.dumps(self.options)]
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=root
        )
        assert self._process.stdout is not None
        first = self._process.stdout.readline().split()
        if len(first) != 2:
            self.stop()
            raise RuntimeError(f"fake {self.kind} did not start")
        self.url, self.base_url = first
        return self

    def stop(self) -> None:
        if self._process is None:
            return
        process, self._process = self._process, None
        with contextlib.suppress(OSError):
            assert process.stdin is not None
            process.stdin.close()  # the fake exits when its stdin closes
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _call(self, action: str, payload: dict[str, Any] | None = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(
            f"{self.url}{CONTROL_PREFIX}{action}",
            data=data,
            method="POST" if data is not None else "GET",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (127.0.0.1)
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        """``{"counts": {"http_429": …}, "sent": n, "errors": [...], "pending_faults": n}``."""
        return dict(self._call("stats"))

    def sent(self) -> list[dict[str, Any]]:
        return list(self._call("sent"))

    def inject(self, fault: Fault, times: int = 1, method: str | None = None) -> None:
        self._call("inject", {"fault": asdict(fault), "times": times, "method": method})

    def set_target_fault(self, target: str | int, fault: Fault | None) -> None:
        self._call("target", {"target": str(target), "fault": asdict(fault) if fault else None})

    def enforce_rate_limit(
        self,
        per_second: float | None,
        per_target_per_second: float | None = None,
        retry_after: float = 1.0,
        *,
        mode: str = "bucket",
        tolerance: float = 0.1,
    ) -> None:
        self._call(
            "rate_limit",
            {
                "per_second": per_second,
                "per_target_per_second": per_target_per_second,
                "retry_after": retry_after,
                "mode": mode,
                "tolerance": tolerance,
            },
        )

    def random_faults(self, seed: int = 0, **probabilities: float) -> None:
        self._call("random", {"seed": seed, **probabilities})

    def set_latency(self, seconds: float) -> None:
        self._call("latency", {"seconds": seconds})

    def reset(self) -> None:
        self._call("reset", {})


_KINDS: dict[str, type[_FakeHTTPServer]] = {"telegram": FakeTelegram, "twilio": FakeTwilio}


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.fakes telegram|twilio [--options JSON]``: serve until stdin closes.

    Prints ``URL BASE_URL`` on the first line of stdout.
    """
    parser = argparse.ArgumentParser(prog="python -m tests.fakes", description=main.__doc__)
    parser.add_argument("kind", choices=sorted(_KINDS))
    parser.add_argument("--options", default="{}", help="constructor options as JSON")
    args = parser.parse_args(argv)
    with _KINDS[args.kind](**json.loads(args.options)) as fake:
        print(fake.url, fake.base_url, flush=True)  # type: ignore[attr-defined]
        sys.stdin.read()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
