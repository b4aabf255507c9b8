"""Smoke tests of ``bench/conversation.py`` and ``bench/webhooks.py``: tiny sizes, run as scripts,
last line is the JSON result."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "conversation.py"
REQUIRED = (
    "p50_ms",
    "p99_ms",
    "p50_ms_1k",
    "p99_ms_1k",
    "p50_ms_1m",
    "p99_ms_1m",
    "scale_ratio_1m_vs_1k",
    "scale_ratio_p99",
    "shipments_small",
    "shipments_large",
    "questions",
)


def _run(cache: Path) -> tuple[dict, str, str]:
    args = [*"--small 20 --large 150 --questions 30 --warmup 5 --cache-dir".split(), str(cache)]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=SCRIPT.parents[1],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]), done.stdout, done.stderr


def test_conversation_benchmark_prints_its_figures_as_json_last(tmp_path: Path) -> None:
    result, stdout, stderr = _run(tmp_path)

    assert set(REQUIRED) <= result.keys()
    for key in REQUIRED[:8]:
        assert isinstance(result[key], float | int) and math.isfinite(result[key]) and result[key] > 0, key
    assert (result["shipments_small"], result["shipments_large"], result["questions"]) == (20, 150, 30)
    assert result["p50_ms"] == result["p50_ms_1m"] and result["p99_ms"] == result["p99_ms_1m"]
    assert math.isclose(
        result["scale_ratio_1m_vs_1k"], result["p50_ms_1m"] / result["p50_ms_1k"], rel_tol=0.01, abs_tol=0.002
    )
    assert result["unexpected_replies"] == 0  # every answer was the status path, found or not as expected
    assert result["full_scans"] == []
    assert "ix_inbound_address_at" in result["lookup_plan"]  # the hourly count never scans the table
    assert "scale ratio" in stdout and "building" in stderr

    again, _, stderr = _run(tmp_path)  # the built databases are cached by size
    assert "building" not in stderr
    assert again["shipments_large"] == 150


WEBHOOKS = SCRIPT.with_name("webhooks.py")


def test_webhooks_benchmark_prints_its_figures_as_json_last() -> None:
    done = subprocess.run(
        [sys.executable, str(WEBHOOKS), "--requests", "70", "--workers", "1", "--threads", "2"],
        cwd=SCRIPT.parents[1],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for key in ("whatsapp_rps", "bare_flask_rps", "ratio", "status_callback_rps", "status_callback_ratio"):
        assert isinstance(result[key], float) and math.isfinite(result[key]) and result[key] > 0, key
    assert result["all_200"] is True  # every question and callback was answered, none refused
