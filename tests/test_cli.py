"""The command line as operations scripts use it: real subprocesses, stdout for output only."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes import FakeTelegram


def cargobot(
    *args: str,
    stdin: bytes = b"",
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    full_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "TELEGRAM_", "CARGOBOT_"))
    }
    full_env.update(env or {})
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        input=stdin,
        capture_output=True,
        env=full_env,
        cwd=cwd,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, result.stderr.decode()
    return result


@pytest.fixture
def db_env(tmp_path: Path) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "CARGOBOT_ADMINS": "console:boss"}


def test_refs_prints_one_array_per_line_and_survives_any_input() -> None:
    stdin = b"where is MSKU 907032-3?\n\ncall 0712345678\n" + b"\xff\xfe bad utf8 CSQU3054383\n"
    stdin += b"x" * 1_000_000 + b"\n"
    result = cargobot("refs", stdin=stdin)
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 5
    first = json.loads(lines[0])
    assert first[0] == {
        **first[0],
        "kind": "container",
        "value": "MSKU9070323",
        "valid": True,
        "carrier": "Maersk",
        "span": [9, 22],
    }
    assert json.loads(lines[1]) == [] and json.loads(lines[2]) == [] and json.loads(lines[4]) == []
    assert json.loads(lines[3])[0]["value"] == "CSQU3054383"


def test_refs_jsonl_reads_json_strings_with_newlines() -> None:
    stdin = json.dumps("line one\nAWB 176-12345675").encode() + b"\nnot json\n"
    lines = cargobot("refs", "--jsonl", stdin=stdin).stdout.decode().splitlines()
    assert json.loads(lines[0])[0]["value"] == "17612345675"
    assert json.loads(lines[1]) == []


def test_chat_json_answers_each_line(db_env: dict[str, str]) -> None:
    out = cargobot(
        "chat", "--as", "whatsapp:+254700000111", "--json", stdin=b"HELP\nMSKU9070323\n", env=db_env
    )
    answers = [json.loads(line) for line in out.stdout.decode().splitlines()]
    assert len(answers) == 2 and "ALERT" in answers[0]["replies"][0]
    assert "no record" in answers[1]["replies"][0]


def test_chat_jsonl_many_senders_and_staff(db_env: dict[str, str]) -> None:
    lines = [
        {"from": "console:boss", "text": "/help"},
        {"from": "whatsapp:+254700000112", "text": "/help"},
        {"from": "nobody", "text": "hi"},
    ]
    stdin = "\n".join(json.dumps(line) for line in lines).encode() + b"\n{broken\n"
    out = cargobot("chat", "--jsonl", stdin=stdin, env=db_env)
    answers = [json.loads(line) for line in out.stdout.decode().splitlines()]
    assert len(answers) == 4
    assert "/release" in answers[0]["replies"][0]
    assert "error" in answers[2] and "error" in answers[3]


def test_demo_runs_from_any_folder_without_credentials(tmp_path: Path) -> None:
    script = b"TGHU7345017\n:as console:staff\n/find TGHU7345017\n:quit\nHELP\n"
    out = cargobot("demo", stdin=script, cwd=tmp_path, env={})
    text = out.stdout.decode()
    assert "cargobot demo" in text and "Container TGHU7345017" in text
    assert "You are now console:staff." in text and "Timeline" in text  # piped, ':as' still works
    assert "Send me your container" not in text  # and ':quit' ended it before HELP
    assert (tmp_path / "cargobot-demo.db").exists()
    assert "setup plugin" not in out.stderr.decode()


def test_init_db_and_backup(db_env: dict[str, str], tmp_path: Path) -> None:
    assert "database ready" in cargobot("init-db", env=db_env).stdout.decode()
    target = tmp_path / "copy.db"
    cargobot("backup", str(target), env=db_env)
    tables = {row[0] for row in sqlite3.connect(target).execute("SELECT name FROM sqlite_master")}
    assert "shipment" in tables and "outbox" in tables
    again = cargobot("backup", str(target), env=db_env, check=False)
    assert again.returncode != 0 and b"exists" in again.stderr


def test_purge_needs_days(db_env: dict[str, str]) -> None:
    assert "purged" in cargobot("purge", "--older-than", "30", env=db_env).stdout.decode()
    assert cargobot("purge", "--older-than", "0", env=db_env, check=False).returncode != 0


def test_setup_telegram_sets_webhook_and_menu() -> None:
    token = "111:SETUP-token"
    with FakeTelegram(token=token) as fake:
        env = {
            "TELEGRAM_BOT_TOKEN": token,
            "TELEGRAM_API_BASE_URL": fake.base_url,
            "PUBLIC_BASE_URL": "https://bot.example",
            "TELEGRAM_WEBHOOK_SECRET": "s3cret-value",
        }
        out = cargobot("setup-telegram", env=env).stdout.decode()
        assert "https://bot.example/webhooks/telegram" in out
        [hook] = fake.calls_to("setWebhook")
        assert hook["secret_token"] == "s3cret-value"
        assert fake.calls_to("setMyCommands")
        cargobot("setup-telegram", "--remove", env=env)
        assert fake.calls_to("deleteWebhook")


def test_setup_telegram_without_webhook_settings_changes_nothing() -> None:
    token = "111:SETUP-token"
    with FakeTelegram(token=token) as fake:
        env = {"TELEGRAM_BOT_TOKEN": token, "TELEGRAM_API_BASE_URL": fake.base_url, "PUBLIC_BASE_URL": ""}
        refused = cargobot("setup-telegram", env=env, check=False)
        assert refused.returncode != 0
        assert b"PUBLIC_BASE_URL and TELEGRAM_WEBHOOK_SECRET" in refused.stderr
        assert fake.calls_to("setMyCommands") == [] and fake.calls_to("setWebhook") == []
        cargobot("setup-telegram", "--remove", env=env)  # polling mode: the menu, no webhook
        assert fake.calls_to("setMyCommands") and fake.calls_to("deleteWebhook")


def test_secrets_never_reach_stderr(db_env: dict[str, str]) -> None:
    token = "999:VERY-SECRET-token-value"
    with FakeTelegram(token=token) as fake:
        env = {
            **db_env,
            "TELEGRAM_BOT_TOKEN": token,
            "TELEGRAM_API_BASE_URL": fake.base_url,
            "LOG_LEVEL": "DEBUG",
            "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
            "TWILIO_AUTH_TOKEN": "twilio-secret-xyz",
            "TWILIO_WHATSAPP_FROM": "whatsapp:+447700900000",
        }
        result = cargobot("dispatch", "--once", "--json", env=env)
    assert token not in result.stderr.decode() and "twilio-secret-xyz" not in result.stderr.decode()


def test_import_twice_changes_nothing_the_second_time(db_env: dict[str, str]) -> None:
    sample = Path(__file__).parent / "data" / "shipments.csv"
    first = cargobot("import", str(sample), env=db_env, check=False)
    assert b"created" in first.stdout, first.stderr
    second = cargobot("import", str(sample), env=db_env, check=False)
    assert b" 0 created, 0 updated" in second.stdout


def test_json_logs_are_one_object_per_line(db_env: dict[str, str]) -> None:
    result = cargobot(
        "chat",
        "--as",
        "console:x",
        "--json",
        stdin=b"hi\n",
        env={**db_env, "LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"},
    )
    lines = [line for line in result.stderr.decode().splitlines() if line.strip()]
    assert lines, "expected some log lines at DEBUG"
    for line in lines:
        entry = json.loads(line)
        assert {"time", "level", "logger", "message"} <= entry.keys()
    assert json.loads(result.stdout.decode())["replies"]
