"""``cargobot serve``: webhooks and worker in one process, end to end against the fakes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from twilio.request_validator import RequestValidator

from tests.e2e import free_port, wait_for
from tests.fakes import FakeTelegram, FakeTwilio

pytestmark = pytest.mark.e2e

TOKEN = "424242:SERVE-token"
SID = "AC" + "3" * 32
AUTH = "serve-auth-token-0123"


def test_serve_answers_whatsapp_polls_telegram_and_delivers_alerts(tmp_path: Path) -> None:
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    with (
        FakeTelegram(token=TOKEN, poll_cap=0.5) as telegram,
        FakeTwilio(account_sid=SID, auth_token=AUTH) as twilio,
    ):
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
            "CARGOBOT_ADMINS": "whatsapp:+447700900001",
            "ALERT_GRACE_SECONDS": "0",
            "CARGOBOT_DISPATCH_INTERVAL_SECONDS": "0.5",
            "PUBLIC_BASE_URL": public,
            "TWILIO_ACCOUNT_SID": SID,
            "TWILIO_AUTH_TOKEN": AUTH,
            "TWILIO_WHATSAPP_FROM": "whatsapp:+447700900000",
            "TWILIO_API_BASE_URL": twilio.base_url,
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": telegram.base_url,
        }
        log_path = tmp_path / "serve.log"
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)],
                cwd=tmp_path,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:

            def healthy() -> bool:
                try:
                    return httpx.get(public + "/healthz", timeout=2).status_code == 200
                except httpx.TransportError:
                    return False

            assert wait_for(healthy), log_path.read_text()
            validator = RequestValidator(AUTH)

            def whatsapp(sender: str, body: str, sid: str) -> str:
                url = public + "/webhooks/whatsapp"
                form = {
                    "From": sender,
                    "To": "whatsapp:+447700900000",
                    "Body": body,
                    "MessageSid": sid,
                    "NumMedia": "0",
                }
                headers = {"X-Twilio-Signature": validator.compute_signature(url, form)}
                response = httpx.post(url, data=form, headers=headers, timeout=10)
                assert response.status_code == 200
                return response.text

            assert "MSKU9070323" in whatsapp(
                "whatsapp:+447700900001",
                "/add MSKU9070323 26MBAIM406532497 for +254700000301 optin",
                "SM" + "1" * 32,
            )
            # A Telegram customer (long polling: no webhook secret) subscribes, then staff release.
            telegram.push_message(9001, "ALERT 26MBAIM406532497")
            assert wait_for(lambda: any(s.chat_id == 9001 for s in telegram.sent)), log_path.read_text()
            whatsapp("whatsapp:+447700900001", "/release 26MBAIM406532497 CRM-1", "SM" + "2" * 32)
            assert wait_for(lambda: sum(s.chat_id == 9001 for s in telegram.sent) >= 2), log_path.read_text()
            assert "Release" in telegram.sent[-1].text or "release" in telegram.sent[-1].text
            health = httpx.get(public + "/healthz", timeout=2).json()
            assert health["worker_heartbeat_age_seconds"] is not None  # the in-process worker beats
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
    assert process.returncode == 0, log_path.read_text()
