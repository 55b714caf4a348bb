"""The environment the tests run in is the one uv.lock pins: what CI tests is what installs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
# Put in every virtualenv by venv itself, not by the lock.
_SEEDED = {"pip", "setuptools"}


def _locked() -> dict[str, set[str]]:
    """Each locked package's versions (some have one per range of Python versions)."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    versions: dict[str, set[str]] = {}
    for package in lock["package"]:
        versions.setdefault(canonicalize_name(package["name"]), set()).add(package["version"])
    return versions


def _installed() -> dict[str, str]:
    return {
        canonicalize_name(dist.metadata["Name"]): dist.version for dist in metadata.distributions()
    }


def test_every_installed_package_is_the_locked_version() -> None:
    locked = _locked()
    drift = {
        name: (version, sorted(locked.get(name, ())))
        for name, version in _installed().items()
        if name not in _SEEDED and version not in locked.get(name, ())
    }
    assert not drift, f"installed (version, locked version) differ: {drift}; run `make install`"


def test_every_dependency_of_pyproject_is_installed() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    installed = _installed()
    missing = [
        spec for spec in wanted if canonicalize_name(Requirement(spec).name) not in installed
    ]
    assert not missing


def test_installed_packages_have_what_they_require() -> None:
    check = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
