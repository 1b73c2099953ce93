"""Fleets: plans from scenarios, the per-device strategy, and the controller."""

from ..catalog import PLATFORMS, VENDORS, PlatformProfile, Vendor
from ._device import DeviceRun, FleetEnvironment, run_device
from ._plan import DevicePlan, TPMPlan, plan_fleet
from ._runner import RunOptions, run_fleet

__all__ = [
    "PLATFORMS",
    "VENDORS",
    "DevicePlan",
    "DeviceRun",
    "FleetEnvironment",
    "PlatformProfile",
    "RunOptions",
    "TPMPlan",
    "Vendor",
    "plan_fleet",
    "run_device",
    "run_fleet",
]
