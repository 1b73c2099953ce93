"""network.enrollment: what the network does to the first enrollment request."""

from __future__ import annotations

from typing import Literal

from ...network import Fault, Rule
from .. import DeviceLife, NetworkPath, Setting, WorldCondition, world_condition

EnrollmentPath = Literal["delivered", "reset", "dropped", "corrupted", "replayed"]
ENROLLMENT: Setting[EnrollmentPath] = Setting(
    "network",
    "enrollment",
    EnrollmentPath,
    "delivered",
    "what the network does to the first enrollment request: resets the connection, closes it "
    "without an answer, damages the body, or delivers it and then a replayed copy",
)
_FAULTS: dict[str, Fault] = {
    "reset": "reset",
    "dropped": "drop",
    "corrupted": "corrupt",
    "replayed": "replay",
}


@world_condition
class EnrollmentPathCondition(WorldCondition):
    name = "network.enrollment"
    settings = (ENROLLMENT,)

    def network_path(self, life: DeviceLife, path: NetworkPath) -> None:
        fault = _FAULTS.get(ENROLLMENT.planned(life.world))
        if fault is not None:
            path.rules.append(Rule("POST", "/enrollment", fault))
