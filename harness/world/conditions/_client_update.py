"""A `world:` step's `client_update: {aik_support: true}`: a client update that brings AIK
support to a build that sent neither AIKPub nor AIKCert."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from pydantic import Field

from .. import DeviceLife, StepChange, Strict, WorldCondition, world_condition


class ClientUpdate(Strict):
    """A Windows client update (the enrollment client and its TPM attestation support)."""

    aik_support: Literal[True] = Field(
        description="the update brings AIK support: the client creates an AIK and sends AIKPub and AIKCert"
    )


@world_condition
class ClientUpdateCondition(WorldCondition):
    name = "client.update"
    step = StepChange("client_update", ClientUpdate | None, order=45)

    def change(self, life: DeviceLife, value: Any) -> None:
        if life.client is not None:
            life.client.update_client(replace(life.behaviour, sends_aik_items=True))
