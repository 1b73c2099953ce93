"""Scenario steps: what happens to a fleet after its first enrollment, and the admins who act."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from ..protocol import REPORT_COLUMNS
from ..status import AttestationStatus
from ..world import REGISTRY, Strict
from ._types import Expectation, Name, Ownership


class PrincipalSpec(Strict):
    """An admin of the scenario's server; 'admin' (with Remote tasks) always exists."""

    name: Name
    remote_tasks: bool = False


class WorldChange(Strict):
    """Heal or break part of a group's world after its first enrollment.

    Its keys are the registered conditions' step keys (harness.world); several changes in
    one step happen in their registered order.
    """

    group: Name

    @model_validator(mode="after")
    def _changes_something(self) -> WorldChange:
        names = [change.name for change in REGISTRY.step_changes()]
        if not any(getattr(self, name, None) for name in names):
            raise ValueError(f"a world step changes one of {', '.join(names)}")
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
