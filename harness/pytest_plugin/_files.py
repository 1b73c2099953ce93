"""Which files are scenarios: YAML under a `scenarios` directory, or YAML with a top-level `groups:`."""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ..scenario import Scenario

_SCENARIO_SUFFIXES = (".yaml", ".yml")
_GROUPS_LINE = re.compile(rb"^groups\s*:", re.MULTILINE)


def is_scenario_file(path: Path) -> bool:
    """A scenario is YAML under a `scenarios` directory, or YAML with a top-level `groups:` key."""
    if path.suffix not in _SCENARIO_SUFFIXES:
        return False
    if "scenarios" in path.parent.parts:
        return True
    try:
        return _GROUPS_LINE.search(path.read_bytes()) is not None
    except OSError:
        return False


def scenarios_in_args(config: pytest.Config) -> list[Scenario]:
    """The scenario files the workers will collect, found in the controller (which collects nothing)."""
    from ..errors import ScenarioError
    from ..scenario import load_scenario

    ignored = config.getini("norecursedirs")
    found: list[Path] = []
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::")[0])
        if path.is_file():
            candidates = [path]
        elif path.is_dir():
            candidates = sorted(_walk_yaml(path, ignored))
        else:
            continue
        found.extend(p for p in candidates if is_scenario_file(p))
    scenarios = []
    for path in dict.fromkeys(found):
        try:
            scenarios.append(load_scenario(path))
        except ScenarioError:
            continue  # the worker that collects it reports the error, with file and line
    return scenarios


def _walk_yaml(root: Path, ignored: list[str]) -> list[Path]:
    out: list[Path] = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [
            d for d in subdirs if not d.startswith(".") and not any(fnmatch.fnmatch(d, p) for p in ignored)
        ]
        out.extend(Path(directory, f) for f in files if f.endswith(_SCENARIO_SUFFIXES))
    return out
