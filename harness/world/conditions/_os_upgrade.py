"""A `world:` step's `os_upgrade`: a Windows update to a newer build."""

from __future__ import annotations

from typing import Any

from pydantic import field_validator

from ...windows import parse_build
from .. import DeviceLife, StepChange, Strict, WorldCondition, world_condition


class OSUpgrade(Strict):
    """A Windows update to a newer build."""

    build: str

    @field_validator("build")
    @classmethod
    def _windows_build(cls, value: str) -> str:
        if parse_build(value) is None:
            raise ValueError(f"'{value}' is not a Windows 10/11 version like 10.0.22631.2792")
        return value


@world_condition
class OSUpgradeCondition(WorldCondition):
    name = "os.upgrade"
    step = StepChange("os_upgrade", OSUpgrade | None, order=40)

    def change(self, life: DeviceLife, value: Any) -> None:
        life.upgrade_os(value.build)
