"""pytest plugin: scenario YAML files as tests, one test per device.

`pytest scenarios/` collects every scenario file (a YAML file under a `scenarios`
directory, or one with a top-level `groups:`) and runs each device end to end through
the same run object as `harness run` (harness.fleet FleetRun): the same plans, the same
per-device run and comparison, the same steps for a scenario that has them.

One reference server per run. Without xdist the pytest process owns the run; with
`-n N` the controller owns it and hands its session (addresses, tokens, vendor CA
directory) to the workers in `workerinput`, so every worker's devices enroll with the
same server, which stops when the run ends. The devices of a scenario with steps share
an xdist group, so one worker runs them together.

The module imports the harness lazily: it is loaded by every pytest run in an
environment where the harness is installed, and most of those collect no scenario.
"""

from ._explain import explain
from ._files import is_scenario_file
from ._hooks import (
    pytest_addoption,
    pytest_collect_file,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_configure_node,
    pytest_runtest_makereport,
    pytest_sessionfinish,
    pytest_unconfigure,
    pytest_xdist_make_scheduler,
)
from ._items import DeviceItem, DeviceMismatch, ScenarioFile

__all__ = [
    "DeviceItem",
    "DeviceMismatch",
    "ScenarioFile",
    "explain",
    "is_scenario_file",
    "pytest_addoption",
    "pytest_collect_file",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_configure_node",
    "pytest_runtest_makereport",
    "pytest_sessionfinish",
    "pytest_unconfigure",
    "pytest_xdist_make_scheduler",
]
