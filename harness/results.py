"""The results of a fleet run: what results.json holds and every report reads."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .status import AttestationStatus, StatusDetail


class Outcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: AttestationStatus
    detail: StatusDetail = StatusDetail.NONE


class CheckRecord(BaseModel):
    """One check the server ran on a device's evidence, as its admin API reported it.

    (The verifier's own result type is harness.verifier.Check; this is its record in a report.)
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    passed: bool
    detail: str = ""


class ClientStep(BaseModel):
    """One step the simulated Windows client took (TPM command, HTTP call)."""

    model_config = ConfigDict(extra="forbid")

    step: str
    ok: bool
    detail: str = ""
    seconds: float = 0.0


class DeviceEvidence(BaseModel):
    """What a device's result shows of its run: the client's steps, what it sent, the server's checks."""

    model_config = ConfigDict(extra="forbid")

    client_steps: list[ClientStep] = Field(default_factory=list)
    request_items: dict[str, str] = Field(default_factory=dict)  # context item -> summary
    checks: list[CheckRecord] = Field(default_factory=list)
    decision: str = ""  # the cause the server found: failing check or client error


class TPMCommand(BaseModel):
    """One TPM command as it crossed the TCTI: who sent it, what the TPM answered, how long it took."""

    model_config = ConfigDict(extra="forbid")

    source: str  # factory | world | client: which part of the device's life sent it
    command: str  # TPM2_CC name, e.g. TPM2_CC_CreatePrimary
    response: str  # decoded response code, e.g. TPM_RC_SUCCESS, TPM_RC_LOCKOUT
    rc: int = 0
    seconds: float = 0.0
    command_bytes: int = 0
    response_bytes: int = 0


def format_trace(commands: list[TPMCommand]) -> str:
    """The trace as a TPM engineer reads it: one command a line, in the order sent."""
    lines = [f"{'#':>4}  {'source':8} {'command':40} {'response':44} {'ms':>9} {'cmd B':>6} {'rsp B':>6}"]
    for number, c in enumerate(commands, 1):
        lines.append(
            f"{number:>4}  {c.source:8} {c.command:40} {c.response:44} {c.seconds * 1000:>9.3f} "
            f"{c.command_bytes:>6} {c.response_bytes:>6}"
        )
    return "\n".join(lines) + "\n"


class Checkpoint(BaseModel):
    """One expectation checked during a scenario's steps (a status, or an action's answer)."""

    model_config = ConfigDict(extra="forbid")

    step: str  # "enrollment", "step 4: expect", ...
    expected: str
    actual: str
    matched: bool
    reason: str = ""  # the server's decision or the action's answer


class AttemptRecord(BaseModel):
    """One attestation attempt in the server's history of a device, as its admin API reported it."""

    model_config = ConfigDict(extra="forbid")

    time: str  # when it finished ('' while unfinished), else when it started
    status: str
    detail: str = ""
    trigger: str = ""  # first-enrollment | device-retry | attest-action, as the device said
    decision: str = ""


class DeviceResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    group: str
    scenario: str
    device_id: str = ""
    expected: Outcome
    actual: Outcome | None = None  # None when the run itself failed for this device
    matched: bool
    error: str = ""  # a harness failure (not an attestation outcome)
    inventory: dict[str, str] = Field(default_factory=dict)
    evidence: DeviceEvidence = Field(default_factory=DeviceEvidence)
    tpm_seconds: float = 0.0  # time spent inside TPM commands
    seconds: float = 0.0  # wall time of this device's flow
    checkpoints: list[Checkpoint] = Field(default_factory=list)  # scenarios with steps only
    attempts: list[AttemptRecord] = Field(default_factory=list)  # the server's history, oldest first
    engine: str = ""  # the Docker engine its TPM ran on (docker backend), for a fleet over several
    # Why the device did not run: its world cannot be built in this run (a lagging replica with
    # --server). Neither a match nor a failure.
    not_applicable: str = ""
    # Stable across runs: "<scenario name>/<group>/<index>@<seed>", the same device tonight and last night.
    key: str = ""
    world: str = ""  # a digest of the world the device was planned in; equal worlds, comparable runs
    trace: list[TPMCommand] = Field(default_factory=list)  # kept for failures, or for all with --trace all

    @property
    def failed_checkpoint(self) -> Checkpoint | None:
        """The first checkpoint that did not match: where a mismatch happened."""
        return next((c for c in self.checkpoints if not c.matched), None)


class Summary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenarios: list[str]
    total: int
    matched: int
    mismatched: int
    errors: int
    by_status: dict[str, int]
    by_detail: dict[str, int]
    started_at: str
    wall_seconds: float
    tpm_seconds: float
    workers: int = 1
    server: str = ""
    harness_version: str = ""
    code: str = ""  # the code that ran: git:<commit>[+<digest of local changes>], else version:<v>
    # The run stopped before every device finished: Ctrl-C or SIGTERM ...
    interrupted: bool = False
    # ... or why it could not go on (the reference server stopped answering); empty otherwise.
    stopped: str = ""
    not_applicable: int = 0  # devices whose world this run could not build (not in mismatched)


class RunResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    summary: Summary
    devices: list[DeviceResult]

    @property
    def all_matched(self) -> bool:
        """Every device that ran matched (a not-applicable device did not run)."""
        return all(d.matched or d.not_applicable for d in self.devices)


def summarise(
    devices: list[DeviceResult],
    *,
    scenarios: list[str],
    started_at: str,
    wall_seconds: float,
    **extra: Any,
) -> Summary:
    statuses = Counter(d.actual.status.value for d in devices if d.actual is not None)
    details = Counter(d.actual.detail.value for d in devices if d.actual is not None)
    matched = sum(1 for d in devices if d.matched)
    skipped = sum(1 for d in devices if d.not_applicable)
    return Summary(
        scenarios=scenarios,
        total=len(devices),
        matched=matched,
        mismatched=len(devices) - matched - skipped,
        not_applicable=skipped,
        errors=sum(1 for d in devices if d.error),
        by_status=dict(statuses),
        by_detail=dict(details),
        started_at=started_at,
        wall_seconds=round(wall_seconds, 3),
        tpm_seconds=round(sum(d.tpm_seconds for d in devices), 3),
        **extra,
    )
