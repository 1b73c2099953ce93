"""The scenario format: a fleet of device groups, each a world and an expectation.

Every setting describes the world (platform, OS build, TPM, vendor CA trust);
only `expect` names an outcome, and it never leaves the harness's controller.

These are the static parts; the world conditions' fields (tpm.state, network.aik_ca, a
`world:` step's keys...) are added from the registry of harness.world by _assembly.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar

from pydantic import (
    BeforeValidator,
    Field,
    field_validator,
    model_validator,
)

from ..catalog import VENDORS, firmware_version
from ..tpm import BackendSpec
from ..windows import parse_build
from ..world import REGISTRY, Strict
from ._steps import PrincipalSpec, Step
from ._types import (
    VIRTUAL_PLATFORMS,
    Backend,
    EKKind,
    Expectation,
    Name,
    Ownership,
    Platform,
    SanLayout,
    TPMFamilySetting,
)


class Hardware(Strict):
    manufacturer: str | None = None
    model: str | None = None


def _tcti(value: object) -> object:
    if not isinstance(value, str):
        return value
    # The registry's own parser, so a group's TPM is named exactly as --backend device:SPEC.
    return BackendSpec.parse(f"device:{value}").tcti


class SectionChecks(Strict):
    """A group's section; its conditions' fields are added from the registry (harness.world)."""

    section: ClassVar[str] = ""

    @model_validator(mode="after")
    def _conditions_agree(self) -> SectionChecks:
        fields = type(self).model_fields
        for condition in REGISTRY.conditions():
            mine = [s for s in condition.settings if s.section == self.section]
            # Only an assembled model (scenario_models) holds the conditions' fields.
            if mine and all(s.name in fields for s in mine):
                problem = condition.check_section(self)
                if problem:
                    raise ValueError(problem)
        return self


class TPMSettings(SectionChecks):
    """The TPM a device has, as its vendor's factory made it."""

    section: ClassVar[str] = "tpm"

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
        "amd, microsoft, pluton, ...) or a TCG id such as id:49465800",
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


class ClientSettings(SectionChecks):
    """The Windows client build and what happens to it during enrollment."""

    section: ClassVar[str] = "client"


class EntraSettings(SectionChecks):
    """How the device joined Entra and where its token comes from."""

    section: ClassVar[str] = "entra"


class NetworkSettings(SectionChecks):
    """The path between the device and the services."""

    section: ClassVar[str] = "network"


class HistorySettings(SectionChecks):
    """What happened to the device before the scenario starts."""

    section: ClassVar[str] = "history"


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
    upn_domain: str
    expect: Expectation
    line: int | None = None
    # Where each tpm setting was written ('groups[1].tpm.state', line), for later errors.
    tpm_settings_at: dict[str, tuple[str, int | None]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _world_is_possible(self) -> ResolvedGroup:
        for condition in REGISTRY.conditions():
            problem = condition.check_group(self)
            if problem:
                raise ValueError(problem)
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
