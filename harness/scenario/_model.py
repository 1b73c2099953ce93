"""The scenario format: a fleet of device groups, each a world and an expectation.

Every setting describes the world (platform, OS build, TPM, vendor CA trust);
only `expect` names an outcome, and it never leaves the harness's controller.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from ..catalog import VENDORS, firmware_version
from ..status import AttestationStatus, StatusDetail
from ..tpm import BackendSpec
from ..windows import parse_build

# The value types of the world's settings; device plans carry the same types.
Platform = Literal[
    "physical",
    "hyper-v",
    "azure-vm",
    "avd",
    "cloud-pc",
    "dev-box",
    "vmware",
    "virtualbox",
    "kvm",
    "parallels",
    "xen",
]
VIRTUAL_PLATFORMS: frozenset[str] = frozenset(
    {"hyper-v", "azure-vm", "avd", "cloud-pc", "dev-box", "vmware", "virtualbox", "kvm", "parallels", "xen"}
)
TPMFamilySetting = Literal["2.0", "1.2", "none"]
EKKind = Literal["rsa2048", "ecc256"]
SanLayout = Literal["one-rdn", "rdn-per-attribute"]
EKCertificateSource = Literal["vendor-ca", "unlisted-ca", "none"]
TPMState = Literal[
    "ready",
    "lockout",
    "owner-auth-unknown",
    "endorsement-disabled",
    "storage-disabled",
    "not-started",
]
MDMKeySetting = Literal["absent", "present"]
TPMChange = Literal["reset-lockout", "lockout"]
EntraJoin = Literal["tpm", "software", "offline-domain-join", "none"]
TokenSource = Literal["own-device", "previous-device", "foreign-tenant", "lagging-replica"]
AikCaPath = Literal["reachable", "refused", "reset"]
EnrollmentPath = Literal["delivered", "reset", "dropped", "corrupted", "replayed"]
NonceSource = Literal["primary", "lagging-replica"]
Ownership = Literal["corporate", "personal"]


def _backend(value: object) -> object:
    return BackendSpec.parse(value) if isinstance(value, str) else value


# The TPM backend registry's own type, written in YAML as the CLI's --backend takes it.
Backend = Annotated[
    BackendSpec,
    BeforeValidator(_backend),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "examples": ["process", "docker", "device:/dev/tpmrm0"]}),
]
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Hardware(_Strict):
    manufacturer: str | None = None
    model: str | None = None


class TPMSettings(_Strict):
    """The TPM a device has, as its vendor's factory made it."""

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
        "a CA of the same vendor that the AIK CA has not imported, or nobody (no certificate)",
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


class ClientSettings(_Strict):
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


class EntraSettings(_Strict):
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


class NetworkSettings(_Strict):
    """The path between the device and the services."""

    aik_ca: AikCaPath = Field(
        default="reachable", description="the AIK CA refuses connections or resets them"
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


class Expectation(_Strict):
    status: AttestationStatus
    detail: StatusDetail = StatusDetail.NONE

    @model_validator(mode="after")
    def _detail_fits_status(self) -> Expectation:
        if self.status is AttestationStatus.ATTESTED and self.detail is not StatusDetail.NONE:
            raise ValueError("an 'Attested' device has no status detail")
        if self.status is AttestationStatus.NOT_STARTED and self.detail is not StatusDetail.NONE:
            raise ValueError("a 'Not started' device has no status detail")
        if self.status is AttestationStatus.NOT_ATTESTED and self.detail is StatusDetail.NONE:
            raise ValueError("a 'Not attested' device needs the status detail it is expected to show")
        return self


class GroupSettings(_Strict):
    """Settings a group can take; `defaults` holds the same, for every group."""

    platform: Platform | None = None
    os_build: str | None = None
    ownership: Ownership | None = None
    hardware: Hardware | None = None
    tpm: TPMSettings | None = None
    client: ClientSettings | None = None
    entra: EntraSettings | None = None
    network: NetworkSettings | None = None
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


class PrincipalSpec(_Strict):
    """An admin of the scenario's server; 'admin' (with Remote tasks) always exists."""

    name: Name
    remote_tasks: bool = False


class WorldChange(_Strict):
    """Heal or break part of a group's world after its first enrollment."""

    group: Name
    aik_ca: AikCaPath | None = None
    tpm: TPMChange | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> WorldChange:
        if self.aik_ca is None and self.tpm is None:
            raise ValueError("a world step changes aik_ca or tpm")
        return self


class AttestAction(_Strict):
    """The Attest device action on every device of some groups, as one admin."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    groups: Annotated[list[Name], Field(min_length=1)]
    principal: Name = Field(default="admin", alias="as")
    expect_response: Literal[202, 400, 403, 404, 429] = 202


class GroupList(_Strict):
    groups: Annotated[list[Name], Field(min_length=1)]


class ClockAdvance(_Strict):
    seconds: Annotated[float, Field(gt=0, le=10 * 365 * 86_400)]


class GroupExpectation(Expectation):
    """What every device of a group should show in the report at this point."""

    group: Name


STEP_KINDS = ("world", "attest", "check_in", "advance_clock", "expect")


class Step(_Strict):
    """One step after the first enrollment; exactly one of its keys is set."""

    world: WorldChange | None = None
    attest: AttestAction | None = None
    check_in: GroupList | None = None
    advance_clock: ClockAdvance | None = None
    expect: GroupExpectation | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        given = [kind for kind in STEP_KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            raise ValueError(f"a step has exactly one of {', '.join(STEP_KINDS)} (got {len(given)})")
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in STEP_KINDS if getattr(self, kind) is not None)

    def groups(self) -> list[str]:
        if self.world is not None:
            return [self.world.group]
        if self.attest is not None:
            return list(self.attest.groups)
        if self.check_in is not None:
            return list(self.check_in.groups)
        if self.expect is not None:
            return [self.expect.group]
        return []


class ScenarioFile(_Strict):
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


class ResolvedGroup(_Strict):
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
    upn_domain: str
    expect: Expectation
    line: int | None = None

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
        return self

    @property
    def virtual(self) -> bool:
        return self.platform in VIRTUAL_PLATFORMS


class Scenario(_Strict):
    name: str
    description: str
    seed: int
    path: str
    groups: list[ResolvedGroup]
    principals: list[PrincipalSpec] = []
    steps: list[Step] = []
    backend: Backend | None = None

    @property
    def device_count(self) -> int:
        return sum(g.count for g in self.groups)
