"""The shipped scenarios, end to end on real swtpm: every status detail, and recovery."""

from __future__ import annotations

from pathlib import Path

from harness.fleet import RunOptions, run_fleet
from harness.results import DeviceResult
from harness.scenario import load_scenario
from harness.status import AttestationStatus, StatusDetail

from .conftest import needs_swtpm
from .verify_agreement import disagreements

ROOT = Path(__file__).resolve().parent.parent
pytestmark = needs_swtpm


def describe_mismatches(result_devices: list[DeviceResult]) -> str:
    return "\n".join(
        f"{d.group}: expected {d.expected}, got {d.actual} ({d.evidence.decision or d.error})"
        for d in result_devices
        if not d.matched
    )


def describe_checkpoints(result_devices: list[DeviceResult]) -> str:
    return "\n".join(
        f"{d.group} {c.step}: expected {c.expected}, got {c.actual} ({c.reason})"
        for d in result_devices
        for c in d.checkpoints
        if not c.matched
    )


def test_status_details_catalogue_produces_every_detail_from_its_cause(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "scenarios" / "status-details.yaml")
    result = run_fleet([scenario], RunOptions(workers=2, bundle_dir=tmp_path / "bundles"))
    assert result.all_matched, describe_mismatches(result.devices)
    # harness verify on the run's bundles gives every device's status and detail.
    assert disagreements(result.devices, tmp_path / "bundles") == []
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
    assert result.all_matched, describe_checkpoints(result.devices)
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


def test_workflows_scenario_walks_every_remedy_to_attested(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "scenarios" / "workflows.yaml")
    result = run_fleet([scenario], RunOptions(workers=1, bundle_dir=tmp_path / "bundles"))
    assert result.all_matched, describe_checkpoints(result.devices) + describe_mismatches(result.devices)
    assert disagreements(result.devices, tmp_path / "bundles") == []
    by_group = {d.group: d for d in result.devices}
    # Each walk failed first and ends attested, and the server's history says what drove it.
    walks = {
        "enrolled-before-attestation": ("Not started", "attest-action"),
        "power-cut": ("In progress / Attestation is in process", "device-retry"),
        "aik-ca-outage": ("Not attested / AIK certificate wasn't provided", "device-retry"),
        "locked-out": ("Not attested / TPM isn't ready", "device-retry"),
        "token-mismatch": ("Not attested / Entra token doesn't match device identity", "attest-action"),
        "autopilot-odj": ("Not attested / Entra key can't be attested", "device-retry"),
        "roca-firmware": ("Not attested / TPM isn't available", "attest-action"),
        "mdm-key-left": ("Not attested / MDM key is already in TPM", "attest-action"),
        "auth-failed": ("Not attested / Authentication failed", "attest-action"),
        "old-client": ("Not attested / Client didn't provide all required parameters", "attest-action"),
        "enrolled-days-ago": ("Not started", "attest-action"),
        "enrolled-days-ago-idle": ("Not started", "attest-action"),
        "push-blocked": ("Not started", "attest-action"),
    }
    for group, (first, trigger) in walks.items():
        device = by_group[group]
        assert device.checkpoints[0].actual == first, group
        assert device.actual is not None and device.actual.status is AttestationStatus.ATTESTED, group
        assert device.attempts[-1].trigger == trigger, (group, device.attempts)
        assert device.attempts[-1].status == "Attested", group
    # The attempt the power cut interrupted keeps what started it.
    assert by_group["power-cut"].attempts[0].trigger == "first-enrollment"
    assert by_group["power-cut"].attempts[0].status == "In progress"
    # A device enrolled before attestation still shows its TPM, from hardware inventory.
    assert by_group["enrolled-before-attestation"].attempts[0].status == "Not started"
    # The wiped device enrolled again as a new device.
    wiped = by_group["wiped"]
    assert [a.trigger for a in wiped.attempts] == ["first-enrollment"]
    assert any(s.step == "world.wipe" for s in wiped.evidence.client_steps)
    # The firmware update is what the report shows now.
    assert by_group["roca-firmware"].inventory["TPM firmware"] == "id:0007003F"
    for vm in ("vmware-vm", "virtualbox-vm", "kvm-vm", "parallels-vm", "xen-vm"):
        actual = by_group[vm].actual
        assert actual is not None and actual.detail is StatusDetail.FEATURE_NOT_SUPPORTED, vm
    # Three days after enrollment: the device with an open push channel heard the action and
    # synced within minutes; the one whose channel is blocked found it at its next check-in.
    pushed = by_group["enrolled-days-ago"]
    assert any(s.step == "push.received" for s in pushed.evidence.client_steps)
    assert pushed.attempts[-1].trigger == "attest-action" and pushed.attempts[-1].status == "Attested"
    blocked = by_group["push-blocked"]
    assert not any(s.step == "push.received" for s in blocked.evidence.client_steps)
    states = [c.actual for c in blocked.checkpoints if "Attest device action" in c.step]
    assert states == ["pending", "completed"]
