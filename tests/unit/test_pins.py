"""Every pin lives in pyproject.toml; the deploy units' requirements files repeat them exactly."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;#]+)$")


def _name(raw: str) -> str:
    return re.sub(r"[-_.]+", "-", raw).lower()


def _pins(lines: list[str], where: str) -> dict[str, str]:
    pins = {}
    for line in lines:
        match = PIN.match(line.strip())
        assert match, f"{where}: {line.strip()!r} is not pinned as name==version"
        pins[_name(match.group(1))] = match.group(3)
    return pins


def _pyproject() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    return _pins(lines, "pyproject.toml")


def test_every_pyproject_dependency_is_pinned():
    assert _pyproject()  # raises on the first unpinned one


@pytest.mark.parametrize("requirements", ["functions/requirements.txt", "cloudrun_model/requirements.txt"])
def test_deploy_unit_requirements_repeat_pyproject_pins(requirements):
    lines = [line for line in (ROOT / requirements).read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    pinned = _pins(lines, requirements)
    project = _pyproject()
    missing = sorted(set(pinned) - set(project))
    assert not missing, f"{requirements} installs {missing}, which pyproject.toml does not pin"
    differ = {name: (version, project[name]) for name, version in pinned.items() if project[name] != version}
    assert not differ, f"{requirements} and pyproject.toml disagree (requirements, pyproject): {differ}"
