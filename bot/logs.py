"""Logging for every process: to stderr, text or one JSON object per line, secrets redacted."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime


class RedactingFilter(logging.Filter):
    """Replaces any configured secret (bot token, auth token, webhook secret) in a log record: its
    message, its traceback (an exception's text may quote a URL with the bot token) and its stack."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg, record.args = self._redact(record.getMessage()), None
            if record.exc_info and not record.exc_text:  # the formatters use exc_text when it is set
                record.exc_text = _TRACEBACK.formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self._redact(record.exc_text)
            if record.stack_info:
                record.stack_info = self._redact(record.stack_info)
        return True

    def _redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text


_TRACEBACK = logging.Formatter()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(*, level: str = "INFO", fmt: str = "text", secrets: list[str] | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets or []))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # httpx logs every request URL, and a Telegram URL contains the bot token.
    for noisy in ("httpx", "httpcore", "telegram.ext", "apscheduler.executors", "twilio.http_client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # A dispatch pass longer than its interval makes APScheduler skip the next run with a warning;
    # that is by design (max_instances=1, coalesce), not a fault.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
    # python-telegram-bot's Bot logs request URLs (with the token) and message texts at DEBUG.
    logging.getLogger("telegram.Bot").setLevel(logging.INFO)
    # Alembic lists every autogenerate plugin it sets up, on each start: not news.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
