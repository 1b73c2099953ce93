"""junit.xml: one testcase per device, so CI shows a mismatch like a failing test."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

from ..results import DeviceResult, Outcome, RunResult, format_trace
from ._files import atomic_write

# Characters XML 1.0 cannot carry even escaped; client and server details are free text
# (HTTP bodies, TPM output) and one stray control byte would make the whole file unparseable.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def scenario_stem(scenario: str) -> str:
    # PureWindowsPath splits on both separators, so a result produced on either OS gives the
    # same suite name.
    return PureWindowsPath(scenario).stem or scenario


def describe(outcome: Outcome | None) -> str:
    if outcome is None:
        return "no result"
    return f"{outcome.status} / {outcome.detail}" if outcome.detail else str(outcome.status)


def _is_error(device: DeviceResult) -> bool:
    return bool(device.error)


def _is_failure(device: DeviceResult) -> bool:
    return not device.matched and not device.error and not device.not_applicable


def _explanation(device: DeviceResult) -> str:
    lines = [
        f"expected: {describe(device.expected)}",
        f"actual:   {describe(device.actual)}",
    ]
    if device.device_id:
        lines.append(f"device:   {device.device_id}")
    evidence = device.evidence
    if evidence.decision:
        lines.append(f"decision: {evidence.decision}")
    failing_checks = [c for c in evidence.checks if not c.passed]
    if failing_checks:
        lines.append("failing checks:")
        lines.extend(f"  - {c.name}: {c.detail}" if c.detail else f"  - {c.name}" for c in failing_checks)
    missed = [c for c in device.checkpoints if not c.matched]
    if missed:
        lines.append("scenario checkpoints missed:")
        lines.extend(f"  - {c.step}: expected {c.expected}, got {c.actual} ({c.reason})" for c in missed)
    failed_steps = [s for s in evidence.client_steps if not s.ok]
    if failed_steps:
        lines.append("failed client steps:")
        lines.extend(f"  - {s.step}: {s.detail}" if s.detail else f"  - {s.step}" for s in failed_steps)
    return "\n".join(lines)


def failed_step(device: DeviceResult) -> str:
    """Where a mismatch happened, expected against actual: the first checkpoint that missed, or
    the status after the first enrollment for a scenario without steps."""
    missed = device.failed_checkpoint
    if missed is not None:
        return f"{missed.step}: expected {missed.expected}, actual {missed.actual}"
    return f"enrollment: expected {describe(device.expected)}, actual {describe(device.actual)}"


def junit_name(device: DeviceResult) -> str:
    """group[index], as the pytest plugin names it: stable across runs, unlike Faker's device names."""
    if device.key:
        index = device.key.rsplit("/", 1)[-1].split("@", 1)[0]
        return f"{device.group}[{index}]"
    return device.name


def _properties(parent: ET.Element, values: dict[str, str]) -> None:
    props = ET.SubElement(parent, "properties")
    for name, value in values.items():
        ET.SubElement(props, "property", name=name, value=_clean(value))


@dataclass(frozen=True)
class JUnitExtras:
    """What a run's JUnit adds from outside the result: flakiness from the history, and where
    each device's evidence bundle and trace file lie (attachments, by device id)."""

    flaky: frozenset[str] = frozenset()  # device keys
    attachments: dict[str, list[str]] = field(default_factory=dict)


def _testcase(suite: ET.Element, stem: str, device: DeviceResult, extras: JUnitExtras) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        classname=_clean(f"{stem}.{device.group}"),
        name=_clean(junit_name(device)),
        time=_seconds(device.seconds),
    )
    actual = device.actual
    _properties(
        case,
        {
            "expected_status": str(device.expected.status),
            "expected_detail": str(device.expected.detail),
            "actual_status": str(actual.status) if actual else "",
            "actual_detail": str(actual.detail) if actual else "",
            "device_id": device.device_id,
            "reason": device.evidence.decision,
            # Only a fleet over Docker engines has one; other runs keep their property list.
            **({"engine": device.engine} if device.engine else {}),
            "device_name": device.name,
            **({"device_key": device.key} if device.key else {}),
            **({"flaky": "true"} if device.key in extras.flaky else {}),
            **({"failed_checkpoint": failed_step(device)} if not device.matched and not device.error else {}),
            **({"tpm_commands": str(len(device.trace))} if device.trace else {}),
        },
    )
    attached = extras.attachments.get(device.device_id, [])
    if device.trace or attached:
        # GitLab, Jenkins and others read [[ATTACHMENT|path]] lines in system-out.
        out = ET.SubElement(case, "system-out")
        text = "".join(f"[[ATTACHMENT|{path}]]\n" for path in attached)
        if device.trace:
            text += "TPM command trace:\n" + format_trace(device.trace)
        out.text = _clean(text)
    if _is_error(device):
        # A harness failure says nothing about the server, so it must not read as a mismatch.
        error = ET.SubElement(
            case, "error", message=_clean(device.error.splitlines()[0]), type="HarnessError"
        )
        error.text = _clean(f"{device.error}\n\n{_explanation(device)}")
    elif device.not_applicable:
        ET.SubElement(case, "skipped", message=_clean(device.not_applicable))
    elif _is_failure(device):
        message = failed_step(device)
        failure = ET.SubElement(case, "failure", message=_clean(message), type="StatusMismatch")
        failure.text = _clean(_explanation(device))


def _counts(element: ET.Element, devices: list[DeviceResult], seconds: float) -> None:
    element.set("tests", str(len(devices)))
    element.set("failures", str(sum(1 for d in devices if _is_failure(d))))
    element.set("errors", str(sum(1 for d in devices if _is_error(d))))
    element.set("skipped", str(sum(1 for d in devices if d.not_applicable)))
    element.set("time", _seconds(seconds))


def build_junit(result: RunResult, extras: JUnitExtras | None = None) -> ET.Element:
    extras = extras or JUnitExtras()
    summary = result.summary
    by_scenario: dict[str, list[DeviceResult]] = {s: [] for s in summary.scenarios}
    for device in result.devices:
        by_scenario.setdefault(device.scenario, []).append(device)

    root = ET.Element("testsuites", name="enrollment attestation")
    # Devices run in parallel, so the run's wall time, not the sum of device times, is how
    # long the whole run took; each suite's time is the sum of its devices' times.
    _counts(root, result.devices, summary.wall_seconds)
    for scenario, devices in by_scenario.items():
        stem = scenario_stem(scenario)
        suite = ET.SubElement(root, "testsuite", name=_clean(stem))
        _counts(suite, devices, sum(d.seconds for d in devices))
        if summary.started_at:
            suite.set("timestamp", _clean(summary.started_at))
        properties = {
            "scenario": scenario,
            "server": summary.server,
            "harness_version": summary.harness_version,
            "workers": str(summary.workers),
        }
        # A partial run says so, where CI looks: its unfinished devices are errors.
        if summary.interrupted:
            properties["interrupted"] = "true"
        if summary.stopped:
            properties["stopped"] = summary.stopped
        _properties(suite, properties)
        for device in devices:
            _testcase(suite, stem, device, extras)
    ET.indent(root)
    return root


def write_junit(result: RunResult, path: str | os.PathLike[str], extras: JUnitExtras | None = None) -> None:
    data: bytes = ET.tostring(build_junit(result, extras), encoding="utf-8", xml_declaration=True)
    atomic_write(Path(path), data + b"\n")
