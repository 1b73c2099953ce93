"""Scenario steps: what happens to a fleet after its first enrollment, and the admins who act."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from ..catalog import firmware_version
from ..protocol import REPORT_COLUMNS
from ..status import AttestationStatus
from ..windows import parse_build
from ._types import AikCaPath, Expectation, Name, Ownership, Strict, TPMChange


class PrincipalSpec(Strict):
    """An admin of the scenario's server; 'admin' (with Remote tasks) always exists."""

    name: Name
    remote_tasks: bool = False


class OSUpgrade(Strict):
    """A Windows update to a newer build."""

    build: str

    @field_validator("build")
    @classmethod
    def _windows_build(cls, value: str) -> str:
        if parse_build(value) is None:
            raise ValueError(f"'{value}' is not a Windows 10/11 version like 10.0.22631.2792")
        return value


class FirmwareUpdate(Strict):
    """The TPM vendor's firmware update: a new version, and the EK certificate re-issued for it."""

    firmware: str

    @field_validator("firmware")
    @classmethod
    def _firmware(cls, value: str) -> str:
        firmware_version(value)
        return value


class EntraChange(Strict):
    """'rejoin: tpm': the device joins Entra again with its key in the TPM (an Autopilot
    offline domain join completing its hybrid join). 'token: own-device': the token source is
    repaired (the identity-provider replica caught up, the tenant's own provider answers
    again); the device's next token is good."""

    rejoin: Literal["tpm"] | None = None
    token: Literal["own-device"] | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> EntraChange:
        if self.rejoin is None and self.token is None:
            raise ValueError("an entra change sets rejoin or token")
        return self


class ClientUpdate(Strict):
    """A Windows client update (the enrollment client and its TPM attestation support)."""

    aik_support: Literal[True] = Field(
        description="the update brings AIK support: the client creates an AIK and sends AIKPub and AIKCert"
    )


WORLD_CHANGES = ("aik_ca", "tpm", "firmware_update", "os_upgrade", "client_update", "entra", "wipe")


class WorldChange(Strict):
    """Heal or break part of a group's world after its first enrollment.

    Several changes in one step happen in the order of WORLD_CHANGES.
    """

    group: Name
    aik_ca: AikCaPath | None = None
    tpm: TPMChange | None = Field(
        default=None,
        description="'clear': TPM2_Clear through the platform hierarchy, as the firmware's Clear TPM "
        "does (new owner, storage keys and the persisted MDM key gone; the EK and its certificate stay)",
    )
    firmware_update: FirmwareUpdate | None = None
    os_upgrade: OSUpgrade | None = None
    client_update: ClientUpdate | None = None
    entra: EntraChange | None = None
    wipe: bool = Field(
        default=False,
        description="reset and re-enrolment: a new Windows install on a cleared TPM, a new Entra "
        "join and a new MDM enrollment (a new device record)",
    )

    @model_validator(mode="after")
    def _changes_something(self) -> WorldChange:
        if not any(getattr(self, name) for name in WORLD_CHANGES):
            raise ValueError(f"a world step changes one of {', '.join(WORLD_CHANGES)}")
        return self


class AttestAction(Strict):
    """The Attest device action on every device of some groups, as one admin."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    groups: Annotated[list[Name], Field(min_length=1)]
    principal: Name = Field(default="admin", alias="as")
    expect_response: Literal[202, 400, 403, 404, 429] = 202


class GroupList(Strict):
    groups: Annotated[list[Name], Field(min_length=1)]


class ClockAdvance(Strict):
    seconds: Annotated[float, Field(gt=0, le=10 * 365 * 86_400)]


# pending: not picked up yet (told by push or not); delivered: handed over at a check-in;
# completed: the device enrolled again with attestation.
ActionState = Literal["pending", "delivered", "completed"]


class GroupExpectation(Expectation):
    """What every device of a group should show in the report at this point."""

    group: Name
    action: ActionState | None = Field(
        default=None, description="the state of the device's latest Attest device action"
    )


class ReportFilter(Strict):
    """The report's drop-down filters."""

    status: AttestationStatus | None = None
    ownership: Ownership | None = None


class ReportSelection(Strict):
    """Select rows of the generated report (from the top) and run Attest device on them."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    select: Annotated[int, Field(ge=1, le=1000, strict=True)]
    principal: Name = Field(default="admin", alias="as")
    expect_response: Literal[202, 400, 403, 404, 429] = 202


class ReportQuery(Strict):
    """Generate the report as an admin does (filter, Generate report), check how many rows it
    has, and optionally select some and run Attest device from it."""

    filter: ReportFilter = ReportFilter()
    expect_total: Annotated[int, Field(ge=0, strict=True)] | None = None
    attest: ReportSelection | None = None

    @model_validator(mode="after")
    def _does_something(self) -> ReportQuery:
        if self.expect_total is None and self.attest is None:
            raise ValueError("a report step checks expect_total or runs attest (or both)")
        return self


class ReportColumns(Strict):
    """What every device of a group shows in the report's columns (only the columns named)."""

    group: Name
    columns: Annotated[dict[str, str], Field(min_length=1)]

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = [name for name in value if name not in REPORT_COLUMNS]
        if unknown:
            raise ValueError(f"'{unknown[0]}' is not a report column (one of: {', '.join(REPORT_COLUMNS)})")
        return value


STEP_KINDS = ("world", "attest", "check_in", "advance_clock", "expect", "report", "expect_report")


class Step(Strict):
    """One step after the first enrollment; exactly one of its keys is set."""

    world: WorldChange | None = None
    attest: AttestAction | None = None
    check_in: GroupList | None = None
    advance_clock: ClockAdvance | None = None
    expect: GroupExpectation | None = None
    report: ReportQuery | None = None
    expect_report: ReportColumns | None = None

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
        if self.expect_report is not None:
            return [self.expect_report.group]
        return []
