"""The shipped scenarios, end to end on real swtpm: every status detail, and recovery."""

from __future__ import annotations

from pathlib import Path

from harness.fleet import RunOptions, run_fleet
from harness.results import DeviceResult
from harness.scenario import load_scenario
from harness.status import AttestationStatus, StatusDetail

from .conftest import needs_swtpm

ROOT = Path(__file__).resolve().parent.parent
pytestmark = needs_swtpm


def describe_mismatches(result_devices: list[DeviceResult]) -> str:
    return "\n".join(
        f"{d.group}: expected {d.expected}, got {d.actual} ({d.evidence.decision or d.error})"
        for d in result_devices
        if not d.matched
    )


def test_status_details_catalogue_produces_every_detail_from_its_cause() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "status-details.yaml")
    result = run_fleet([scenario], RunOptions(workers=2))
    assert result.all_matched, describe_mismatches(result.devices)
    seen = {d.actual.detail for d in result.devices if d.actual is not None}
    statuses = {d.actual.status for d in result.devices if d.actual is not None}
    every_detail = set(StatusDetail) - {StatusDetail.NONE}
    assert every_detail <= seen, f"never produced: {sorted(every_detail - seen)}"
    assert AttestationStatus.ATTESTED in statuses
    # Each device's cause is on record: the server's failing check or the client's error.
    for device in result.devices:
        if device.actual is not None and device.actual.status is AttestationStatus.NOT_ATTESTED:
            assert device.evidence.decision, device.group


def test_recovery_scenario_heals_devices_and_enforces_the_action_rules() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "recovery.yaml")
    result = run_fleet([scenario], RunOptions(workers=1))
    assert result.all_matched, "\n".join(
        f"{d.group} {c.step}: expected {c.expected}, got {c.actual} ({c.reason})"
        for d in result.devices
        for c in d.checkpoints
        if not c.matched
    )
    answers = {(c.step.partition(": ")[2], c.actual) for d in result.devices for c in d.checkpoints}
    assert ("attest as helpdesk", "HTTP 403") in answers
    assert ("attest as admin", "HTTP 429") in answers
    recovered = [d for d in result.devices if d.group in ("aik-ca-outage", "locked-out")]
    assert recovered and all(d.actual and d.actual.status is AttestationStatus.ATTESTED for d in recovered)
    # They did fail first: the first checkpoint of each is its original status detail.
    assert {d.checkpoints[0].actual for d in recovered} == {
        "Not attested / AIK certificate wasn't provided",
        "Not attested / TPM isn't ready",
    }
