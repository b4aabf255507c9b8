"""Project-level checks: settings documented, lint clean, dependencies audited (``--audit``)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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


@pytest.mark.audit
def test_dependencies_have_no_known_vulnerabilities() -> None:
    """pip-audit over the installed environment (``pytest --audit``: it asks PyPI's advisory
    service, so it needs the internet). Every one of the project's own dependencies must have been
    audited: a run that could look none of them up proves nothing."""
    result = subprocess.run(
        [sys.executable, "-m", "pip_audit", "--progress-spinner", "off", "--timeout", "15"]
        + ["--skip-editable", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"pip-audit gave no report (exit {result.returncode}):\n{result.stderr[-3000:]}")
    found = {canonicalize_name(d["name"]): d for d in report["dependencies"]}
    ours = [canonicalize_name(Requirement(requirement).name) for requirement in _requirements()]
    # An audited dependency has "vulns"; a skipped one only a "skip_reason".
    not_audited = {
        name: "not installed" if name not in found else found[name]["skip_reason"]
        for name in ours
        if name not in found or "skip_reason" in found[name]
    }
    assert not_audited == {}, "pip-audit could not look these up"
    vulnerable = {d["name"]: [v["id"] for v in d["vulns"]] for d in found.values() if d.get("vulns")}
    assert vulnerable == {}, result.stderr


def _requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [*project["dependencies"], *project["optional-dependencies"]["test"]]
