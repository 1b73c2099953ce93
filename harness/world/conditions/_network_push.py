"""network.push: the push channel an enrolled device holds to the MDM service, open or blocked
(a firewall, no network). A blocked device hears no push: device actions wait for its next
scheduled check-in."""

from __future__ import annotations

from typing import Literal

from ...network import RefusingEndpoint
from .. import DeviceLife, NetworkPath, Setting, WorldCondition, world_condition

PushPath = Literal["open", "blocked"]
PUSH: Setting[PushPath] = Setting(
    "network",
    "push",
    PushPath,
    "open",
    "the push channel an enrolled device holds to the MDM service: 'blocked' (a firewall, no "
    "network) and device actions wait for its next scheduled check-in",
)


@world_condition
class PushChannelCondition(WorldCondition):
    name = "network.push"
    settings = (PUSH,)

    def network_path(self, life: DeviceLife, path: NetworkPath) -> None:
        if PUSH.planned(life.world) == "blocked":
            path.push = path.enter(RefusingEndpoint()).url  # refused, as by a firewall
