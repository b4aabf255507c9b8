"""Outbound rate limits for the dispatcher: per channel overall, and per chat.

One ``ChannelRateLimiter`` per channel is shared by every sending task in a process;
``RateLimits`` holds them by channel name and routes by address (``telegram:…``, ``whatsapp:…``).

How the pacing works
--------------------
The channel limit is GCRA, the "theoretical arrival time" form of a token bucket: sends go
``interval`` apart, and up to ``burst`` may go at once from idle, so a burst starts at once (the
bucket starts full) and then runs evenly. Waiters queue FIFO and one pump task releases them,
judging by the clock at the moment of release, so a stalled event loop never releases a bunch of
overdue sends together.

Even pacing matters: providers count their limit over one-second windows, and a client that sends
its quota in a burst at the start of each of *its* seconds can put two quotas into one of *theirs*.
``headroom`` (default 3%) slows the steady rate a little below the configured one and widens the
per-chat gap by the same fraction, so jitter between our clock and the provider's cannot push a
window over: at 300/s the worst one-second window holds 292 to 295 sends (291 paced, the first,
and the timer slack). 3,000 sends at 300/s take about 10.3 s (≤ 1.1 × 3000/300).

Same-chat sends queue behind one another (an asyncio.Lock per chat, FIFO) and each waits for the
chat gap before taking a channel slot, so a busy chat never holds up the others.

``penalize(seconds)`` answers a 429: it pauses the whole channel (waiters stay queued and go, in
order, after the pause); with ``address=`` it holds back that chat alone.

Times come from the running event loop's clock (``loop.time()``), so tests can run the limiter on
a virtual-time loop without sleeping.

Several worker processes
------------------------
Limits are per process. With N dispatcher processes sending through one bot token or one Twilio
sender, give each the 1/N share: ``RateLimits.from_settings(settings, share=1 / N)`` (the worker's
composition root knows N; e.g. from its process count setting). The outbox claim spreads due rows
over the workers, so the shares add up to the limit. Per-chat gaps stay per process: two workers can
claim alerts for the same chat in the same instant. That is rare (alerts for one chat are a handful,
and Telegram tolerates short per-chat bursts), and a 429 then costs one retry.

For an exact shared limit, keep the GCRA state (one number, the theoretical arrival time ``tat``)
in a shared store instead of in memory:

* Redis: a Lua script on key ``ratelimit:{channel}`` doing
  ``tat = max(GET key or now, now); if tat - now > tolerance then return tat - tolerance - now end;
  SET key (tat + interval) PX ...; return 0`` — one round trip per send, atomic; and a key
  ``ratelimit:{channel}:{chat}`` with ``SET NX PX`` for the per-chat gap.
* PostgreSQL: a ``rate_buckets(channel PRIMARY KEY, tat timestamptz)`` row updated with
  ``UPDATE … SET tat = greatest(tat, now()) + interval '…' RETURNING tat`` inside its own short
  transaction; the row lock serialises the workers (fine at a few hundred sends a second).

Neither is implemented: at cargobot's volumes (a few thousand alerts in a burst) per-process shares
suffice.
"""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import Mapping
from typing import Protocol


class _RateSettings(Protocol):
    telegram_max_per_second: float
    twilio_max_per_second: float


#: Telegram's documented per-chat pace: about one message a second.
TELEGRAM_CHAT_INTERVAL = 1.0


class TokenBucket:
    """GCRA (a token bucket in "theoretical arrival time" form) on times handed in: no clock.

    ``ready_at(now)`` is the earliest time a send may go; ``take(now)`` records one. Up to ``burst``
    sends may go at once from idle. A send taken up to ``slack`` seconds after its time keeps the
    schedule, so timer lateness does not slow the long-run rate (a wake-up 0.3 ms late each time
    would turn 300/s into 275/s): the next send comes that much sooner. Later than ``slack`` (a
    stall, or idle) the schedule restarts from now, without catching up. Any span of ``L`` seconds
    holds at most ``burst + (L + slack) * rate`` sends.
    """

    def __init__(self, rate: float, burst: int = 1, slack: float = 0.0) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = rate
        self.burst = burst
        self.interval = 1.0 / rate
        self._tolerance = (burst - 1) * self.interval
        self._slack = slack
        self._tat = -math.inf  # theoretical arrival time of the next send
        self._paused_until = -math.inf

    def ready_at(self, now: float) -> float:
        return max(now, self._tat - self._tolerance, self._paused_until)

    def take(self, now: float) -> None:
        # on time or up to ``slack`` late: keep the schedule; idle or later than that: restart it
        base = self._tat if self._tat >= now - self._slack else now
        self._tat = base + self.interval

    def reserve(self, now: float) -> float:
        """Book the first allowed time at or after ``now`` and return it (scheduling ahead)."""
        slot = self.ready_at(now)
        self.take(slot)
        return slot

    def pause(self, until: float) -> None:
        """Nothing before ``until``; then a burst may go, as from idle."""
        self._paused_until = max(self._paused_until, until)
        self._tat = max(self._tat, self._paused_until)

    @property
    def paused_until(self) -> float:
        return self._paused_until


#: Timer lateness the channel bucket absorbs (see ``TokenBucket``): about the 3 % headroom of a
#: second, so a late event loop on a busy machine does not lose pace, and no one-second window
#: goes over the limit.
TIMER_SLACK = 0.03


class ChannelRateLimiter:
    """The overall limit of one channel plus, optionally, a minimum gap between sends to one chat.

    ``rate``: sends per second the provider allows this process. ``per_chat_interval``: seconds
    between two sends to the same address (None: no per-chat limit). ``burst``: how many sends may
    go at once from idle (default 1: the first goes at once, the rest follow evenly). ``headroom``:
    fraction kept in reserve against jitter (see the module docstring).

    Waiters queue FIFO; one pump task releases them as the bucket allows, judged by the loop's
    clock at the moment of release. So when the loop stalls, sends that fell due meanwhile do not
    all go at once: the pump resumes at the normal pace.
    """

    def __init__(
        self,
        rate: float,
        *,
        per_chat_interval: float | None = None,
        burst: int | None = None,
        headroom: float = 0.03,
        prune_threshold: int = 4096,
    ) -> None:
        if not 0 <= headroom < 1:
            raise ValueError("headroom must be in [0, 1)")
        self.rate = rate
        self.headroom = headroom
        self._bucket = TokenBucket(rate * (1 - headroom), burst or 1, slack=TIMER_SLACK)
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._pump: asyncio.Task[None] | None = None
        self.per_chat_interval = per_chat_interval
        self._chat_gap = per_chat_interval * (1 + headroom) if per_chat_interval else None
        self._chat_next: dict[str, float] = {}
        self._chat_locks: dict[str, asyncio.Lock] = {}
        self._prune_threshold = prune_threshold
        self._prune_at = prune_threshold
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def burst(self) -> int:
        return self._bucket.burst

    @property
    def paused_until(self) -> float:
        """Loop time before which no send goes (``-inf`` when never paused)."""
        return self._bucket.paused_until

    @property
    def tracked_chats(self) -> int:
        """Chats whose gap is still remembered (idle ones are dropped as the map grows)."""
        return len(self._chat_next)

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        """Locks, futures and the pump belong to one loop: start them afresh on another one
        (a test or a CLI command running ``asyncio.run`` twice with one limiter)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._chat_locks = {}
            self._waiters = collections.deque()
            self._pump = None
        return loop

    async def acquire(self, address: str) -> None:
        """Wait until a send to ``address`` is allowed; the caller then sends straight away."""
        self._bind_loop()
        if self._chat_gap is None:
            await self._acquire_slot()
            return
        loop = asyncio.get_running_loop()
        lock = self._chat_locks.get(address)
        if lock is None:
            lock = self._chat_locks[address] = asyncio.Lock()
        async with lock:  # same chat: one at a time, FIFO
            ready = self._chat_next.get(address, -math.inf)
            while ready > loop.time():  # a chat penalty may move ``ready`` while we sleep
                await asyncio.sleep(ready - loop.time())
                ready = self._chat_next.get(address, -math.inf)
            await self._acquire_slot()
            granted = loop.time()
            self._chat_next[address] = max(self._chat_next.get(address, -math.inf), granted + self._chat_gap)
        if len(self._chat_next) > self._prune_at:
            self._prune(loop.time())

    def penalize(self, seconds: float, address: str | None = None) -> None:
        """Hold sends back for ``seconds``: the whole channel, or only the chat at ``address``."""
        if seconds <= 0:
            return
        now = asyncio.get_running_loop().time()
        if address is not None:
            self._chat_next[address] = max(self._chat_next.get(address, -math.inf), now + seconds)
        else:
            self._bucket.pause(now + seconds)  # the pump sees it when it next looks

    async def _acquire_slot(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not self._waiters and self._bucket.ready_at(now) <= now:
            self._bucket.take(now)
            return
        future: asyncio.Future[None] = loop.create_future()
        self._waiters.append(future)
        if self._pump is None or self._pump.done():
            self._pump = loop.create_task(self._run_pump())
        await future  # cancelled waiters are skipped by the pump

    async def _run_pump(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiters:
            if self._waiters[0].done():
                self._waiters.popleft()
                continue
            now = loop.time()
            ready = self._bucket.ready_at(now)
            if ready > now:
                await asyncio.sleep(ready - now)
                continue
            self._bucket.take(now)
            self._waiters.popleft().set_result(None)

    def _prune(self, now: float) -> None:
        # A chat whose holder has just released its lock (waiters not yet running) always has
        # ``_chat_next`` in the future, so "due and unlocked" never drops a lock somebody waits on.
        for address in [a for a, t in self._chat_next.items() if t <= now]:
            lock = self._chat_locks.get(address)
            if lock is None or not lock.locked():
                del self._chat_next[address]
                self._chat_locks.pop(address, None)
        self._prune_at = max(self._prune_threshold, 2 * len(self._chat_next))


class RateLimits:
    """The limiters of a process by channel name; addresses of other channels pass freely."""

    def __init__(self, limiters: Mapping[str, ChannelRateLimiter]) -> None:
        self._limiters = dict(limiters)

    @classmethod
    def from_settings(
        cls, settings: _RateSettings, *, share: float = 1.0, headroom: float = 0.03
    ) -> RateLimits:
        """Telegram: TELEGRAM_MAX_PER_SECOND and 1 s per chat; WhatsApp: TWILIO_MAX_PER_SECOND.
        ``share`` is this process's fraction of the limits (1/N for N workers)."""
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        return cls(
            {
                "telegram": ChannelRateLimiter(
                    settings.telegram_max_per_second * share,
                    per_chat_interval=TELEGRAM_CHAT_INTERVAL,
                    headroom=headroom,
                ),
                "whatsapp": ChannelRateLimiter(settings.twilio_max_per_second * share, headroom=headroom),
            }
        )

    def get(self, channel: str) -> ChannelRateLimiter | None:
        return self._limiters.get(channel)

    async def acquire(self, address: str) -> None:
        limiter = self._limiters.get(address.partition(":")[0])
        if limiter is not None:
            await limiter.acquire(address)

    def penalize(self, address: str, seconds: float, *, whole_channel: bool = True) -> None:
        """After a 429 with ``retry_after``: pause the channel of ``address`` (or only that chat)."""
        limiter = self._limiters.get(address.partition(":")[0])
        if limiter is not None:
            limiter.penalize(seconds, None if whole_channel else address)
