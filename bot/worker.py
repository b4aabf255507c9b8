"""``cargobot worker``: one asyncio loop running the APScheduler jobs (outbox dispatcher, heartbeat,
housekeeping) and, when Telegram has no webhook, the Telegram long poller.

APScheduler 3 keeps its jobs in memory here, so there is no shared job store to guard: any number
of workers may run, on any number of machines; the outbox claim is what keeps them from sending
the same alert twice.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TextIO

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.app import App, build_channels, utcnow
from bot.console_channel import ConsoleChannel
from bot.delivery import Channel
from bot.dispatcher import Dispatcher, Handled
from storage import repo
from storage.db import write_session

log = logging.getLogger(__name__)

HEARTBEAT_KEY = "worker_heartbeat"
HEARTBEAT_SECONDS = 10
SHUTDOWN_GRACE_SECONDS = 10.0
"""How long a stopping worker lets a running job finish (a dispatcher pass sends what it has
claimed); within the 15 s a process manager usually allows between SIGTERM and SIGKILL."""


def beat(app: App, now: datetime) -> None:
    with write_session(app.engine) as session:
        repo.set_state(session=session, key=HEARTBEAT_KEY, value=now.isoformat(), now=now)


def freeze_startup_heap() -> None:
    """Take what start-up built (modules, settings, engine, SDK clients) out of the garbage
    collector's sight, so its full collections scan only what the running worker allocates.

    Without it a full collection walks the whole heap of python-telegram-bot, twilio, SQLAlchemy
    and alembic: measured 70-130 ms with the event loop stopped, long enough for the rate
    limiter to lose its pacing in the middle of a broadcast.
    """
    gc.collect()
    gc.freeze()


async def _start_channels(channels: dict[str, Channel]) -> None:
    for channel in channels.values():
        initialize = getattr(channel, "initialize", None)
        if initialize is not None:
            await initialize()


async def _stop_channels(channels: dict[str, Channel]) -> None:
    for channel in channels.values():
        shutdown = getattr(channel, "shutdown", None)
        if shutdown is not None:
            try:
                await shutdown()
            except Exception:  # shutting down: report and go on with the others
                log.exception("could not shut a channel down cleanly")


class RunningJobs:
    """Runs the scheduler's jobs as tracked tasks, so a stopping worker can let them finish.

    Shutting APScheduler down cancels the jobs still running, and it logs each cancellation as a
    job error with a traceback; waiting for them first makes a stop clean.
    """

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[object]] = set()

    def coroutine(
        self, name: str, func: Callable[..., Awaitable[object]]
    ) -> Callable[..., Awaitable[object]]:
        async def run(*args: object, **kwargs: object) -> object:
            task = asyncio.current_task()
            assert task is not None
            self.tasks.add(task)
            try:
                return await func(*args, **kwargs)
            except asyncio.CancelledError:
                log.warning("job %s cut short: the worker is stopping", name)
                return None
            finally:
                self.tasks.discard(task)

        return run

    def thread(self, name: str, func: Callable[[], object]) -> Callable[[], Awaitable[object]]:
        return self.coroutine(name, lambda: asyncio.to_thread(func))

    async def finish(self, timeout: float) -> None:
        """Wait for the running jobs; cut short those still running after ``timeout``."""
        await asyncio.sleep(0)  # a job submitted just before the pause registers on its first step
        if not self.tasks:
            return
        _done, pending = await asyncio.wait(set(self.tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)


def schedule(
    scheduler: AsyncIOScheduler,
    app: App,
    dispatcher: Dispatcher,
    on_handled: Callable[[Handled], None] | None = None,
) -> RunningJobs:
    """The worker's jobs. Misfires are explicit: a job that could not run on time (the worker was
    busy or down) runs once as soon as it can (coalesce), never silently skipped."""
    jobs = RunningJobs()
    common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
    scheduler.add_job(
        jobs.coroutine("dispatch", dispatcher.dispatch_pass),
        "interval",
        seconds=app.settings.dispatch_interval_seconds,
        id="dispatch",
        next_run_time=utcnow(),
        kwargs={"on_handled": on_handled},
        **common,
    )
    scheduler.add_job(
        jobs.thread("heartbeat", lambda: beat(app, utcnow())),
        "interval",
        seconds=HEARTBEAT_SECONDS,
        id="heartbeat",
        next_run_time=utcnow(),
        **common,
    )
    return jobs


async def run_worker(
    app: App,
    *,
    console_out: TextIO | None = None,
    stop: asyncio.Event | None = None,
    on_handled: Callable[[Handled], None] | None = None,
) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread (serve, tests)
            pass
    channels = build_channels(app.settings, console_out=console_out)
    await _start_channels(channels)
    dispatcher = Dispatcher(engine=app.engine, settings=app.settings, channels=channels, clock=utcnow)
    scheduler = AsyncIOScheduler(timezone="UTC")
    jobs = schedule(scheduler, app, dispatcher, on_handled)
    freeze_startup_heap()
    scheduler.start()
    poller: asyncio.Task[None] | None = None
    telegram = channels.get("telegram")
    if telegram is not None and not app.settings.telegram_webhook_mode:
        from bot.telegram_polling import poll_forever

        poller = asyncio.create_task(
            poll_forever(app, telegram, stop),  # type: ignore[arg-type]
            name="Telegram long polling",
        )
        poller.add_done_callback(lambda task: _stop_on_failure(task, stop))
    log.info("worker %s running: channels %s", dispatcher.worker, ", ".join(sorted(channels)) or "none")
    try:
        await stop.wait()
    finally:
        scheduler.pause()
        dispatcher.stop_claiming()
        await jobs.finish(SHUTDOWN_GRACE_SECONDS)
        scheduler.shutdown(wait=False)
        if poller is not None:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)
        await _stop_channels(channels)
        log.info("worker stopped")
    if poller is not None and not poller.cancelled() and poller.exception() is not None:
        raise RuntimeError("Telegram long polling failed") from poller.exception()


def _stop_on_failure(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    """A task the worker cannot go on without that failed stops the worker, which then raises its
    error (``run_worker``): its supervisor, or ``serve``, starts it again, rather than leaving it
    running without the task."""
    if not task.cancelled() and task.exception() is not None:
        log.error("%s failed; the worker stops", task.get_name(), exc_info=task.exception())
        stop.set()


async def dispatch_once(
    app: App, *, console_out: TextIO | None, on_handled: Callable[[Handled], None] | None = None
) -> list[Handled]:
    """One dispatcher pass over everything due now (``cargobot dispatch --once``)."""
    channels = build_channels(app.settings, console_out=console_out)
    await _start_channels(channels)
    try:
        dispatcher = Dispatcher(engine=app.engine, settings=app.settings, channels=channels, clock=utcnow)
        return await dispatcher.dispatch_pass(on_handled=on_handled)
    finally:
        await _stop_channels(channels)


@contextmanager
def console_alerts_in_background(app: App, out: TextIO, interval: float = 2.0) -> Iterator[None]:
    """For the demo: deliver alerts to console:NAME contacts as they fall due, while the chat runs."""
    stop = threading.Event()
    dispatcher = Dispatcher(
        engine=app.engine, settings=app.settings, channels={"console": ConsoleChannel(out)}, clock=utcnow
    )

    def loop() -> None:
        while not stop.wait(interval):
            try:
                asyncio.run(dispatcher.dispatch_pass())
            except Exception:  # the demo chat goes on; the error is logged
                log.exception("demo alert delivery failed")

    thread = threading.Thread(target=loop, name="demo-alerts", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval + 5)
