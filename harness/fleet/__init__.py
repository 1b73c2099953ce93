"""Fleets: plans (the world only) from scenarios, the per-device strategy, and the run.

`FleetRun` is one run, and every front end drives it: `harness run` and the benchmarks
(`FleetRun(...).run()`, or `run_fleet`), the pytest plugin (`start`, `run_device`,
`run_steps`; `join` in a pytest-xdist worker). Each judged device reaches the run's
`observers` as a `FinishedDevice`, in the process that ran it.
"""

from ..catalog import PLATFORMS, VENDORS, PlatformProfile, Vendor
from ._admin import AdminReader
from ._applicable import Inapplicable, inapplicable_groups
from ._compare import check_device
from ._device import DeviceRun, FleetEnvironment, run_device
from ._partial import RunInterrupted, RunStopped
from ._plan import DevicePlan, plan_fleet, plan_group
from ._pool import Progress
from ._recording import RecordedEnrollment, record_enrollment, server_trust
from ._runner import DeviceObserver, FinishedDevice, FleetRun, run_fleet
from ._session import FleetSession, RunOptions, choose_backend
from ._wire import DeviceTask, run_from_json, run_to_json, task_from_json, task_to_json

__all__ = [
    "PLATFORMS",
    "VENDORS",
    "AdminReader",
    "DeviceObserver",
    "DevicePlan",
    "DeviceRun",
    "DeviceTask",
    "FinishedDevice",
    "FleetEnvironment",
    "FleetRun",
    "FleetSession",
    "Inapplicable",
    "PlatformProfile",
    "Progress",
    "RecordedEnrollment",
    "RunInterrupted",
    "RunOptions",
    "RunStopped",
    "Vendor",
    "check_device",
    "choose_backend",
    "inapplicable_groups",
    "plan_fleet",
    "plan_group",
    "record_enrollment",
    "run_device",
    "run_fleet",
    "run_from_json",
    "run_to_json",
    "server_trust",
    "task_from_json",
    "task_to_json",
]
