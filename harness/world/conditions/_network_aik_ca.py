"""network.aik_ca: the AIK CA refuses connections, resets them, or (flaky) resets a share of
them drawn anew each run; and a `world:` step's `aik_ca`, which heals or breaks that path later."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ...network import FlakyEndpoint, RefusingEndpoint, ResettingEndpoint
from .. import DeviceLife, NetworkPath, Setting, StepChange, WorldCondition, world_condition

AikCaPath = Literal["reachable", "refused", "reset", "flaky"]
AIK_CA: Setting[AikCaPath] = Setting(
    "network",
    "aik_ca",
    AikCaPath,
    "reachable",
    "the AIK CA refuses connections or resets them; 'flaky': it resets a share of them "
    "(aik_ca_failure_share), drawn anew each run",
)
FAILURE_SHARE: Setting[float] = Setting(
    "network",
    "aik_ca_failure_share",
    Annotated[float, Field(ge=0.0, le=1.0)],
    0.5,
    "with aik_ca 'flaky': the share of connections reset (0 to 1)",
)


@world_condition
class AikCaCondition(WorldCondition):
    name = "network.aik_ca"
    settings = (AIK_CA, FAILURE_SHARE)
    step = StepChange("aik_ca", AikCaPath | None, order=10)

    def network_path(self, life: DeviceLife, path: NetworkPath) -> None:
        match AIK_CA.planned(life.world):
            case "refused":
                path.aik_ca = path.enter(RefusingEndpoint()).url
            case "reset":
                path.aik_ca = path.enter(ResettingEndpoint()).url
            case "flaky":
                share = float(FAILURE_SHARE.planned(life.world))
                relay = path.enter(FlakyEndpoint(path.aik_ca, share, life.fault_seed))
                path.logged.append(relay)
                path.aik_ca = relay.url

    def change(self, life: DeviceLife, value: Any) -> None:
        life.change_world({AIK_CA.path: value})
