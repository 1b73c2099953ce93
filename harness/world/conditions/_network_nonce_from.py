"""network.nonce_from: a load balancer sends the nonce request to the lagging replica."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from ...network import Route
from .. import DeviceLife, NetworkPath, Setting, WorldCondition, WorldValues, world_condition
from ._lagging_replica import LAGGING_REPLICA

NonceSource = Literal["primary", "lagging-replica"]
NONCE_FROM: Setting[NonceSource] = Setting(
    "network",
    "nonce_from",
    NonceSource,
    "primary",
    "'lagging-replica': a load balancer sends the nonce request to a replica whose clock is two hours behind",
)


@world_condition
class NonceFrom(WorldCondition):
    name = "network.nonce_from"
    settings = (NONCE_FROM,)

    def helpers(self, world: WorldValues) -> Iterable[str]:
        return (LAGGING_REPLICA,) if NONCE_FROM.planned(world) == "lagging-replica" else ()

    def network_path(self, life: DeviceLife, path: NetworkPath) -> None:
        if NONCE_FROM.planned(life.world) == "lagging-replica":
            path.routes.append(Route("/enrollment/nonce", life.helper(LAGGING_REPLICA)["url"]))
