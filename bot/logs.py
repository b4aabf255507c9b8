"""Logging for every process: to stderr, text or one JSON object per line, secrets redacted."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime


class RedactingFilter(logging.Filter):
    """Replaces any configured secret (bot token, auth token, webhook secret) in a log record."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            for secret in self.secrets:
                message = message.replace(secret, "[redacted]")
            record.msg, record.args = message, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
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
