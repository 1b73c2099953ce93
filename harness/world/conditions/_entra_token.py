"""entra.token: whose token the client presents.

Its own device's; one its token broker still holds for the device object of an earlier
join; one from another tenant's identity provider (a helper with its own keys, which the
MDM service does not trust); or one from the lagging replica's identity provider.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from .. import (
    DeviceLife,
    HelperContext,
    NetworkPath,
    PlanDraft,
    Setting,
    WorldCondition,
    WorldValues,
    helper_service,
    world_condition,
)
from ._entra_join import JOIN
from ._lagging_replica import LAGGING_REPLICA

if TYPE_CHECKING:
    from ...client import ClientBehaviour
    from ...scenario import ResolvedGroup

TokenSource = Literal["own-device", "previous-device", "foreign-tenant", "lagging-replica"]
TOKEN: Setting[TokenSource] = Setting(
    "entra",
    "token",
    TokenSource,
    "own-device",
    "whose token the client presents: its own device's; one cached for the device object of an "
    "earlier join; one from another tenant's identity provider; or one from an identity-provider "
    "replica whose clock is two hours behind",
)
FOREIGN_IDENTITY = "foreign-identity"


@helper_service(FOREIGN_IDENTITY, "another tenant's identity provider")
@contextmanager
def _foreign_identity(context: HelperContext) -> Iterator[Mapping[str, str]]:
    from ...server import EmbeddedServer, ServerConfig

    config = ServerConfig(data_dir=context.workdir / "foreign-tenant", manufacturer_roots=context.roots)
    with EmbeddedServer(config, host=context.host) as server:
        yield {"url": server.url}


@world_condition
class EntraToken(WorldCondition):
    name = "entra.token"
    settings = (TOKEN,)

    def check_section(self, section: BaseModel) -> str | None:
        if JOIN.in_section(section) == "none" and TOKEN.in_section(section) == "previous-device":
            return "a device that never joined has no earlier device object"
        return None

    def plan(self, group: ResolvedGroup, draft: PlanDraft) -> None:
        previous = TOKEN.of(group) == "previous-device"
        draft.behaviour = replace(draft.behaviour, token_for_previous_device=previous)

    def helpers(self, world: WorldValues) -> Iterable[str]:
        token = TOKEN.planned(world)
        if token == "foreign-tenant":
            return (FOREIGN_IDENTITY,)
        return (LAGGING_REPLICA,) if token == "lagging-replica" else ()

    def network_path(self, life: DeviceLife, path: NetworkPath) -> None:
        token = TOKEN.planned(life.world)
        if token == "foreign-tenant":
            path.identity = life.helper(FOREIGN_IDENTITY)["url"]
        elif token == "lagging-replica":
            path.identity = life.helper(LAGGING_REPLICA)["url"]

    def reinstalled(self, behaviour: ClientBehaviour) -> ClientBehaviour:
        return replace(behaviour, token_for_previous_device=False)  # a new install's broker starts empty
