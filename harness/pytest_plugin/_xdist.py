"""pytest-xdist scheduling: every device of a scenario with steps goes to one worker.

The devices of such a scenario live together (their TPMs, their network paths) while its
steps run, so its items must not be split. xdist's load scheduling sends single tests,
and its `xdist_group` marker works by renaming node ids, which the pytest releases that
keep the id apart from its string form do not allow. A scheduler of the documented
`pytest_xdist_make_scheduler` hook says it directly instead: a scenario file with steps is
one unit of work, every other test is its own, as under load.
"""

from __future__ import annotations

from typing import Any

import pytest


def steps_scheduling(config: pytest.Config, log: Any, stepped_files: frozenset[str]) -> Any:
    """LoadScopeScheduling whose scope is the file for a scenario with steps, else the test."""
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    class StepsTogether(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return path if path in stepped_files else nodeid

    return StepsTogether(config, log)
