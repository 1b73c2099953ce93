"""Worlds a run cannot build against a server it did not start (`--server URL`).

A lagging replica is a second instance of the reference server on the same storage and keys
with its clock behind; the harness can start one only next to its own server. Devices whose
world needs it are not applicable against another server: named before the run starts and
reported as not applicable, never as failures.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..results import DeviceResult
from ..scenario import Expectation, Scenario
from ..world import HELPERS, REGISTRY
from ._compare import unrun_result
from ._plan import DevicePlan, plan_fleet


@dataclass(frozen=True)
class Inapplicable:
    """A group of a scenario that cannot run against an external server, and why."""

    scenario: str
    group: str
    devices: int
    reason: str

    def describe(self) -> str:
        devices = f"{self.devices} device{'s' if self.devices != 1 else ''}"
        return f"{self.scenario}: group {self.group} ({devices}): {self.reason}"


def needs_own_server(plan: DevicePlan) -> str:
    """Why this device cannot run against an external server ('' when it can)."""
    needs: dict[str, list[str]] = {}
    for condition in REGISTRY.conditions():
        for name in condition.helpers(plan.world):
            helper = HELPERS.get(name)
            if helper is not None and helper.needs_own_server:
                needs.setdefault(helper.what, []).append(condition.name)
    return "; ".join(
        f"{', '.join(settings)} needs {what} of the reference server (its storage and keys), which "
        "the harness starts only next to its own server, not with --server"
        for what, settings in needs.items()
    )


def inapplicable_groups(scenarios: list[Scenario]) -> list[Inapplicable]:
    """The groups that `harness run --server URL` cannot run, in scenario order."""
    found: dict[tuple[str, str], Inapplicable] = {}
    for scenario in scenarios:
        plans, _ = plan_fleet([scenario])
        for plan in plans:
            reason = needs_own_server(plan)
            if not reason:
                continue
            key = (scenario.path, plan.group)
            earlier = found.get(key)
            count = earlier.devices + 1 if earlier else 1
            found[key] = Inapplicable(scenario.path, plan.group, count, reason)
    return list(found.values())


def not_applicable_result(plan: DevicePlan, expectation: Expectation, reason: str) -> DeviceResult:
    return unrun_result(plan, expectation, not_applicable=f"not applicable with --server: {reason}")
