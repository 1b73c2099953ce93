"""Expected versus actual: a device's result, from what it did and what the server reports.

Only the controller knows what each device is expected to end up as; it reads
the actual status from the server's admin API and compares.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from ..results import AttemptRecord, CheckRecord, DeviceEvidence, DeviceResult, Outcome
from ..scenario import Expectation
from ..status import AttestationStatus, StatusDetail
from ._admin import AdminReader
from ._device import DeviceRun
from ._plan import DevicePlan


def check_device(
    plan: DevicePlan, expectation: Expectation, run: DeviceRun, admin: AdminReader
) -> DeviceResult:
    """Compare what the server reports for a device that has run with what was expected."""
    detail = admin.device(plan.emm_device_id)
    history: list[AttemptRecord] = []
    expected = Outcome(status=expectation.status, detail=expectation.detail)
    actual = None
    evidence = DeviceEvidence(client_steps=run.steps)
    if detail is not None:
        actual = Outcome(
            status=AttestationStatus(detail["Device attestation status"]),
            detail=StatusDetail(detail["Status detail"]),
        )
        attempts = detail.get("attempts") or []
        last = attempts[-1] if attempts else {}
        evidence.request_items = {k: str(v) for k, v in (last.get("items") or {}).items()}
        evidence.checks = [CheckRecord(**c) for c in last.get("checks") or []]
        evidence.decision = str(detail.get("decision", ""))
        history = [_attempt(a) for a in attempts]
    error = run.error or ("" if detail is not None else "the server has no record of this device")
    # A harness failure (a dead TPM, say) is never a match, whatever the server recorded.
    matched = actual is not None and actual == expected and not error
    return DeviceResult(
        name=plan.inventory.device_name,
        group=plan.group,
        scenario=plan.scenario,
        device_id=plan.emm_device_id,
        expected=expected,
        actual=actual,
        matched=matched,
        error=error,
        inventory=plan_inventory(plan, detail),
        evidence=evidence,
        tpm_seconds=round(run.tpm_seconds, 4),
        seconds=round(run.seconds, 4),
        attempts=history,
        engine=run.engine,
        key=device_key(plan),
        world=world_digest(plan),
        # A failure's trace is what a TPM engineer asks for first; a match's only on request.
        trace=run.trace if run.keep_trace or not matched else [],
    )


def unrun_result(
    plan: DevicePlan, expectation: Expectation, *, error: str = "", not_applicable: str = ""
) -> DeviceResult:
    """The result of a device that did not run to the end (not applicable here, or cut short),
    under the same key and world as if it had, so that the run history follows it."""
    return DeviceResult(
        name=plan.inventory.device_name,
        group=plan.group,
        scenario=plan.scenario,
        device_id=plan.emm_device_id,
        expected=Outcome(status=expectation.status, detail=expectation.detail),
        matched=False,
        error=error,
        not_applicable=not_applicable,
        inventory=plan_inventory(plan, None),
        key=device_key(plan),
        world=world_digest(plan),
    )


def device_key(plan: DevicePlan) -> str:
    """Who the device is across runs: scenario name, group, index and the scenario's seed."""
    return f"{plan.key}@{plan.seed}"


def world_digest(plan: DevicePlan) -> str:
    """A digest of the world the device was planned in (not where the scenario file lies).

    Two runs of a device with equal digests met the same world, so a different outcome
    between them is flakiness, not a change.
    """
    return hashlib.sha256(repr(replace(plan, scenario="")).encode()).hexdigest()[:16]


def _attempt(row: dict[str, Any]) -> AttemptRecord:
    return AttemptRecord(
        time=str(row.get("finished_at") or row.get("started_at") or ""),
        status=str(row.get("status", "")),
        detail=str(row.get("detail", "")),
        trigger=str(row.get("trigger", "")),
        decision=str(row.get("decision", "")),
    )


def plan_inventory(plan: DevicePlan, detail: dict[str, Any] | None) -> dict[str, str]:
    inventory = {
        "Device name": plan.inventory.device_name,
        "UPN": plan.inventory.upn,
        "OS version": plan.inventory.os_version,
        "Ownership": plan.inventory.ownership,
        "Manufacturer": plan.inventory.manufacturer,
        "Model": plan.inventory.model,
        "Serial": plan.inventory.serial,
        "TPM": f"{plan.tpm.family} {plan.tpm.manufacturer_id} {plan.tpm.model} {plan.tpm.firmware}",
    }
    if detail is not None:
        for column in ("TPM version", "TPM manufacturer", "Last check-in", "Enrollment date"):
            inventory[column] = str(detail.get(column, ""))
        inventory["TPM firmware"] = str(detail.get("tpmFirmware", ""))
    return inventory
