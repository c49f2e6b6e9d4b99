"""The locked requirement sets (requirements/*.lock.txt, made by ``bash scripts/lock.sh``) still
satisfy pyproject.toml, and the environment the tests run in was installed from the test lock."""

from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _pins(lock: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements" / lock).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, pinned = line.partition("==")
        assert sep, f"{lock}: {line!r} is not pinned with =="
        pins[canonicalize_name(name.split("[", 1)[0])] = pinned.split(";", 1)[0].strip()
    return pins


@pytest.mark.parametrize(
    ("lock", "groups"),
    [("serve.lock.txt", ("dependencies",)), ("test.lock.txt", ("dependencies", "test", "china"))],
)
def test_lock_satisfies_pyproject(lock: str, groups: tuple[str, ...]) -> None:
    pins = _pins(lock)
    wanted = [
        Requirement(text)
        for group in groups
        for text in (
            PYPROJECT["dependencies"]
            if group == "dependencies"
            else PYPROJECT["optional-dependencies"][group]
        )
    ]
    problems = []
    for req in wanted:
        pinned = pins.get(canonicalize_name(req.name))
        if pinned is None:
            problems.append(f"{req.name} is not in {lock}")
        elif not req.specifier.contains(pinned, prereleases=True):
            problems.append(f"{req.name}=={pinned} in {lock} does not satisfy {req}")
    assert not problems, "; ".join(problems) + " (run: bash scripts/lock.sh)"


def test_environment_is_the_test_lock() -> None:
    mismatched = []
    for name, pinned in _pins("test.lock.txt").items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            mismatched.append(f"{name} missing")
            continue
        if installed != pinned:
            mismatched.append(f"{name} {installed} != {pinned}")
    assert not mismatched, (
        "installed packages differ from requirements/test.lock.txt: " + ", ".join(mismatched)
    )
