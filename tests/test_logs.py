"""Log output: no configured secret reaches stderr, in a message, a traceback or a stack."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from bot.logs import configure_logging

TOKEN = "7070707:LOG-bot-token-value"
AUTH = "log-auth-token-value"


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def log_a_failure() -> None:
    log = logging.getLogger("cargobot.test")
    log.warning("sending with %s failed", TOKEN)
    try:
        raise ConnectionError(f"cannot reach https://api.telegram.org/bot{TOKEN}/sendMessage ({AUTH})")
    except ConnectionError:
        log.exception("send failed")
    log.info("where the token was read: %s", AUTH, stack_info=True)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secrets_are_redacted_in_messages_tracebacks_and_stacks(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(level="INFO", fmt=fmt, secrets=[TOKEN, AUTH])
    log_a_failure()
    err = capsys.readouterr().err
    assert TOKEN not in err and AUTH not in err
    assert "ConnectionError: cannot reach https://api.telegram.org/bot[redacted]/sendMessage" in (
        err if fmt == "text" else "".join(json.loads(line).get("exception", "") for line in err.splitlines())
    )
    assert err.count("[redacted]") >= 4


def test_json_lines_carry_the_traceback_and_the_stack(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(level="INFO", fmt="json", secrets=[])
    log_a_failure()
    warning, failure, info = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert warning["message"] == f"sending with {TOKEN} failed"  # nothing configured, nothing redacted
    assert failure["exception"].startswith("Traceback") and "ConnectionError" in failure["exception"]
    assert info["stack"].startswith("Stack (most recent call last)")


def test_gunicorns_own_lines_go_through_the_same_handler(capsys: pytest.CaptureFixture[str]) -> None:
    """Booting workers, signals and worker timeouts: JSON like the rest, redacted, at LOG_LEVEL."""
    from gunicorn.config import Config

    from bot.web import gunicorn_options

    configure_logging(level="INFO", fmt="json", secrets=[TOKEN])
    loggers = [logging.getLogger(name) for name in ("gunicorn.error", "gunicorn.access")]
    before = [(log.level, log.propagate, list(log.handlers)) for log in loggers]
    config = Config()
    config.set(
        "logger_class", gunicorn_options(host="127.0.0.1", port=8000, workers=1, threads=1)["logger_class"]
    )
    server_log = config.logger_class(config)
    try:
        server_log.info("Booting worker with pid: %s", 4242)
        server_log.critical("WORKER TIMEOUT while posting to /bot%s/sendMessage", TOKEN)
        server_log.debug("not at INFO")
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
        assert [(line["logger"], line["level"], line["message"]) for line in lines] == [
            ("gunicorn.error", "info", "Booting worker with pid: 4242"),
            ("gunicorn.error", "critical", "WORKER TIMEOUT while posting to /bot[redacted]/sendMessage"),
        ]
    finally:
        for log, (level, propagate, handlers) in zip(loggers, before, strict=True):
            log.setLevel(level)
            log.propagate = propagate
            log.handlers[:] = handlers


def test_a_web_worker_that_cannot_start_is_logged_redacted_and_gunicorn_prints_no_secret(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """gunicorn logs a failed worker's exception and also prints it raw to stderr: what it gets
    must carry no secret, and the real error is in the (redacted) log."""
    from bot.web import WebServer

    def factory() -> None:
        raise ConnectionError(f"could not reach https://api.telegram.org/bot{TOKEN}/getMe")

    configure_logging(level="INFO", fmt="text", secrets=[TOKEN])
    with pytest.raises(RuntimeError) as raised:
        WebServer(factory, {"bind": "127.0.0.1:0"}).load()
    assert TOKEN not in str(raised.value) and raised.value.__suppress_context__
    err = capsys.readouterr().err
    assert "a web worker could not start" in err and "bot[redacted]/getMe" in err and TOKEN not in err
