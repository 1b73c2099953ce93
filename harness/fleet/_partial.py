"""What a run has when it stops early: the devices judged so far, the others as errors.

A run that loses its server or is interrupted still owes its user the reports of the
devices that finished; a device that did not finish is a harness error with the reason,
never a status.
"""

from __future__ import annotations

from ..errors import RunStopped as RunStopped
from ..results import DeviceResult, RunResult
from ..scenario import Expectation
from ._compare import unrun_result
from ._plan import DevicePlan

INTERRUPTED = "the run was interrupted before this device finished"


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a run; `result` holds what finished (summary.interrupted)."""

    def __init__(self, result: RunResult) -> None:
        super().__init__("interrupted")
        self.result = result


class Collected:
    """Results by device, in the order of the plans, whatever order they finish in."""

    def __init__(self, plans: list[DevicePlan], expectations: dict[str, Expectation]) -> None:
        self.plans = plans
        self.expectations = expectations
        self.results: dict[str, DeviceResult] = {}
        self.started = False  # devices began to run: from here on a failure still has results

    def record(self, key: str, result: DeviceResult) -> None:
        self.results[key] = result

    def finished(self) -> list[DeviceResult]:
        """The devices that have a result: planned ones in plan order, then any others."""
        planned = [self.results[p.key] for p in self.plans if p.key in self.results]
        known = {p.key for p in self.plans}
        return planned + [result for key, result in self.results.items() if key not in known]

    def ordered(self, unfinished: str) -> list[DeviceResult]:
        """Every plan's result; a device without one is an error saying `unfinished`."""
        return [self.results.get(plan.key) or self._unfinished(plan, unfinished) for plan in self.plans]

    def _unfinished(self, plan: DevicePlan, reason: str) -> DeviceResult:
        return unrun_result(plan, self.expectations[plan.key], error=reason)
