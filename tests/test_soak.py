"""The soak (``bench/soak.py``) at CI size: gunicorn with 4 ``cargobot web`` workers and two
``cargobot worker`` processes on one PostgreSQL schema, fake Telegram and Twilio servers answering
5 % of sends with 429 or 500, mixed traffic on both channels with redeliveries, staff holds,
updates and releases to a few hundred subscribers.

It runs as a subprocess, as an operator would run it, and the figures are its last line of
output. ``CARGOBOT_SOAK_SECONDS`` changes the traffic period (default 60 s; the whole test then
takes about 75 s on two cores).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_postgres

pytestmark = [pytest.mark.soak, pytest.mark.postgres, pytest.mark.e2e]

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "soak.py"
SECONDS = float(os.environ.get("CARGOBOT_SOAK_SECONDS", "60"))
SUBSCRIBERS = 300


def run_soak(*args: str, timeout: float) -> tuple[int, str, str]:
    """Run the soak; on timeout, SIGTERM first so that it stops every process it started."""
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        try:
            stdout, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        pytest.fail(f"the soak took longer than {timeout:.0f} s:\n{stdout[-4000:]}\n{stderr[-4000:]}")
    return process.returncode, stdout, stderr


def test_soak_loses_nothing_doubles_nothing_and_never_fails_a_webhook(tmp_path: Path) -> None:
    require_postgres()
    code, stdout, stderr = run_soak(
        "--seconds",
        f"{SECONDS:g}",
        "--subscribers",
        str(SUBSCRIBERS),
        "--workdir",
        str(tmp_path),
        timeout=SECONDS + 210,  # start, the drain's limit (120 s) and the stop
    )
    lines = stdout.strip().splitlines()
    assert lines, f"the soak printed nothing (exit {code}):\n{stderr[-4000:]}"
    detail = "\n".join(lines[-25:-1]) + ("\n" + stderr[-3000:] if stderr.strip() else "")
    try:
        figures = json.loads(lines[-1])
    except json.JSONDecodeError:
        pytest.fail(f"the soak ended without its figures (exit {code}):\n{stdout[-4000:]}\n{stderr[-6000:]}")

    # Nothing lost, nothing doubled (no kill here, so no in-flight allowance).
    assert figures["lost"] == 0, detail
    assert figures["duplicates"] == 0, detail
    # Every inbound message answered exactly once, on both channels, redeliveries included.
    assert figures["unanswered"] == 0 and figures["answered_twice"] == 0, detail
    # cargobot web never failed: no 5xx, no refused or dropped request, /healthz 200 throughout.
    assert figures["http_5xx"] == 0 and figures["http_non_200"] == 0, detail
    assert figures["transport_errors"] == 0, detail
    assert figures["healthz_failures"] == 0 and figures["healthz_polls"] > 0, detail
    assert figures["problems"] == [] and figures["ok"] is True, detail
    assert code == 0, detail

    # And the run really was a soak: both channels busy, redeliveries, fan-outs, injected faults.
    assert figures["whatsapp_inbound"] > 5 * SECONDS and figures["telegram_inbound"] > 5 * SECONDS, detail
    assert figures["redeliveries"] > 0 and figures["telegram_replies"] > 0, detail
    assert figures["alerts"] >= SUBSCRIBERS, detail  # 80 % of them get a hold and a release
    assert figures["templates"] > 0 and figures["status_callbacks"] > 0, detail
    injected = sum(
        figures.get(f"{fake}_http_{status}", 0) for fake in ("telegram", "twilio") for status in (429, 500)
    )
    assert injected > 0, detail
    assert {"inbound_per_s", "alerts_per_s", "p99_reply_ms", "seconds", "inbound"} <= figures.keys()
