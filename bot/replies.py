"""The Telegram replies of the webhook and the poller: recorded as claimed outbox rows, then sent.

``claim_replies`` writes the rows, claimed by this process, in the same transaction as the inbound
message (it is ``handlers.router.answer``'s callback).
Each reply that Telegram confirms is settled as sent; from the first that is not confirmed (an
error, or the time budget spent), the rest are handed to the dispatcher as retries, so a reply is
never lost and never sent by both.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from bot.delivery import Channel, Outgoing, RetryableSendError
from handlers.types import Reply
from storage import outbox
from storage.prepared import OnConnection

log = logging.getLogger(__name__)

ClaimReplies = Callable[[OnConnection, list[Reply], datetime, str], list[tuple[int, Reply]]]


def claim_replies(*, update_id: int, worker: str, lease: timedelta) -> ClaimReplies:
    """The callback that records a Telegram update's replies as outbox rows claimed by ``worker``
    for ``lease``, under the address ``answer`` gives it; it returns (row id, reply) to send."""

    def claim(
        connection: OnConnection, replies: list[Reply], now: datetime, recipient: str
    ) -> list[tuple[int, Reply]]:
        return outbox.add_claimed_replies(
            connection,
            event_prefix=f"reply:telegram:{update_id}",
            address=recipient,
            replies=replies,
            now=now,
            worker=worker,
            lease=lease,
        )

    return claim


async def send_claimed(
    *,
    engine: Engine,
    channel: Channel,
    address: str,
    claimed: list[tuple[int, Reply]],
    worker: str,
    budget: float | None = None,
) -> None:
    """Send ``claimed`` (outbox row id, reply) in order, within ``budget`` seconds if given."""
    loop = asyncio.get_running_loop()
    deadline = None if budget is None else loop.time() + budget
    failure: str | None = None
    retry_after = 0.0
    for row_id, reply in claimed:
        remaining = None if deadline is None else deadline - loop.time()
        if failure is None and remaining is not None and remaining <= 0:
            failure = f"no time left of the {budget:g}s reply budget"
        if failure is None:
            message = Outgoing(address=address, text=reply.text, buttons=reply.buttons)
            try:
                message_id = await asyncio.wait_for(channel.send(message), timeout=remaining)
            except TimeoutError:
                failure = f"no answer from Telegram within the {budget:g}s reply budget"
            except Exception as exc:  # any failure: the outbox row is the reply's safety net
                failure = str(exc) or type(exc).__name__
                if isinstance(exc, RetryableSendError):
                    retry_after = exc.retry_after or 0.0
            else:
                await asyncio.to_thread(
                    outbox.settle,
                    engine=engine,
                    row_id=row_id,
                    worker=worker,
                    status="sent",
                    provider_id=message_id,
                    sent_at=datetime.now(UTC),
                    last_error=None,
                )
                continue
        log.warning(
            "telegram reply (outbox row %s) not confirmed, left to the dispatcher: %s", row_id, failure
        )
        await asyncio.to_thread(
            outbox.settle,
            engine=engine,
            row_id=row_id,
            worker=worker,
            status="retry",
            due_at=datetime.now(UTC) + timedelta(seconds=retry_after),
            last_error=f"reply not confirmed: {failure}",
        )
