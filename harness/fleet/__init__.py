"""Fleets: plans (the world only) from scenarios, the per-device strategy, and the controller.

`run_fleet` is `harness run`. Another driver (the pytest plugin, the benchmarks) builds on
the same pieces: `fleet_session` starts what a run shares, `run_and_check` runs one device
and compares, `check_device` compares a device that has run.
"""

from ..catalog import PLATFORMS, VENDORS, PlatformProfile, Vendor
from ._admin import AdminReader
from ._compare import check_device, run_and_check
from ._device import DeviceRun, FleetEnvironment, run_device
from ._partial import RunInterrupted, RunStopped
from ._plan import DevicePlan, plan_fleet, plan_group
from ._pool import Progress
from ._runner import run_fleet
from ._session import FleetSession, RunOptions, choose_backend, fleet_session

__all__ = [
    "PLATFORMS",
    "VENDORS",
    "AdminReader",
    "DevicePlan",
    "DeviceRun",
    "FleetEnvironment",
    "FleetSession",
    "PlatformProfile",
    "Progress",
    "RunInterrupted",
    "RunOptions",
    "RunStopped",
    "Vendor",
    "check_device",
    "choose_backend",
    "fleet_session",
    "plan_fleet",
    "plan_group",
    "run_and_check",
    "run_device",
    "run_fleet",
]
