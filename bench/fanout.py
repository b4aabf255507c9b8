"""A release alert to 3,000 Telegram subscribers: our outbox dispatcher against PTB's AIORateLimiter.

Both send the same messages, in this run, to a fresh fake Bot API each (``tests.fakes.FakeProcess``,
its own process, so its clock does not share our GIL) that enforces 300 messages/s overall and 1/s
per chat and answers every send after 50 ms, as a real network would.

* ours: a temporary SQLite database migrated by ``storage.db.init_db``, one outbox row per
  subscriber written by ``repo.enqueue`` (one event, N recipients), then ``Dispatcher`` passes with
  TELEGRAM_MAX_PER_SECOND=300 until every row is settled (``seconds`` runs from the first pass to
  the last commit);
* the peer: python-telegram-bot's ``ExtBot`` with ``AIORateLimiter(overall_max_rate=300,
  overall_time_period=1, max_retries=3)`` and the same connection pool, sending every message
  concurrently (``asyncio.gather`` over chunks of ``--peer-chunk``) until all have returned.

Both use the pool ``cargobot worker`` gives its Telegram channel (one connection per unit of
DISPATCH_CONCURRENCY, 32) and start the clock after ``freeze_startup_heap``, as the worker does.
Both run in this process on a machine that may be busy with other work: compare figures of one run.

``floor_seconds`` = alerts / 300: no client may be faster. Then, from what each fake received:
``duplicates`` (sends beyond the first to a chat), ``lost`` (subscribers who got nothing) and
``http_429`` (the fake's count). The last line printed is a JSON object; goals: ``ratio`` ≤ 1.1 and
≤ ``peer_ratio``, no duplicates, none lost, no more 429s than the peer.

    python bench/fanout.py [--alerts N] [--concurrency N] [--peer-chunk N]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # ``tests.fakes`` is not part of the installed package
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402
from telegram.error import TelegramError  # noqa: E402
from telegram.ext import AIORateLimiter, ExtBot  # noqa: E402
from telegram.request import HTTPXRequest  # noqa: E402

from bot.config import Settings  # noqa: E402
from bot.dispatcher import Dispatcher  # noqa: E402
from bot.telegram_channel import TelegramChannel, opt_into_ptb_timedelta, quiet_http_loggers  # noqa: E402
from bot.worker import freeze_startup_heap  # noqa: E402
from handlers.alerts import outbox_row
from storage import repo  # noqa: E402
from storage.db import dispose, init_db, make_engine, read_session, write_session  # noqa: E402
from storage.models import Outbox  # noqa: E402
from tests.fakes import FakeProcess  # noqa: E402

TOKEN = "424242:bench-token-for-the-fake-bot-api"
FIRST_CHAT = 700_000_000
TEXT = (
    "Released: MSKU9070323 (entry 24MBAIM400448715). KRA issued the Customs Release Message; "
    "the container can leave the port once the shipping line releases it."
)
SETTLED = ("sent", "failed", "skipped", "expired", "held")
DEADLINE_FACTOR = 6  # give up (and report what was missing) after this many floors plus 30 s


def utcnow() -> datetime:
    return datetime.now(UTC)


def start_fake(rate: float, latency: float) -> FakeProcess:
    fake = FakeProcess("telegram", token=TOKEN, latency=latency).start()
    fake.enforce_rate_limit(rate, 1.0, retry_after=1.0)
    return fake


def tally(fake: FakeProcess, chats: list[int]) -> dict[str, int]:
    received = collections.Counter(int(record["chat_id"]) for record in fake.sent())
    stats = fake.stats()
    return {
        "duplicates": sum(n - 1 for n in received.values() if n > 1),
        "lost": sum(1 for chat in chats if received[chat] == 0),
        "http_429": int(stats["counts"].get("http_429", 0)),
        "http_5xx": sum(n for key, n in stats["counts"].items() if key.startswith("http_5")),
        "fake_errors": len(stats["errors"]),
    }


def pool_size(args: argparse.Namespace) -> int:
    """HTTP connections for both senders: as ``cargobot worker`` sizes its pool, unless given."""
    return int(args.pool or max(8, args.concurrency))


# --- ours --------------------------------------------------------------------------------------


def seed_outbox(url: str, chats: list[int]) -> None:
    engine = make_engine(url)
    init_db(engine)
    now = utcnow()
    rows = [
        outbox_row(
            event_key="release:bench:MSKU9070323",
            recipient=f"telegram:{chat}",
            kind="release",
            text=TEXT,
            now=now,
            due_at=now,
            template="release",
            template_vars={"1": "MSKU9070323"},
        )
        for chat in chats
    ]
    with write_session(engine) as session:
        added = repo.enqueue(session=session, rows=rows)
    dispose(engine)
    assert added == len(chats), f"enqueued {added} of {len(chats)}"


def unsettled(engine: Any) -> int:
    with read_session(engine) as session:
        stmt = select(func.count()).select_from(Outbox).where(Outbox.status.not_in(SETTLED))  # type: ignore[attr-defined]
        return int(session.execute(stmt).scalar_one())


async def run_ours(args: argparse.Namespace, chats: list[int], base_url: str, url: str) -> dict[str, Any]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        telegram_bot_token=TOKEN,
        telegram_api_base_url=base_url,
        telegram_max_per_second=args.rate,
        dispatch_concurrency=args.concurrency,
        claim_lease_seconds=60,
        alert_grace_seconds=0,
    )
    engine = make_engine(url)
    channel = TelegramChannel(settings, connection_pool_size=pool_size(args))
    await channel.initialize()  # getMe and the pool, before the clock starts
    dispatcher = Dispatcher(engine=engine, settings=settings, channels={"telegram": channel}, clock=utcnow)
    freeze_startup_heap()  # as ``cargobot worker`` does once started
    passes = 0
    deadline = time.monotonic() + DEADLINE_FACTOR * len(chats) / args.rate + 30
    try:
        started = time.perf_counter()
        while True:
            await dispatcher.dispatch_pass()
            passes += 1
            left = await asyncio.to_thread(unsettled, engine)
            if not left or time.monotonic() > deadline:
                break
            await asyncio.sleep(args.interval)  # as the worker's schedule would: rows await their retry
        seconds = time.perf_counter() - started
    finally:
        await channel.shutdown()
        dispose(engine)
    return {"seconds": seconds, "passes": passes, "unsettled": left}


# --- the peer ----------------------------------------------------------------------------------


async def run_peer(args: argparse.Namespace, chats: list[int], base_url: str) -> dict[str, Any]:
    limiter = AIORateLimiter(overall_max_rate=args.rate, overall_time_period=1, max_retries=3)
    request = HTTPXRequest(connection_pool_size=pool_size(args), pool_timeout=60.0)
    bot = ExtBot(TOKEN, base_url=base_url, rate_limiter=limiter, request=request)
    errors: collections.Counter[str] = collections.Counter()
    await bot.initialize()
    freeze_startup_heap()  # the same footing as ours
    try:
        started = time.perf_counter()
        for first in range(0, len(chats), args.peer_chunk):
            chunk = chats[first : first + args.peer_chunk]
            results = await asyncio.gather(
                *(bot.send_message(chat, TEXT) for chat in chunk), return_exceptions=True
            )
            for result in results:
                if isinstance(result, TelegramError):
                    errors[type(result).__name__] += 1
                elif isinstance(result, BaseException):
                    raise result
        seconds = time.perf_counter() - started
    finally:
        await bot.shutdown()
    return {"seconds": seconds, "errors": dict(errors)}


# --- the run -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--alerts", type=int, default=3000, help="subscribers to alert (default 3000)")
    parser.add_argument("--rate", type=float, default=300.0, help="the fake's overall limit per second")
    parser.add_argument("--latency", type=float, default=0.05, help="the fake's answer time in seconds")
    parser.add_argument("--concurrency", type=int, default=32, help="our DISPATCH_CONCURRENCY (default 32)")
    parser.add_argument(
        "--pool",
        type=int,
        default=0,
        help="HTTP connections, ours and the peer's (default: as the worker, the concurrency)",
    )
    parser.add_argument(
        "--peer-chunk", type=int, default=1000, help="messages the peer gathers at once (default 1000)"
    )
    parser.add_argument(
        "--interval", type=float, default=0.25, help="pause between our passes while rows wait for a retry"
    )
    parser.add_argument("--skip-peer", action="store_true", help="measure only our dispatcher")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    quiet_http_loggers()
    opt_into_ptb_timedelta()
    chats = [FIRST_CHAT + n for n in range(args.alerts)]
    floor = args.alerts / args.rate
    print(
        f"fan-out: {args.alerts} Telegram alerts, fake Bot API at {args.rate:g}/s overall and 1/s per "
        f"chat, {args.latency * 1000:.0f} ms per answer; floor {floor:.2f} s"
    )

    with tempfile.TemporaryDirectory(prefix="cargobot-fanout-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'fanout.db'}"
        seed_outbox(url, chats)
        with start_fake(args.rate, args.latency) as fake:
            ours = asyncio.run(run_ours(args, chats, fake.base_url, url))
            ours.update(tally(fake, chats))
    ratio = ours["seconds"] / floor
    print(
        f"ours: {ours['seconds']:.2f} s (ratio {ratio:.3f}) in {ours['passes']} pass(es); "
        f"duplicates {ours['duplicates']}, lost {ours['lost']}, 429s {ours['http_429']}, "
        f"5xx {ours['http_5xx']}, rows unsettled {ours['unsettled']}"
    )

    peer: dict[str, Any] = {"seconds": None, "duplicates": None, "lost": None, "http_429": None}
    if not args.skip_peer:
        with start_fake(args.rate, args.latency) as fake:
            peer = asyncio.run(run_peer(args, chats, fake.base_url))
            peer.update(tally(fake, chats))
        print(
            f"peer (PTB AIORateLimiter): {peer['seconds']:.2f} s (ratio {peer['seconds'] / floor:.3f}); "
            f"duplicates {peer['duplicates']}, lost {peer['lost']}, 429s {peer['http_429']}, "
            f"errors {peer['errors'] or 'none'}"
        )

    peer_ratio = peer["seconds"] / floor if peer["seconds"] is not None else None
    result = {
        "alerts": args.alerts,
        "seconds": round(ours["seconds"], 3),
        "floor_seconds": round(floor, 3),
        "ratio": round(ratio, 4),
        "duplicates": ours["duplicates"],
        "lost": ours["lost"],
        "http_429": ours["http_429"],
        "concurrency": args.concurrency,
        "pool": pool_size(args),
        "peer_seconds": round(peer["seconds"], 3) if peer["seconds"] is not None else None,
        "peer_ratio": round(peer_ratio, 4) if peer_ratio is not None else None,
        "peer_http_429": peer["http_429"],
        "peer_duplicates": peer["duplicates"],
        "peer_lost": peer["lost"],
    }
    if peer_ratio is not None:
        met = (
            ratio <= 1.1
            and ratio <= peer_ratio
            and ours["duplicates"] == 0
            and ours["lost"] == 0
            and ours["http_429"] <= peer["http_429"]
        )
        result["goals_met"] = met
        print(
            f"goals (ratio ≤ 1.1 and ≤ the peer's, no duplicates, none lost, 429s ≤ the peer's): "
            f"{'met' if met else 'NOT met'}"
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
