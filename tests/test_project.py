"""Project-level checks: settings documented, lint clean, dependencies audited."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def documented_settings() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^([A-Z][A-Z0-9_]+)=", text, re.MULTILINE))


def test_every_setting_is_in_env_example_with_a_comment() -> None:
    names = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        names.add(alias.choices[0] if alias is not None else None)  # type: ignore[union-attr]
    documented = documented_settings()
    assert names - documented == set(), "settings missing from .env.example"
    assert documented - names == set(), ".env.example lists settings the code does not read"
    lines = (ROOT / ".env.example").read_text().splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^[A-Z][A-Z0-9_]+=", line):
            above = [previous for previous in lines[:index] if previous.strip()]
            assert above and above[-1].startswith(("#", *[f"{n}=" for n in documented])), line


def test_handlers_and_storage_never_import_channel_frameworks() -> None:
    pattern = re.compile(r"^\s*(from|import)\s+(telegram|twilio|flask)\b", re.MULTILINE)
    for folder in ("handlers", "storage"):
        for path in (ROOT / folder).rglob("*.py"):
            assert not pattern.search(path.read_text()), f"{path} imports a channel framework"


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed")
@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_is_clean(command: list[str]) -> None:
    result = subprocess.run(
        ["ruff", *command, "bot", "handlers", "storage", "tests", "bench"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dependencies_have_no_known_vulnerabilities() -> None:
    """pip-audit over the installed environment; when its advisory source cannot be reached (no
    network), say so and skip rather than fail."""
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip_audit",
                "--progress-spinner",
                "off",
                "--timeout",
                "15",
                "--skip-editable",
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("pip-audit: the advisory service did not answer in time")
    output = result.stdout + result.stderr
    unreachable = (
        "ConnectionError",
        "Max retries",
        "NameResolution",
        "Temporary failure",
        "timed out",
        "Failed to establish",
        "Network is unreachable",
        "ProxyError",
        "SSLError",
    )
    if result.returncode != 0 and any(marker in output for marker in unreachable):
        pytest.skip("pip-audit: the advisory service (PyPI / OSV) cannot be reached from here")
    assert result.returncode == 0, output
