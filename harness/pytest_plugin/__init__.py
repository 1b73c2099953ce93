"""pytest plugin: scenario YAML files as tests, one test per device.

`pytest scenarios/` collects every scenario file (a YAML file under a `scenarios`
directory, or one with a top-level `groups:`) and runs each device end to end,
exactly as `harness run` does: the same plans, the same per-device function
(harness.fleet run_and_check), the same status read from the server's admin API.

One reference server per run. Without xdist the pytest process owns it; with
`-n N` the controller owns it and hands its address, admin token and vendor CA
directory to the workers in `workerinput`, so every worker's devices enroll
with the same server, which stops when the run ends.

The module imports the harness lazily: it is loaded by every pytest run in an
environment where the harness is installed, and most of those collect no scenario.
"""

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
)
from ._items import DeviceItem, DeviceMismatch, ScenarioFile, explain

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
]
