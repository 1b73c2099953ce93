"""network.aik_ca: the AIK CA refuses connections or resets them; and a `world:` step's
`aik_ca`, which heals or breaks that path later."""

from __future__ import annotations

from typing import Any, Literal

from ...network import RefusingEndpoint, ResettingEndpoint
from .. import DeviceLife, NetworkPath, Setting, StepChange, WorldCondition, world_condition

AikCaPath = Literal["reachable", "refused", "reset"]
AIK_CA: Setting[AikCaPath] = Setting(
    "network", "aik_ca", AikCaPath, "reachable", "the AIK CA refuses connections or resets them"
)


@world_condition
class AikCaCondition(WorldCondition):
    name = "network.aik_ca"
    settings = (AIK_CA,)
    step = StepChange("aik_ca", AikCaPath | None, order=10)

    def network_path(self, life: DeviceLife, path: NetworkPath) -> None:
        match AIK_CA.planned(life.world):
            case "refused":
                path.aik_ca = path.enter(RefusingEndpoint()).url
            case "reset":
                path.aik_ca = path.enter(ResettingEndpoint()).url

    def change(self, life: DeviceLife, value: Any) -> None:
        life.change_world({AIK_CA.path: value})
