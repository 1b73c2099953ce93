"""The scenario format: a fleet of device groups, each a world and an expectation.

Every setting describes the world (platform, OS build, TPM, vendor CA trust);
only `expect` names an outcome, and it never leaves the harness's controller.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    BeforeValidator,
    Field,
    field_validator,
    model_validator,
)

from ..catalog import VENDORS, firmware_version
from ..tpm import BackendSpec
from ..windows import parse_build
from ._steps import PrincipalSpec, Step
from ._types import (
    ONLINE_EK_VENDORS,
    VIRTUAL_PLATFORMS,
    AikCaPath,
    Backend,
    EKCertificateSource,
    EKKind,
    EKServicePath,
    EnrollmentPath,
    EntraJoin,
    Expectation,
    MDMKeySetting,
    Name,
    NonceSource,
    Ownership,
    Platform,
    ProvisioningPath,
    PushPath,
    SanLayout,
    Strict,
    TokenSource,
    TPMFamilySetting,
    TPMState,
)


class Hardware(Strict):
    manufacturer: str | None = None
    model: str | None = None


def _tcti(value: object) -> object:
    if not isinstance(value, str):
        return value
    # The registry's own parser, so a group's TPM is named exactly as --backend device:SPEC.
    return BackendSpec.parse(f"device:{value}").tcti


class TPMSettings(Strict):
    """The TPM a device has, as its vendor's factory made it."""

    tcti: Annotated[str, BeforeValidator(_tcti)] | None = Field(
        default=None,
        description="an external TPM the harness did not make, reached by this TCTI (e.g. "
        "device:/dev/tpmrm0, mssim:host=127.0.0.1,port=2321, swtpm:path=/run/tpm.sock); the "
        "group's devices use it one at a time, as it is",
    )
    family: TPMFamilySetting = "2.0"
    vendor: str | None = Field(
        default=None,
        description="a vendor name of the harness's catalogue (infineon, nuvoton, stmicro, intel, "
        "amd, microsoft) or a TCG id such as id:49465800",
    )
    model: str | None = None
    firmware: str | None = Field(default=None, description="firmware version, e.g. '7.85' or 'id:00070055'")
    ek: EKKind = "rsa2048"

    @field_validator("vendor")
    @classmethod
    def _known_vendor(cls, value: str | None) -> str | None:
        if value is None or value.lower() in VENDORS or re.fullmatch(r"id:[0-9A-Fa-f]{8}", value):
            return value
        raise ValueError(f"unknown vendor '{value}': use one of {', '.join(sorted(VENDORS))} or id:XXXXXXXX")

    @field_validator("firmware")
    @classmethod
    def _firmware(cls, value: str | None) -> str | None:
        if value is None:
            return value
        firmware_version(value)
        return value

    san_layout: SanLayout = "one-rdn"
    ek_certificate: EKCertificateSource = Field(
        default="vendor-ca",
        description="who signed the EK certificate in NV: the vendor's CA (trusted by the AIK CA), "
        "a CA of the same vendor that the AIK CA has not imported, the vendor's CA but published "
        "on its online EK-certificate service instead of NV (Intel PTT, AMD fTPM), or nobody",
    )
    state: TPMState = Field(
        default="ready",
        description="what happened to the TPM after the device joined Entra: a dictionary-attack "
        "lockout from failed PIN attempts, owner authorization changed by someone else, a hierarchy "
        "disabled by the platform, or a reset after which firmware never sent TPM2_Startup",
    )
    mdm_key: MDMKeySetting = Field(
        default="absent",
        description="'present': an earlier enrollment left the MDM key persisted in the TPM",
    )


class ClientSettings(Strict):
    """The Windows client build and what happens to it during enrollment."""

    aik_support: bool = Field(
        default=True, description="false: an older build that creates no AIK and sends no AIK items"
    )
    power_off_after: Literal["nonce"] | None = Field(
        default=None,
        description="'nonce': the device powers off after fetching the enrollment nonce",
    )
    diagnostic_log_kib: Annotated[int, Field(ge=0, le=4096, strict=True)] = Field(
        default=0, description="a client build that attaches a diagnostic log of this size to the request"
    )
    activity: Literal["active", "idle"] = Field(
        default="active",
        description="'idle': in connected standby; a push is handled at its next maintenance wake "
        "(3 to 5 minutes), not within a minute or two",
    )


class EntraSettings(Strict):
    """How the device joined Entra and where its token comes from."""

    join: EntraJoin = Field(
        default="tpm",
        description="device key in the TPM, in software, in software after an offline domain join, "
        "or not joined at all (the token is a user token)",
    )
    token: TokenSource = Field(
        default="own-device",
        description="whose token the client presents: its own device's; one cached for the device "
        "object of an earlier join; one from another tenant's identity provider; or one from an "
        "identity-provider replica whose clock is two hours behind",
    )

    @model_validator(mode="after")
    def _token_needs_join(self) -> EntraSettings:
        if self.join == "none" and self.token == "previous-device":
            raise ValueError("a device that never joined has no earlier device object")
        return self


class NetworkSettings(Strict):
    """The path between the device and the services."""

    aik_ca: AikCaPath = Field(
        default="reachable", description="the AIK CA refuses connections or resets them"
    )
    ek_service: EKServicePath = Field(
        default="reachable",
        description="the TPM vendor's online EK-certificate service refuses connections or resets "
        "them (matters to TPMs whose EK certificate is not in NV)",
    )
    enrollment: EnrollmentPath = Field(
        default="delivered",
        description="what the network does to the first enrollment request: resets the connection, "
        "closes it without an answer, damages the body, or delivers it and then a replayed copy",
    )
    nonce_from: NonceSource = Field(
        default="primary",
        description="'lagging-replica': a load balancer sends the nonce request to a replica whose "
        "clock is two hours behind",
    )
    push: PushPath = Field(
        default="open",
        description="the push channel an enrolled device holds to the MDM service: 'blocked' (a "
        "firewall, no network, powered off) and device actions wait for its next scheduled check-in",
    )


class EnrollmentSettings(Strict):
    """How the device is provisioned and enrolled."""

    path: ProvisioningPath = Field(
        default="user-driven",
        description="user-driven; autopilot-preprovisioning (the technician flow: TPM attestation with "
        "the AIK service before the device is provisioned); shared-device (Autopilot self-deploying: "
        "the same TPM attestation, and no user: the device enrolls without a UPN)",
    )


class HistorySettings(Strict):
    """What happened to the device before the scenario starts."""

    enrolled_before_attestation: bool = Field(
        default=False,
        description="the device enrolled before enrollment attestation was on, with an older "
        "enrollment protocol that sends no attestation items, and has been updated since; it "
        "attests at its next enrollment (the Attest device action)",
    )


class GroupSettings(Strict):
    """Settings a group can take; `defaults` holds the same, for every group."""

    platform: Platform | None = None
    os_build: str | None = None
    ownership: Ownership | None = None
    hardware: Hardware | None = None
    tpm: TPMSettings | None = None
    client: ClientSettings | None = None
    entra: EntraSettings | None = None
    network: NetworkSettings | None = None
    history: HistorySettings | None = None
    enrollment: EnrollmentSettings | None = None
    upn_domain: str | None = None

    @field_validator("os_build")
    @classmethod
    def _windows_build(cls, value: str | None) -> str | None:
        if value is not None and parse_build(value) is None:
            raise ValueError(f"'{value}' is not a Windows 10/11 version like 10.0.22631.2792")
        return value


class Group(GroupSettings):
    name: Name
    count: Annotated[int, Field(ge=1, le=100_000, strict=True)] = 1
    description: str = ""
    expect: Expectation


class ScenarioFile(Strict):
    name: Name
    description: str = ""
    seed: int = 0
    defaults: GroupSettings = GroupSettings()
    groups: Annotated[list[Group], Field(min_length=1)]
    principals: list[PrincipalSpec] = Field(
        default_factory=list, description="admins besides 'admin', for attest steps"
    )
    steps: list[Step] = Field(default_factory=list, description="what happens after the first enrollment")
    backend: Backend | None = Field(
        default=None, description="where the devices' TPMs run; the --backend option wins"
    )


class ResolvedGroup(Strict):
    """A group with the scenario's defaults applied and every setting decided."""

    name: str
    count: int
    description: str
    platform: Platform
    os_build: str
    ownership: Ownership
    hardware: Hardware
    tpm: TPMSettings
    client: ClientSettings = ClientSettings()
    entra: EntraSettings = EntraSettings()
    network: NetworkSettings = NetworkSettings()
    history: HistorySettings = HistorySettings()
    enrollment: EnrollmentSettings = EnrollmentSettings()
    upn_domain: str
    expect: Expectation
    line: int | None = None
    # Where each tpm setting was written ('groups[1].tpm.state', line), for later errors.
    tpm_settings_at: dict[str, tuple[str, int | None]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _world_is_possible(self) -> ResolvedGroup:
        tpm = self.tpm
        if tpm.family != "2.0":
            changed = [
                name
                for name, value, default in (
                    ("state", tpm.state, "ready"),
                    ("ek_certificate", tpm.ek_certificate, "vendor-ca"),
                    ("mdm_key", tpm.mdm_key, "absent"),
                )
                if value != default
            ]
            if changed:
                raise ValueError(
                    f"tpm.{changed[0]} needs a TPM 2.0 (this group's tpm.family is {tpm.family})"
                )
        path = self.enrollment.path
        if path == "shared-device" and self.entra.join != "tpm":
            raise ValueError(
                "enrollment.path 'shared-device' self-deploys: it joins Entra with a TPM key "
                "(entra.join: tpm)"
            )
        if path == "autopilot-preprovisioning" and self.entra.join not in ("tpm", "offline-domain-join"):
            raise ValueError(
                "enrollment.path 'autopilot-preprovisioning' joins Entra (entra.join: tpm) or a domain "
                "(offline-domain-join)"
            )
        if tpm.ek_certificate == "online" and (tpm.vendor or "").lower() not in ONLINE_EK_VENDORS:
            raise ValueError(
                "tpm.ek_certificate 'online' is what Intel PTT and AMD fTPM do: set tpm.vendor "
                "to intel or amd (Windows knows no online EK-certificate service for others)"
            )
        return self

    @property
    def virtual(self) -> bool:
        return self.platform in VIRTUAL_PLATFORMS


class Scenario(Strict):
    name: str
    description: str
    seed: int
    path: str
    groups: list[ResolvedGroup]
    principals: list[PrincipalSpec] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    backend: Backend | None = None

    @property
    def device_count(self) -> int:
        return sum(g.count for g in self.groups)
