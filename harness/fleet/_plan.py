"""From scenario groups to device plans: the world each device lives in.

A plan is everything a worker needs to build one device, and nothing about
what the device is expected to end up as: expectations stay with the
controller, keyed by the plan's key.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from faker import Faker

from ..catalog import ODM_CA, PHYSICAL_MODELS, PLATFORMS, VENDORS, firmware_version
from ..client import ClientBehaviour, Inventory
from ..scenario import Expectation, ResolvedGroup, Scenario
from ..world import REGISTRY, PlanDraft, TPMPlan


@dataclass(frozen=True)
class DevicePlan:
    key: str  # "<scenario>/<group>/<index>", unique in a run
    scenario: str
    group: str
    index: int
    emm_device_id: str
    inventory: Inventory
    behaviour: ClientBehaviour
    tpm: TPMPlan
    # Every registered world setting's value by path ('tpm.state'), as the conditions read it.
    world: Mapping[str, object] = field(default_factory=dict)


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "big")


def _device_id(*parts: object) -> str:
    digest = hashlib.sha256(":".join(map(str, ("device", *parts))).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def plan_group(scenario: Scenario, group: ResolvedGroup) -> list[DevicePlan]:
    fake = Faker("en_US")
    fake.seed_instance(_seed(scenario.seed, scenario.name, group.name))
    profile = PLATFORMS.get(group.platform)
    plans = []
    for index in range(group.count):
        if profile is not None:
            manufacturer, model, default_vendor = (
                profile.manufacturer,
                profile.model,
                profile.tpm_vendor,
            )
            prefix = profile.name_prefix
        else:
            manufacturer, model, default_vendor = fake.random_element(PHYSICAL_MODELS)
            prefix = "DESKTOP" if "OptiPlex" in model else "LAPTOP"
        manufacturer = group.hardware.manufacturer or manufacturer
        model = group.hardware.model or model
        first, last = fake.first_name(), fake.last_name()
        inventory = Inventory(
            device_name=f"{prefix}-{fake.bothify('???####').upper()}",
            serial=fake.bothify("PF#?##??#").upper(),
            manufacturer=manufacturer,
            model=model,
            os_version=group.os_build,
            ownership="Corporate" if group.ownership == "corporate" else "Personal",
            upn=f"{first}.{last}@{group.upn_domain}".lower(),
        )
        plans.append(
            DevicePlan(
                key=f"{scenario.name}/{group.name}/{index}",
                scenario=scenario.path,
                group=group.name,
                index=index,
                emm_device_id=_device_id(scenario.seed, scenario.name, group.name, index),
                inventory=inventory,
                **_world_plan(group, default_vendor),
            )
        )
    return plans


def _world_plan(group: ResolvedGroup, default_vendor: str) -> dict[str, Any]:
    """What the registered conditions add to the factory's TPM and the client's behaviour."""
    draft = PlanDraft(
        behaviour=ClientBehaviour(),
        tpm=_tpm_plan(group, default_vendor),
        world={s.path: s.of(group) for s in REGISTRY.settings()},
    )
    for condition in REGISTRY.conditions():
        condition.plan(group, draft)
    return {"behaviour": draft.behaviour, "tpm": draft.tpm, "world": draft.world}


def _tpm_plan(group: ResolvedGroup, default_vendor: str) -> TPMPlan:
    settings = group.tpm
    if settings.tcti is not None:
        # What the TPM is, it says itself (GetCapability, its EK certificate); nothing is made.
        return TPMPlan(
            family="2.0",
            manufacturer_id="as reported",
            model=f"external TPM ({settings.tcti})",
            firmware="as reported",
            ek_algorithm=settings.ek,
            one_rdn=True,
            issuer=None,
            tcti=settings.tcti,
        )
    chosen = (settings.vendor or default_vendor).lower()
    vendor = VENDORS.get(chosen)
    if vendor is not None:
        manufacturer_id, model, firmware, issuer = (
            vendor.manufacturer_id,
            vendor.model,
            vendor.firmware,
            vendor.key,
        )
    else:  # a raw TCG id: a contract manufacturer's CA signs its EK certificate
        manufacturer_id, model, firmware, issuer = "id:" + chosen[3:].upper(), "unknown", "1.0", ODM_CA[0]
    return TPMPlan(
        family=settings.family,
        manufacturer_id=manufacturer_id,
        model=settings.model or model,
        firmware=firmware_version(settings.firmware or firmware),
        ek_algorithm=settings.ek,
        one_rdn=settings.san_layout == "one-rdn",
        issuer=issuer,
    )


def plan_fleet(scenarios: list[Scenario]) -> tuple[list[DevicePlan], dict[str, Expectation]]:
    plans: list[DevicePlan] = []
    expectations: dict[str, Expectation] = {}
    for scenario in scenarios:
        for group in scenario.groups:
            for plan in plan_group(scenario, group):
                plans.append(plan)
                expectations[plan.key] = group.expect
    return plans, expectations
