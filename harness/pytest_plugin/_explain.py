"""A failing device as a test shows it: expected against actual, every checkpoint, what failed."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..results import DeviceResult, Outcome


def _describe(outcome: Outcome | None) -> str:
    if outcome is None:
        return "no result"
    return f"{outcome.status} / {outcome.detail}" if outcome.detail else str(outcome.status)


def explain(result: DeviceResult) -> str:
    """The first line names what failed (the first failing checkpoint of a scenario with steps);
    then the device, its checkpoints expected against actual, the server's reason, the failing
    checks and the failed client steps."""
    failed = [c for c in result.checkpoints if not c.matched]
    if failed:
        first = failed[0]
        headline = f"checkpoint '{first.step}' failed: expected {first.expected}, got {first.actual}"
    else:
        headline = f"expected {_describe(result.expected)}, got {_describe(result.actual)}"
    lines = [
        headline,
        f"device:   {result.name} ({result.group}, {result.device_id})",
        f"expected: {_describe(result.expected)}",
        f"actual:   {_describe(result.actual)}",
    ]
    if result.evidence.decision:
        lines.append(f"reason:   {result.evidence.decision}")
    if result.error:
        lines.append(f"error:    {result.error}")
    if result.checkpoints:
        lines.append(f"checkpoints ({len(failed)} of {len(result.checkpoints)} failed):")
        for checkpoint in result.checkpoints:
            mark = "ok  " if checkpoint.matched else "FAIL"
            lines.append(f"  {mark} {checkpoint.step}")
            lines.append(f"         expected {checkpoint.expected}")
            lines.append(f"         actual   {checkpoint.actual}")
            if checkpoint.reason and not checkpoint.matched:
                lines.append(f"         reason   {checkpoint.reason}")
    failing = [c for c in result.evidence.checks if not c.passed]
    if failing:
        lines.append("failing checks:")
        lines.extend(f"  - {c.name}: {c.detail}" if c.detail else f"  - {c.name}" for c in failing)
    steps = [s for s in result.evidence.client_steps if not s.ok]
    if steps:
        lines.append("failed client steps:")
        lines.extend(f"  - {s.step}: {s.detail}" if s.detail else f"  - {s.step}" for s in steps)
    return "\n".join(lines)
