"""``cargobot serve``: the webhooks and the worker in one serving process, for a small install.

gunicorn runs a single (threaded) web worker; when that worker starts, the worker's asyncio loop
(dispatcher, maintenance notices, Telegram long polling when there is no webhook) starts beside it
on a thread, and stops with it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from flask import Flask

from bot.app import build_app
from bot.config import Settings
from bot.web import WebServer, check_web_settings, close_app, create_app, gunicorn_options
from bot.worker import run_worker
from storage.db import dispose

log = logging.getLogger(__name__)


class _BackgroundWorker:
    """The worker's event loop on a thread of the web process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop: asyncio.Event | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        ready = threading.Event()

        async def main() -> None:
            self.loop, self.stop = asyncio.get_running_loop(), asyncio.Event()
            ready.set()
            await run_worker(build_app(self.settings, migrate=False), stop=self.stop)

        def run() -> None:
            try:
                asyncio.run(main())
            except Exception:  # the web side keeps serving; the heartbeat in /healthz shows it
                log.exception("the in-process worker stopped with an error")
            finally:
                ready.set()

        self.thread = threading.Thread(target=run, name="cargobot-worker", daemon=True)
        self.thread.start()
        ready.wait(30)

    def shutdown(self) -> None:
        if self.loop is not None and self.stop is not None:
            self.loop.call_soon_threadsafe(self.stop.set)
        if self.thread is not None:
            self.thread.join(15)


def run_serve(settings: Settings, *, host: str, port: int, threads: int) -> None:
    check_web_settings(settings, log_off=False)  # the worker logs each channel that is off
    dispose(build_app(settings).engine)  # migrations and admins once, before forking
    background = _BackgroundWorker(settings)

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
    options.update(post_worker_init=post_worker_init, worker_exit=worker_exit)
    log.info("serving webhooks and the worker on http://%s:%d", host, port)
    WebServer(factory, options).run()
