"""``cargobot web`` as a real process (gunicorn) against a fake Telegram Bot API and a fake Twilio.

Requests go over loopback HTTP with httpx: Twilio form bodies signed with
``RequestValidator.compute_signature``, Telegram updates in the Bot API's JSON shapes.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from twilio.request_validator import RequestValidator

from bot.config import Settings
from bot.delivery import Outgoing
from bot.whatsapp_channel import WhatsAppChannel
from tests.e2e import WebProcess, free_port, http_client, run_web_command
from tests.fakes import (
    FakeTelegram,
    FakeTwilio,
    telegram_callback_update,
    telegram_message_update,
    wait_until,
)

pytestmark = pytest.mark.e2e

ACCOUNT_SID = "AC" + "e" * 32
AUTH_TOKEN = "e2e-twilio-auth-token-42"
BOT_TOKEN = "987654:E2E-bot-token-xyz"
SECRET = "e2e-webhook-secret-77"
REPLY_SECONDS = 5  # how long a Telegram webhook waits for its replies (CARGOBOT_TELEGRAM_REPLY_SECONDS)
FROM = "whatsapp:+447700900123"
CUSTOMER = "whatsapp:+254700000202"


def web_env(*, port: int, db: Path, telegram: FakeTelegram, twilio: FakeTwilio) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite:///{db}",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_WHATSAPP_FROM": FROM,
        "TWILIO_API_BASE_URL": twilio.base_url,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_BASE_URL": telegram.base_url,
        "CARGOBOT_ADMINS": "console:admin",
        "CARGOBOT_MAX_REQUEST_BYTES": "16384",
        "CARGOBOT_TELEGRAM_REPLY_SECONDS": str(REPLY_SECONDS),
        "LOG_LEVEL": "DEBUG",
    }


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeTelegram, FakeTwilio]]:
    with (
        FakeTelegram(token=BOT_TOKEN) as telegram,
        FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as twilio,
    ):
        yield telegram, twilio


@pytest.fixture(scope="module")
def web(
    fakes: tuple[FakeTelegram, FakeTwilio], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebProcess]:
    telegram, twilio = fakes
    cwd = tmp_path_factory.mktemp("web1")
    port = free_port()
    env = web_env(port=port, db=cwd / "cargobot.db", telegram=telegram, twilio=twilio)
    with WebProcess(env=env, cwd=cwd, port=port, workers=1) as process:
        yield process


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with http_client(timeout=20.0) as client:
        yield client


def signed_post(
    http: httpx.Client, web: WebProcess, path: str, params: dict[str, str], token: str = AUTH_TOKEN
) -> httpx.Response:
    signature = RequestValidator(token).compute_signature(web.url + path, params)
    return http.post(web.url + path, data=params, headers={"X-Twilio-Signature": signature})


def whatsapp(body: str, sid: str, **extra: str) -> dict[str, str]:
    return {
        "From": CUSTOMER,
        "To": FROM,
        "Body": body,
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "ProfileName": "Dalia",
        "WaId": CUSTOMER[10:],
        "NumMedia": "0",
        **extra,
    }


def twiml_messages(response: httpx.Response) -> list[str]:
    root = ET.fromstring(response.content)
    assert root.tag == "Response"
    return [m.text or "" for m in root.findall("Message")]


def telegram_post(http: httpx.Client, web: WebProcess, update: Any, secret: str = SECRET) -> httpx.Response:
    return http.post(
        web.url + "/webhooks/telegram", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": secret}
    )


def chunks(body: bytes, size: int = 4096) -> Iterator[bytes]:
    """``body`` as an iterator, which httpx sends chunked, without a Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def db_rows(web: WebProcess, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(web.cwd / "cargobot.db") as conn:
        return conn.execute(sql, args).fetchall()


# --- WhatsApp --------------------------------------------------------------------------------


def test_whatsapp_message_is_answered_with_twiml_and_a_replay_with_empty_twiml(
    web: WebProcess, http: httpx.Client
) -> None:
    params = whatsapp("HELP", "SM" + "1" * 32)
    first = signed_post(http, web, "/webhooks/whatsapp", params)
    assert first.status_code == 200 and first.headers["content-type"].startswith("application/xml")
    assert twiml_messages(first)
    replay = signed_post(http, web, "/webhooks/whatsapp", params)
    assert replay.status_code == 200 and twiml_messages(replay) == []
    assert db_rows(
        web, "SELECT count(*) FROM inboundmessage WHERE provider_key = ?", "whatsapp:SM" + "1" * 32
    ) == [(1,)]


def test_whatsapp_media_is_acknowledged_and_queued_for_staff(web: WebProcess, http: httpx.Client) -> None:
    link = "https://api.twilio.com/2010-04-01/Accounts/ACe/Messages/MM2/Media/ME2"
    params = whatsapp("", "SM" + "2" * 32, NumMedia="1", MediaUrl0=link, MediaContentType0="image/jpeg")
    response = signed_post(http, web, "/webhooks/whatsapp", params)
    assert "I can only read text" in " ".join(twiml_messages(response))
    [(recipient, text)] = db_rows(web, "SELECT recipient, text FROM outbox WHERE kind = 'agent'")
    assert recipient == "console:admin" and link in text


def test_whatsapp_refusals(web: WebProcess, http: httpx.Client) -> None:
    params = whatsapp("HELP", "SM" + "3" * 32)
    forged = http.post(
        web.url + "/webhooks/whatsapp", data=params, headers={"X-Twilio-Signature": "Zm9yZ2Vk"}
    )
    other_token = signed_post(http, web, "/webhooks/whatsapp", params, token="someone-elses-token")
    as_json = http.post(web.url + "/webhooks/whatsapp", json=params)
    oversized = http.post(web.url + "/webhooks/whatsapp", data={"Body": "x" * 20_000})
    big = params | {"Body": "x" * 20_000}
    chunked = http.post(  # no Content-Length: read up to the limit, then refused
        web.url + "/webhooks/whatsapp",
        content=chunks(urlencode(big).encode()),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(
                web.url + "/webhooks/whatsapp", big
            ),
        },
    )
    malformed = signed_post(http, web, "/webhooks/whatsapp", whatsapp("HELP", "SM" + "4" * 32, NumMedia="x"))
    assert [
        forged.status_code,
        other_token.status_code,
        as_json.status_code,
        oversized.status_code,
        chunked.status_code,
        malformed.status_code,
    ] == [403, 403, 415, 413, 413, 400]
    assert db_rows(
        web,
        "SELECT count(*) FROM inboundmessage WHERE provider_key IN (?, ?)",
        "whatsapp:SM" + "3" * 32,
        "whatsapp:SM" + "4" * 32,
    ) == [(0,)]


def test_status_callback_from_twilio_updates_the_alert_it_reports_on(
    web: WebProcess, fakes: tuple[FakeTelegram, FakeTwilio]
) -> None:
    _, twilio = fakes
    settings = Settings(
        _env_file=None,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_whatsapp_from=FROM,
        twilio_api_base_url=twilio.base_url,
        public_base_url=web.url,
    )

    async def send() -> list[str]:
        async with WhatsAppChannel(settings) as channel:
            return [await channel.send(Outgoing(address=CUSTOMER, text=f"Update {n}.")) for n in (1, 2)]

    # Through the real Twilio SDK: the fake records the StatusCallback URL each message carried.
    sid, stranger = asyncio.run(send())
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")  # SQLite holds naive UTC
    with sqlite3.connect(web.cwd / "cargobot.db") as conn:
        conn.execute(
            "INSERT INTO outbox (event_key, recipient, kind, text, status, due_at, attempts, force_template,"
            " provider_id, created_at) VALUES ('e2e:1', ?, 'release', 'x', 'sent', ?, 1, 0, ?, ?)",
            (CUSTOMER, now, sid, now),
        )
    assert twilio.sent[-1].status_callback == web.url + "/webhooks/whatsapp/status"
    assert twilio.send_status_callback(sid, "sent") == 200
    assert twilio.send_status_callback(sid, "read") == 200
    assert twilio.send_status_callback(sid, "delivered") == 200  # late and out of order: ignored
    assert twilio.send_status_callback(sid, "failed", auth_token="forger") == 403
    assert db_rows(web, "SELECT delivery_status FROM outbox WHERE provider_id = ?", sid) == [("read",)]
    assert twilio.send_status_callback(stranger, "delivered") == 200  # no outbox row has this sid
    assert f"message {stranger} not on record yet; kept" in web.log()


# --- Telegram --------------------------------------------------------------------------------


def test_telegram_update_is_answered_through_the_bot_api_once(
    web: WebProcess, http: httpx.Client, fakes: tuple[FakeTelegram, FakeTwilio]
) -> None:
    telegram, _ = fakes
    before = len(telegram.sent)
    update = telegram_message_update(5001, 3131, "HELP")
    assert telegram_post(http, web, update).status_code == 200
    assert telegram_post(http, web, update).status_code == 200
    new = telegram.sent[before:]
    assert [s.chat_id for s in new] == [3131]
    assert db_rows(web, "SELECT status FROM outbox WHERE event_key = 'reply:telegram:5001:0'") == [("sent",)]


def test_telegram_button_press_is_answered_and_its_spinner_stopped(
    web: WebProcess, http: httpx.Client, fakes: tuple[FakeTelegram, FakeTwilio]
) -> None:
    telegram, _ = fakes
    before = len(telegram.sent)
    update = telegram_callback_update(5002, 3132, "HELP", query_id="e2e-q", bot_id=telegram.bot_id)
    assert telegram_post(http, web, update).status_code == 200
    assert [s.chat_id for s in telegram.sent[before:]] == [3132]
    assert any(a.get("callback_query_id") == "e2e-q" for a in telegram.callback_answers)


def test_telegram_reply_that_fails_is_left_for_the_worker(
    web: WebProcess, http: httpx.Client, fakes: tuple[FakeTelegram, FakeTwilio]
) -> None:
    telegram, _ = fakes
    telegram.next_500()
    assert telegram_post(http, web, telegram_message_update(5003, 3133, "HELP")).status_code == 200
    assert telegram.pending_faults() == 0
    assert db_rows(web, "SELECT status FROM outbox WHERE event_key = 'reply:telegram:5003:0'") == [("retry",)]


def test_telegram_reply_rate_limited_is_left_for_the_worker_after_retry_after(
    web: WebProcess, http: httpx.Client, fakes: tuple[FakeTelegram, FakeTwilio]
) -> None:
    telegram, _ = fakes
    telegram.next_429(retry_after=30)
    before = datetime.now(UTC)
    assert telegram_post(http, web, telegram_message_update(5007, 3135, "HELP")).status_code == 200
    assert telegram.pending_faults() == 0
    [(status, due_at)] = db_rows(
        web, "SELECT status, due_at FROM outbox WHERE event_key = 'reply:telegram:5007:0'"
    )
    assert status == "retry"
    assert datetime.fromisoformat(due_at).replace(tzinfo=UTC) >= before + timedelta(seconds=29)


def test_telegram_reply_too_slow_is_given_up_within_the_budget_and_left_for_the_worker(
    web: WebProcess, http: httpx.Client, fakes: tuple[FakeTelegram, FakeTwilio]
) -> None:
    telegram, _ = fakes
    telegram.next_delay(seconds=REPLY_SECONDS + 3)
    started = time.monotonic()
    assert telegram_post(http, web, telegram_message_update(5008, 3136, "HELP")).status_code == 200
    assert time.monotonic() - started < REPLY_SECONDS + 2.5
    [(status, error)] = db_rows(
        web, "SELECT status, last_error FROM outbox WHERE event_key = 'reply:telegram:5008:0'"
    )
    assert status == "retry" and "no answer from Telegram" in error


def test_telegram_refusals(
    web: WebProcess, http: httpx.Client, fakes: tuple[FakeTelegram, FakeTwilio]
) -> None:
    telegram, _ = fakes
    before = len(telegram.sent)
    update = telegram_message_update(5004, 3134, "HELP")
    url = web.url + "/webhooks/telegram"
    header = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    codes = [
        telegram_post(http, web, update, secret="guess").status_code,
        http.post(url, json=update).status_code,  # no secret at all
        http.post(url, content=b"{oops", headers=header | {"Content-Type": "application/json"}).status_code,
        http.post(url, data={"update_id": "5004"}, headers=header).status_code,
        telegram_post(http, web, telegram_message_update(5005, 3134, "x" * 20_000)).status_code,
        http.post(
            url,
            content=chunks(json.dumps(telegram_message_update(5006, 3134, "x" * 20_000)).encode()),
            headers=header | {"Content-Type": "application/json"},
        ).status_code,
        http.get(url).status_code,
        http.post(web.url + "/webhooks/unknown", json=update).status_code,
    ]
    assert codes == [403, 403, 400, 415, 413, 413, 405, 404]
    assert telegram.sent[before:] == []
    assert db_rows(
        web,
        "SELECT count(*) FROM inboundmessage WHERE provider_key LIKE 'telegram:500_'"
        " AND provider_key IN ('telegram:5004', 'telegram:5005')",
    ) == [(0,)]


# --- health and logs -------------------------------------------------------------------------


def test_healthz_reports_database_heartbeat_and_backlog(web: WebProcess, http: httpx.Client) -> None:
    response = http.get(web.url + "/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["worker_heartbeat_age_seconds"] is None
    assert isinstance(body["outbox_backlog"], int)


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\nBody=abc\r\n0\r\n\r\n",  # a chunk size that is not hexadecimal
        b"8\r\nBody=abcXX0\r\n\r\n",  # a chunk without its terminator
        b"8\r\nBody=abc\r\n",  # the client gone before the last chunk
    ],
)
@pytest.mark.parametrize("path", ["/webhooks/whatsapp", "/webhooks/telegram"])
def test_a_malformed_chunked_body_gets_400_not_a_server_error(
    web: WebProcess, path: str, body: bytes
) -> None:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", web.port), timeout=10) as sock:
        sock.sendall(head + body)
        sock.shutdown(socket.SHUT_WR)
        status_line = sock.makefile("rb").readline()
    assert status_line.startswith(b"HTTP/1.1 400"), status_line
    assert "unexpected error" not in web.log()


def test_no_secret_reaches_the_log(web: WebProcess, http: httpx.Client) -> None:
    http.get(web.url + "/healthz")
    log = web.log()
    assert "Booting worker" in log
    for secret in (AUTH_TOKEN, BOT_TOKEN, SECRET):
        assert secret not in log


# --- several workers, and refusing to start --------------------------------------------------


def test_two_workers_answer_concurrent_replays_once(
    fakes: tuple[FakeTelegram, FakeTwilio], tmp_path: Path
) -> None:
    telegram, twilio = fakes
    port = free_port()
    env = web_env(port=port, db=tmp_path / "cargobot.db", telegram=telegram, twilio=twilio)
    with WebProcess(env=env, cwd=tmp_path, port=port, workers=2) as web:
        before = len(telegram.sent)
        update = telegram_message_update(6001, 4141, "HELP")
        params = whatsapp("HELP", "SM" + "6" * 32)
        results: list[int] = []
        barrier = threading.Barrier(8)

        def hit(index: int) -> None:
            with http_client(timeout=20.0) as own:
                barrier.wait()
                if index % 2:
                    results.append(telegram_post(own, web, update).status_code)
                else:
                    results.append(signed_post(own, web, "/webhooks/whatsapp", params).status_code)

        threads = [threading.Thread(target=hit, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert results == [200] * 8
        assert wait_until(lambda: len(telegram.sent) > before, timeout=5)
        assert [s.chat_id for s in telegram.sent[before:]] == [4141]
        assert db_rows(web, "SELECT count(*) FROM inboundmessage") == [(2,)]
        assert db_rows(web, "SELECT count(*) FROM outbox WHERE event_key LIKE 'reply:telegram:6001:%'") == [
            (1,)
        ]
        assert web.log().count("Booting worker") >= 2


def test_whatsapp_configured_without_auth_token_refuses_to_start(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "PUBLIC_BASE_URL": "https://bot.example.com",
    }
    result = run_web_command(["web", "--port", str(free_port())], env=env, cwd=tmp_path)
    assert result.returncode != 0
    assert "TWILIO_AUTH_TOKEN" in result.stderr


def test_webhook_benchmark_runs_small_and_prints_its_figures_last() -> None:
    script = Path(__file__).resolve().parents[1] / "bench" / "webhooks.py"
    done = subprocess.run(
        [sys.executable, str(script), "--requests", "30", "--workers", "1", "--connections", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"whatsapp_rps", "bare_flask_rps", "ratio", "status_callback_ratio"} <= result.keys()
    assert result["all_200"] is True and result["whatsapp_rps"] > 0 and result["bare_flask_rps"] > 0
