"""``cargobot serve``: the webhooks and the worker in one serving process, for a small install.

gunicorn runs a single (threaded) web worker; when that worker starts, the worker's asyncio loop
(dispatcher, maintenance notices, Telegram long polling when there is no webhook) starts beside it
on a thread, and stops with it. A worker that fails (Telegram unreachable at start, the database
gone for a while) is started again after a pause, as a supervisor would restart ``cargobot
worker``, while the webhooks go on answering.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from flask import Flask

from bot.app import build_app, check_channel_settings
from bot.config import Settings
from bot.web import WebServer, check_web_settings, close_app, create_app, gunicorn_options
from bot.worker import run_worker
from storage.db import dispose

log = logging.getLogger(__name__)


class BackgroundWorker:
    """The worker's event loop on a thread of the web process, started again after a failure:
    ``first_pause`` seconds later, doubling up to ``max_pause`` while it keeps failing at once."""

    def __init__(self, settings: Settings, *, first_pause: float = 1.0, max_pause: float = 60.0) -> None:
        self.settings = settings
        self.first_pause = first_pause
        self.max_pause = max_pause
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop: asyncio.Event | None = None
        self.thread: threading.Thread | None = None
        self.stopping = threading.Event()
        self.lock = threading.Lock()  # the loop and its stop event, between runs and shutdown

    def start(self) -> None:
        ready = threading.Event()

        async def main() -> None:
            with self.lock:
                self.loop, self.stop = asyncio.get_running_loop(), asyncio.Event()
                if self.stopping.is_set():
                    return
            ready.set()
            await run_worker(build_app(self.settings, migrate=False), stop=self.stop)

        def run() -> None:
            pause = self.first_pause
            while not self.stopping.is_set():
                started = time.monotonic()
                try:
                    asyncio.run(main())
                    return  # stopped on purpose
                except (Exception, SystemExit):  # the web side keeps serving; /healthz shows the heartbeat
                    if time.monotonic() - started > self.max_pause:  # it had been running a while
                        pause = self.first_pause
                    log.exception(
                        "the in-process worker stopped with an error; starting it again in %g s", pause
                    )
                finally:
                    ready.set()
                    with self.lock:
                        self.loop = self.stop = None
                self.stopping.wait(pause)
                pause = min(pause * 2, self.max_pause)

        self.thread = threading.Thread(target=run, name="cargobot-worker", daemon=True)
        self.thread.start()
        ready.wait(30)

    def shutdown(self) -> None:
        self.stopping.set()
        with self.lock:
            if self.loop is not None and self.stop is not None:
                try:
                    self.loop.call_soon_threadsafe(self.stop.set)
                except RuntimeError:  # that run has just ended: its loop is closed already
                    pass
        if self.thread is not None:
            self.thread.join(15)


def run_serve(settings: Settings, *, host: str, port: int, threads: int) -> None:
    check_web_settings(settings, log_off=False)  # the worker logs each channel that is off
    check_channel_settings(settings)  # here: in the worker's thread, SystemExit would end it unheard
    dispose(build_app(settings).engine)  # migrations and admins once, before forking
    background = BackgroundWorker(settings)

    def factory() -> Flask:
        return create_app(build_app(settings, migrate=False))

    def post_worker_init(_worker: Any) -> None:
        background.start()

    def worker_exit(_server: Any, worker: Any) -> None:
        background.shutdown()
        wsgi = getattr(worker, "wsgi", None)
        if isinstance(wsgi, Flask):
            close_app(wsgi)

    options = gunicorn_options(host=host, port=port, workers=1, threads=threads)
    # On SIGTERM gunicorn ends the process graceful_timeout later, done or not, and worker_exit
    # runs only once the open web requests are: 25 s leaves room for those and the in-process
    # worker's 10 s to settle its sends, within TimeoutStopSec=30 (deploy/cargobot.service).
    options.update(post_worker_init=post_worker_init, worker_exit=worker_exit, graceful_timeout=25)
    log.info("serving webhooks and the worker on http://%s:%d", host, port)
    WebServer(factory, options).run()
