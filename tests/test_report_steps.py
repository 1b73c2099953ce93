"""Scenarios that check the report as an admin sees it, and the Autopilot enrollment paths:
what parses, what is refused with file:line:field, and the shipped scenario end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.fleet import RunOptions, run_fleet
from harness.scenario import load_scenario, parse_scenario
from harness.status import AttestationStatus, StatusDetail

from .conftest import needs_swtpm

ROOT = Path(__file__).resolve().parent.parent
SOURCE = "report.yaml"

FLEET = """\
name: report-steps
seed: 3
groups:
  - name: laptops
    count: 2
    expect: {status: Attested}
steps:
  - report: {filter: {status: Not started, ownership: personal}, expect_total: 0}
  - report:
      filter: {status: Not started}
      attest: {select: 100, as: admin, expect_response: 202}
  - expect_report: {group: laptops, columns: {OS version: 10.0.22631.2792, UPN: ""}}
"""


def error_of(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, SOURCE)
    return info.value


def line_of(text: str, needle: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if needle in line)


def test_report_steps_parse() -> None:
    scenario = parse_scenario(FLEET, SOURCE)
    counted, selected, columns = scenario.steps
    assert counted.report is not None and counted.report.expect_total == 0
    assert counted.report.filter.status is AttestationStatus.NOT_STARTED
    assert counted.report.filter.ownership == "personal"
    assert selected.report is not None and selected.report.attest is not None
    assert selected.report.attest.select == 100
    assert columns.expect_report is not None
    assert columns.expect_report.columns == {"OS version": "10.0.22631.2792", "UPN": ""}


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        (
            "columns: {OS version: 10.0.22631.2792",
            "columns: {OS build: 10.0.22631.2792",
            "steps[2].expect_report.columns",
            "'OS build' is not a report column",
        ),
        (
            "expect_report: {group: laptops",
            "expect_report: {group: tablets",
            "steps[2].expect_report.group",
            "",
        ),
        ("expect_total: 0}", "expect_total: -1}", "steps[0].report.expect_total", ""),
        (
            "{status: Not started, ownership: personal}",
            "{status: Started}",
            "steps[0].report.filter.status",
            "",
        ),
        ("as: admin", "as: nobody", "steps[1].report.attest.as", "no principal named 'nobody'"),
        ("select: 100", "select: 0", "steps[1].report.attest.select", ""),
        (
            "  - report: {filter: {status: Not started, ownership: personal}, expect_total: 0}",
            "  - report: {filter: {status: Not started}}",
            "steps[0].report",
            "expect_total or runs attest",
        ),
    ],
)
def test_report_step_errors_name_file_line_and_field(old: str, new: str, field: str, message: str) -> None:
    text = FLEET.replace(old, new)
    assert text != FLEET
    error = error_of(text)
    assert error.field == field, str(error)
    assert message in error.message
    assert error.line == line_of(text, new.strip().split("\n")[0][:30])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("enrollment: {path: shared-device}\n    entra: {join: software}", "joins Entra with a TPM key"),
        ("enrollment: {path: autopilot-preprovisioning}\n    entra: {join: none}", "offline-domain-join"),
        ("enrollment: {path: white-glove}", ""),
    ],
)
def test_enrollment_paths_that_cannot_be_are_refused(settings: str, message: str) -> None:
    text = FLEET.replace("    count: 2\n", f"    count: 2\n    {settings}\n")
    error = error_of(text)
    assert error.field.startswith("groups[0]"), str(error)
    assert message in str(error)


AUTOPILOT = """\
name: autopilot
seed: 5
defaults: {platform: physical, os_build: 10.0.22631.2792}
groups:
  - name: preprovisioned-aik-ca-down
    enrollment: {path: autopilot-preprovisioning}
    network: {aik_ca: refused}
    expect: {status: Not attested, detail: "AIK certificate wasn't provided"}
  - name: user-driven-aik-ca-down
    network: {aik_ca: refused}
    expect: {status: Not attested, detail: "AIK certificate wasn't provided"}
  - name: shared
    enrollment: {path: shared-device}
    expect: {status: Attested}
"""


@needs_swtpm
def test_autopilot_attests_the_tpm_before_the_device_is_provisioned() -> None:
    result = run_fleet([parse_scenario(AUTOPILOT, "autopilot.yaml")], RunOptions(workers=1))
    by_group = {d.group: d for d in result.devices}
    # Autopilot's TPM attestation comes first: without the AIK service the device is never
    # provisioned, so it never enrolls and the report has no row for it.
    stopped = by_group["preprovisioned-aik-ca-down"]
    assert stopped.actual is None and not stopped.matched
    assert "no record" in stopped.error
    steps = [s.step for s in stopped.evidence.client_steps]
    assert "autopilot.stopped" in steps and "enrollment.request" not in steps
    # The same world, user-driven, enrolls and reports the missing AIK certificate.
    user_driven = by_group["user-driven-aik-ca-down"]
    assert user_driven.matched, user_driven
    assert user_driven.actual is not None and user_driven.actual.detail is StatusDetail.AIK_CERT_NOT_PROVIDED
    # A shared device did the same exchange (EK certificate, AIK activation) before joining
    # Entra, then attested at enrollment, with no user.
    shared = by_group["shared"]
    assert shared.matched, shared
    steps = [s.step for s in shared.evidence.client_steps]
    assert (
        steps.index("autopilot.provisioned")
        < steps.index("entra.register")
        < steps.index("enrollment.request")
    )
    assert steps.count("aik.activate_credential") == 2  # Autopilot's, then enrollment's
    # (Its report row's empty UPN is checked by scenarios/report.yaml's expect_report.)


@needs_swtpm
def test_report_scenario_checks_the_report_as_an_admin_sees_it() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "report.yaml")
    result = run_fleet([scenario], RunOptions(workers=1))
    mismatches = [(d.group, c) for d in result.devices for c in d.checkpoints if not c.matched]
    assert result.all_matched, mismatches[:5]
    laptop = next(d for d in result.devices if d.group == "not-started-laptops")
    steps = [c.step for c in laptop.checkpoints]
    # 101 selected refused, 100 accepted; the refresh counts fall as the push batches go out.
    assert any("Attest device on 101 selected" in s for s in steps)
    counts = [
        c.actual
        for c in laptop.checkpoints
        if "status Not started, corporate" in c.step and "Attest" not in c.step
    ]
    assert counts == ["101 row(s)", "101 row(s)", "81 row(s)", "1 row(s)", "0 row(s)"]
    # Every minimum build attests; one revision below stays Not started.
    for group in ("win10", "win11-21h2", "win11-22h2", "win11-23h2"):
        at = next(d for d in result.devices if d.group == f"{group}-minimum")
        below = next(d for d in result.devices if d.group == f"{group}-below")
        assert at.actual is not None and at.actual.status is AttestationStatus.ATTESTED, group
        assert below.actual is not None and below.actual.status is AttestationStatus.NOT_STARTED, group
