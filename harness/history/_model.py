"""What a history keeps of a run and of each device: enough to compare, chart and judge flakiness."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import PureWindowsPath

from ..results import DeviceResult, RunResult


@dataclass(frozen=True)
class DeviceView:
    """A device in one run, as diff, trends and flakiness see it."""

    key: str  # "<scenario name>/<group>/<index>@<seed>": the same device in every run
    group: str
    name: str
    world: str  # digest of the world it was planned in
    status: str  # "" when the device has no result
    detail: str
    outcome: str  # matched | mismatched | error
    checkpoint: str = ""  # where a mismatch happened: "step: expected X, actual Y"
    error: str = ""
    seconds: float = 0.0
    tpm_seconds: float = 0.0

    @property
    def state(self) -> tuple[str, str, str]:
        """What changes when a device changes: its status, its detail, matched or not."""
        return (self.status, self.detail, self.outcome)

    @property
    def shown(self) -> str:
        if self.outcome == "error":
            return f"error: {self.error.splitlines()[0] if self.error else ''}"
        text = f"{self.status} / {self.detail}" if self.detail else self.status or "no result"
        return text + ("" if self.outcome == "matched" else " (mismatch)")


@dataclass(frozen=True)
class RunInfo:
    """One run: when, on which code, and its totals."""

    fingerprint: str
    started_at: str
    code: str
    suite: str  # the scenario names it ran, sorted, comma-separated
    total: int
    matched: int
    mismatched: int
    errors: int
    wall_seconds: float
    tpm_seconds: float
    by_detail: dict[str, int] = field(default_factory=dict)
    id: int = 0  # its row in a history; 0 for a results.json


@dataclass(frozen=True)
class RunView:
    info: RunInfo
    devices: dict[str, DeviceView]


def outcome_of(device: DeviceResult) -> str:
    return "error" if device.error else "matched" if device.matched else "mismatched"


def key_of(device: DeviceResult) -> str:
    """The device's stable key; results written before keys existed fall back to scenario/group/name."""
    return device.key or f"{PureWindowsPath(device.scenario).stem}/{device.group}/{device.name}"


def view_of(device: DeviceResult) -> DeviceView:
    missed = device.failed_checkpoint
    actual = device.actual
    return DeviceView(
        key=key_of(device),
        group=device.group,
        name=device.name,
        world=device.world,
        status=actual.status.value if actual else "",
        detail=actual.detail.value if actual else "",
        outcome=outcome_of(device),
        checkpoint=f"{missed.step}: expected {missed.expected}, actual {missed.actual}" if missed else "",
        error=device.error,
        seconds=device.seconds,
        tpm_seconds=device.tpm_seconds,
    )


def mix(devices: dict[str, DeviceView]) -> dict[str, int]:
    """Devices by what the report shows: the status detail, or the status when it has none."""
    return dict(Counter((d.detail or d.status or "no result") for d in devices.values()))


def fingerprint(result: RunResult) -> str:
    """Equal for the same run however often it is recorded or read back."""
    return hashlib.sha256(result.summary.model_dump_json().encode()).hexdigest()[:32]


def run_view(result: RunResult) -> RunView:
    summary = result.summary
    devices = {v.key: v for v in map(view_of, result.devices)}
    suite = ",".join(sorted({k.split("/", 1)[0] for k in devices}))
    info = RunInfo(
        fingerprint=fingerprint(result),
        started_at=summary.started_at,
        code=summary.code,
        suite=suite,
        total=summary.total,
        matched=summary.matched,
        mismatched=summary.mismatched,
        errors=summary.errors,
        wall_seconds=summary.wall_seconds,
        tpm_seconds=summary.tpm_seconds,
        by_detail=mix(devices),
    )
    return RunView(info, devices)
