"""The outbox dispatcher: claim due alerts, send them under the channels' limits, record the outcome.

One pass (``dispatch_pass``) runs as an APScheduler job in ``cargobot worker`` / ``serve`` and as
``cargobot dispatch --once``. Each send is committed, with the provider's message id, before its
sending task takes the next row; outcomes that finish together share one commit (group commit: at
300 sends/s a commit per send would cost more CPU than the sends). So a worker killed mid-broadcast
leaves at most ``dispatch_concurrency`` messages whose fate is unknown; those are claimed again when
their lease runs out and may reach the recipient twice (the documented in-flight bound).
Everything else is delivered exactly once.

Opt-out (and the WhatsApp window) is read once per claimed batch, with the claim, not once per
send: a STOP stops every row claimed after it; rows claimed before it (at most four times the
concurrency: queued, or waiting for the rate limit, a few seconds' worth) still go.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import random
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from bot.config import Settings
from bot.delivery import (
    Channel,
    Outgoing,
    OutsideWindowError,
    PermanentSendError,
    RetryableSendError,
    Template,
)
from bot.ratelimit import RateLimits
from handlers.alerts import plan_due_maintenance
from storage import outbox
from storage.db import write_session
from storage.models import Contact, Outbox

log = logging.getLogger(__name__)

WHATSAPP_WINDOW = timedelta(hours=24)
_BACKOFF_BASE_SECONDS = 5.0
_BACKOFF_CAP_SECONDS = 900.0
_LEASE_MARGIN = timedelta(seconds=3)
#: Group commit: while outcomes arrive faster than ``GROUP_COMMIT_BUSY_RATE`` a second, the first of a
#: group waits ``GROUP_COMMIT_LINGER`` for others. At 300 sends/s a commit per send costs a third of a
#: core in SQLAlchemy and SQLite, and the threads doing it hold the GIL long enough to upset the
#: event loop's pacing; 20 ms gathers about six per commit. Slower than that, each commits at once,
#: so the provider's message id is on record as soon as possible (a status callback may follow).
GROUP_COMMIT_LINGER = 0.02
GROUP_COMMIT_BUSY_RATE = 100.0

# SQLite may answer "database is locked" under contention; PostgreSQL may drop a connection.
_db_retry = retry(
    retry=retry_if_exception_type(OperationalError),
    wait=wait_exponential_jitter(multiplier=0.05, max=2.0),
    stop=stop_after_attempt(6),
    reraise=True,
)


@dataclass(frozen=True)
class Handled:
    """One message the pass dealt with, as ``dispatch --once --json`` prints it."""

    to: str
    text: str
    status: str  # sent | retry | failed | held | skipped | expired

    def to_json(self) -> str:
        return json.dumps({"to": self.to, "text": self.text, "status": self.status}, ensure_ascii=False)


Settle = Callable[..., Awaitable[bool]]


class _GroupCommit:
    """Settles of one pass: outcomes that finish within ``GROUP_COMMIT_LINGER`` of each other, or
    while a commit is running, go together in one commit.

    ``settle`` returns once its outcome is committed, so a sending task never has more than one
    uncommitted send.
    """

    _RATE_WINDOW = 16  # outcomes over which the arrival rate is judged

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher
        self._queued: list[tuple[Outbox, dict[str, object], asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._arrivals: collections.deque[float] = collections.deque(maxlen=self._RATE_WINDOW)

    async def settle(self, row: Outbox, **values: object) -> bool:
        loop = asyncio.get_running_loop()
        self._arrivals.append(loop.time())
        future: asyncio.Future[bool] = loop.create_future()
        self._queued.append((row, values, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return await future

    def _busy(self) -> bool:
        if len(self._arrivals) < self._RATE_WINDOW:
            return False
        span = self._arrivals[-1] - self._arrivals[0]
        return span <= 0 or (len(self._arrivals) - 1) / span >= GROUP_COMMIT_BUSY_RATE

    async def _write(self) -> None:
        while self._queued:
            if self._busy():
                await asyncio.sleep(GROUP_COMMIT_LINGER)  # let the sends finishing now join this commit
            batch, self._queued = self._queued, []
            try:
                results = await asyncio.to_thread(
                    self._dispatcher._settle_rows, [(row.id, values) for row, values, _ in batch]
                )
            except Exception as exc:  # every outcome of the batch hears of it
                results = [exc] * len(batch)
            for (row, _, future), result in zip(batch, results, strict=True):
                if future.done():  # its task was cancelled
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                    continue
                if not result:
                    log.warning("outbox row %s: lease lost before the outcome was recorded", row.id)
                future.set_result(result)


def worker_id() -> str:
    return f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"


def backoff_seconds(attempts: int, retry_after: float | None) -> float:
    """Exponential backoff with full jitter, never sooner than the provider's retry-after."""
    ceiling = min(_BACKOFF_CAP_SECONDS, _BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    return max(delay, retry_after or 0.0)


class Dispatcher:
    def __init__(
        self,
        *,
        engine: Engine,
        settings: Settings,
        channels: dict[str, Channel],
        limits: RateLimits | None = None,
        clock: Callable[[], datetime],
        worker: str | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.channels = channels
        self.limits = limits if limits is not None else RateLimits.from_settings(settings)
        self.clock = clock
        self.worker = worker or worker_id()
        self.stopping = False

    def stop_claiming(self) -> None:
        """Shutting down: a pass in progress sends what it has claimed and claims nothing more."""
        self.stopping = True

    # --- one pass ----------------------------------------------------------------------------

    async def dispatch_pass(self, *, on_handled: Callable[[Handled], None] | None = None) -> list[Handled]:
        """Send everything due now; returns what was handled (in completion order)."""
        if not self.channels:
            return []
        now = self.clock()
        await asyncio.to_thread(self._housekeeping, now)
        handled: list[Handled] = []
        queue: asyncio.Queue[tuple[Outbox, Contact | None] | None] = asyncio.Queue()
        concurrency = max(1, self.settings.dispatch_concurrency)
        settle = _GroupCommit(self).settle

        async def consume() -> None:
            while (item := await queue.get()) is not None:
                row, contact = item
                try:
                    result = await self._deliver(row, contact, settle)
                except Exception:  # the database failed past its retries: the lease brings the row back
                    log.exception("outbox row %s: could not record the outcome", row.id)
                    continue
                handled.append(result)
                if on_handled:
                    on_handled(result)

        consumers = [asyncio.create_task(consume()) for _ in range(concurrency)]
        try:
            while True:
                # Claim little ahead of sending, so a claimed row is sent well within its lease.
                while queue.qsize() >= concurrency:
                    await asyncio.sleep(0.005)
                if self.stopping:
                    break
                claimed = await asyncio.to_thread(self._claim)
                if not claimed:
                    break
                for item in claimed:
                    queue.put_nowait(item)
        finally:
            for _ in consumers:
                queue.put_nowait(None)
            await asyncio.gather(*consumers)
        return handled

    @_db_retry
    def _housekeeping(self, now: datetime) -> None:
        with write_session(self.engine) as session:
            plan_due_maintenance(session=session, now=now)
        outbox.expire_stale(
            engine=self.engine, now=now, max_age=timedelta(hours=self.settings.alert_max_age_hours)
        )
        outbox.apply_kept_reports(engine=self.engine, now=now, has_template=self.settings.has_template)

    def _claim(self) -> list[tuple[Outbox, Contact | None]]:
        """Claim due rows and read their contacts (for opt-out and the WhatsApp window)."""
        rows = self._claim_rows()
        if not rows:
            return []
        contacts = self._contacts(sorted({row.recipient for row in rows}))
        return [(row, contacts.get(row.recipient)) for row in rows]

    @_db_retry
    def _claim_rows(self) -> list[Outbox]:
        return outbox.claim_due(
            engine=self.engine,
            worker=self.worker,
            now=self.clock(),
            lease_seconds=self.settings.claim_lease_seconds,
            limit=min(self.settings.dispatch_batch_size, 2 * max(1, self.settings.dispatch_concurrency)),
            channels=sorted(self.channels),
        )

    @_db_retry
    def _contacts(self, addresses: list[str]) -> dict[str, Contact]:
        return outbox.contacts_for(engine=self.engine, addresses=addresses)

    @_db_retry
    def _settle_many(self, outcomes: Sequence[tuple[int | None, Mapping[str, object]]]) -> list[bool]:
        return outbox.settle_many(engine=self.engine, worker=self.worker, outcomes=outcomes)  # type: ignore[arg-type]

    def _settle_rows(
        self, outcomes: Sequence[tuple[int | None, Mapping[str, object]]]
    ) -> list[bool | Exception]:
        """One commit for all; if that fails for a reason other than the database being busy or
        gone, each on its own, so one bad outcome cannot block the others."""
        try:
            return list(self._settle_many(outcomes))
        except OperationalError:
            raise
        except Exception:
            if len(outcomes) == 1:
                raise
        results: list[bool | Exception] = []
        for outcome in outcomes:
            try:
                results.extend(self._settle_many([outcome]))
            except Exception as exc:  # handed to that outcome's task
                results.append(exc)
        return results

    # --- one message -------------------------------------------------------------------------

    async def _deliver(self, row: Outbox, contact: Contact | None, settle: Settle) -> Handled:
        channel_name = row.recipient.partition(":")[0]
        if row.lease_until is not None and self.clock() >= row.lease_until - _LEASE_MARGIN:
            # Too late to send safely: another worker may already have claimed it again.
            return Handled(row.recipient, row.text, "retry")
        if contact is not None and contact.opted_out:
            await settle(row, status="skipped", last_error="skipped: the contact opted out (STOP)")
            return Handled(row.recipient, row.text, "skipped")
        channel = self.channels[channel_name]
        # Telegram shows the buttons inline; WhatsApp free text writes them out (``button_hint``).
        message = Outgoing(address=row.recipient, text=row.text, buttons=outbox.buttons_of(row))
        if channel_name == "whatsapp" and self._window_closed(row, contact):
            template = self._template_for(row)
            if template is None:
                await settle(
                    row,
                    status="held",
                    last_error="held: WhatsApp 24-hour window closed and no template configured; "
                    "sent when the customer next writes",
                )
                return Handled(row.recipient, row.text, "held")
            message = Outgoing(address=row.recipient, text=row.text, template=template)
        limiter = self.limits.get(channel_name)
        if limiter is not None:
            await limiter.acquire(row.recipient)
        try:
            provider_id = await channel.send(message)
        except RetryableSendError as exc:
            if limiter is not None and exc.retry_after:
                limiter.penalize(exc.retry_after)
            return await self._retry(row, str(exc), exc.retry_after, settle)
        except OutsideWindowError:
            if self._template_for(row) is not None and not row.force_template:
                await settle(
                    row,
                    status="pending",
                    force_template=True,
                    due_at=self.clock(),
                    last_error="WhatsApp 24-hour window closed: sending the approved template",
                )
                return Handled(row.recipient, row.text, "retry")
            await settle(
                row,
                status="held",
                last_error="held: WhatsApp 24-hour window closed (63016); sent when the customer next writes",
            )
            return Handled(row.recipient, row.text, "held")
        except PermanentSendError as exc:
            await settle(row, status="failed", last_error=f"failed: {exc}")
            return Handled(row.recipient, row.text, "failed")
        except Exception as exc:  # an unexpected channel error must not lose the alert
            log.exception("unexpected error sending outbox row %s", row.id)
            return await self._retry(row, f"unexpected error: {exc!r}", None, settle)
        await settle(row, status="sent", provider_id=provider_id, sent_at=self.clock(), last_error=None)
        return Handled(row.recipient, row.text, "sent")

    async def _retry(self, row: Outbox, reason: str, retry_after: float | None, settle: Settle) -> Handled:
        delay = backoff_seconds(row.attempts, retry_after)
        await settle(
            row,
            status="retry",
            due_at=self.clock() + timedelta(seconds=delay),
            last_error=f"retrying in {delay:.0f}s: {reason}",
        )
        return Handled(row.recipient, row.text, "retry")

    def _window_closed(self, row: Outbox, contact: Contact | None) -> bool:
        if row.force_template:
            return True
        last = contact.last_inbound_at if contact else None
        return last is None or self.clock() - last > WHATSAPP_WINDOW

    def _template_for(self, row: Outbox) -> Template | None:
        sid = self.settings.template_sid(row.template)
        if not sid:
            return None
        variables = json.loads(row.template_vars) if row.template_vars else {}
        return Template(content_sid=sid, variables={str(k): str(v) for k, v in variables.items()})
