"""From scenario groups to device plans: the world each device lives in.

A plan is everything a worker needs to build one device, and nothing about
what the device is expected to end up as: expectations stay with the
controller, keyed by the plan's key.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Literal

from faker import Faker

from ..catalog import ODM_CA, PHYSICAL_MODELS, PLATFORMS, VENDORS, firmware_version, unlisted_ca_key
from ..client import ClientBehaviour, Inventory
from ..scenario import (
    AikCaPath,
    EKKind,
    EKServicePath,
    EnrollmentPath,
    Expectation,
    NonceSource,
    PushPath,
    ResolvedGroup,
    Scenario,
    TPMFamilySetting,
    TPMState,
)

# Whose identity provider issues the device's token: its tenant's, another tenant's, or a
# replica of its tenant's whose clock is behind (from the scenario's entra.token).
IdentitySource = Literal["tenant", "foreign-tenant", "lagging-replica"]


@dataclass(frozen=True)
class TPMPlan:
    family: TPMFamilySetting
    manufacturer_id: str
    model: str
    firmware: str  # id:XXXXXXXX
    ek_algorithm: EKKind
    one_rdn: bool
    issuer: str | None  # the key of the harness CA that signs the EK certificate
    state: TPMState = "ready"  # what happened to the TPM after the Entra join
    mdm_key_present: bool = False  # an earlier enrollment left the MDM key in the TPM
    # The vendor's CA issued the EK certificate at manufacturing and published it on its online
    # EK-certificate service instead of writing it to NV (Intel PTT, AMD fTPM).
    ek_certificate_online: bool = False
    # An external TPM the harness did not make, reached by this TCTI; used as it is.
    tcti: str | None = None


@dataclass(frozen=True)
class NetworkPlan:
    aik_ca: AikCaPath = "reachable"
    ek_service: EKServicePath = "reachable"
    enrollment: EnrollmentPath = "delivered"
    nonce_from: NonceSource = "primary"
    identity: IdentitySource = "tenant"
    push: PushPath = "open"


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
    network: NetworkPlan = NetworkPlan()


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
            # A shared (self-deployed) device has no user.
            upn=""
            if group.enrollment.path == "shared-device"
            else f"{first}.{last}@{group.upn_domain}".lower(),
        )
        plans.append(
            DevicePlan(
                key=f"{scenario.name}/{group.name}/{index}",
                scenario=scenario.path,
                group=group.name,
                index=index,
                emm_device_id=_device_id(scenario.seed, scenario.name, group.name, index),
                inventory=inventory,
                behaviour=_behaviour(group),
                tpm=_tpm_plan(group, default_vendor),
                network=_network_plan(group),
            )
        )
    return plans


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
    signer: str | None = {
        "vendor-ca": issuer,
        "online": issuer,
        "unlisted-ca": unlisted_ca_key(issuer),
        "none": None,
    }[settings.ek_certificate]
    return TPMPlan(
        family=settings.family,
        manufacturer_id=manufacturer_id,
        model=settings.model or model,
        firmware=firmware_version(settings.firmware or firmware),
        ek_algorithm=settings.ek,
        one_rdn=settings.san_layout == "one-rdn",
        issuer=signer,
        state=settings.state,
        mdm_key_present=settings.mdm_key == "present",
        ek_certificate_online=settings.ek_certificate == "online",
    )


def _behaviour(group: ResolvedGroup) -> ClientBehaviour:
    return ClientBehaviour(
        sends_aik_items=group.client.aik_support,
        provisioning=group.enrollment.path,
        idle=group.client.activity == "idle",
        entra_key_in_tpm=group.entra.join == "tpm",
        entra_joined=group.entra.join != "none",
        token_for_previous_device=group.entra.token == "previous-device",
        powers_off_after_nonce=group.client.power_off_after == "nonce",
        diagnostic_log_bytes=group.client.diagnostic_log_kib * 1024,
        # MS-MDE2 enrollment before 5.0 carries no attestation items.
        first_enrollment_version="4.0" if group.history.enrolled_before_attestation else "",
    )


def _network_plan(group: ResolvedGroup) -> NetworkPlan:
    identity: dict[str, IdentitySource] = {
        "foreign-tenant": "foreign-tenant",
        "lagging-replica": "lagging-replica",
    }
    return NetworkPlan(
        aik_ca=group.network.aik_ca,
        ek_service=group.network.ek_service,
        enrollment=group.network.enrollment,
        nonce_from=group.network.nonce_from,
        identity=identity.get(group.entra.token, "tenant"),
        push=group.network.push,
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
