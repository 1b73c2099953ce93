"""network.ek_service: the TPM vendor's online EK-certificate service refuses connections or
resets them (matters to TPMs whose EK certificate is not in NV)."""

from __future__ import annotations

from typing import Literal

from ...network import RefusingEndpoint, ResettingEndpoint
from .. import DeviceLife, NetworkPath, Setting, WorldCondition, world_condition

EKServicePath = Literal["reachable", "refused", "reset"]
EK_SERVICE_PATH: Setting[EKServicePath] = Setting(
    "network",
    "ek_service",
    EKServicePath,
    "reachable",
    "the TPM vendor's online EK-certificate service refuses connections or resets them (matters "
    "to TPMs whose EK certificate is not in NV)",
)


@world_condition
class EKServicePathCondition(WorldCondition):
    name = "network.ek_service"
    settings = (EK_SERVICE_PATH,)

    def network_path(self, life: DeviceLife, path: NetworkPath) -> None:
        match EK_SERVICE_PATH.planned(life.world):
            case "refused":
                path.ek_service = path.enter(RefusingEndpoint()).url
            case "reset":
                path.ek_service = path.enter(ResettingEndpoint()).url
