"""The collected tests: a scenario file, and one item per device that runs it end to end.

A device of a scenario with steps is one item too. The scenario runs once, at its first
item, with all its devices alive together in that process; each item then reports its own
device: every checkpoint, expected against actual. Under pytest-xdist one worker gets all
of a scenario's devices (see _xdist.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ._explain import explain
from ._state import running, state_of

if TYPE_CHECKING:
    from _pytest._code.code import ExceptionInfo, TerminalRepr

    from ..fleet import DevicePlan, FleetRun
    from ..results import DeviceResult
    from ..scenario import Expectation, Scenario


class ScenarioFile(pytest.File):
    """A scenario YAML file: one test per device of every group."""

    def collect(self) -> list[pytest.Item]:
        from ..errors import ScenarioError
        from ..fleet import plan_group
        from ..scenario import load_scenario

        scenario = load_scenario(self.path)
        if scenario.path != str(self._source()):
            # Reports name the file as the user would (like `harness run`'s), not by absolute path.
            scenario = scenario.model_copy(update={"path": str(self._source())})
        names = state_of(self.config).scenario_names
        other = names.setdefault(scenario.name, self.path)
        if other != self.path:
            raise ScenarioError(
                str(self._source()), None, "name", f"scenario '{scenario.name}' is also the name of {other}"
            )
        items: list[pytest.Item] = []
        for group in scenario.groups:
            for plan in plan_group(scenario, group):
                item = DeviceItem.from_parent(
                    self,
                    name=f"{group.name}[{plan.index}]",
                    scenario=scenario,
                    plan=plan,
                    expectation=group.expect,
                    line=group.line,
                )
                items.append(item)
        return items

    def _source(self) -> Path:
        # The path as the user would name it, so that reports read like `harness run`'s.
        try:
            return self.path.relative_to(self.config.invocation_params.dir)
        except ValueError:
            return self.path

    def repr_failure(self, excinfo: ExceptionInfo[BaseException], style: Any = None) -> str | TerminalRepr:
        from ..errors import ScenarioError

        if isinstance(excinfo.value, ScenarioError):
            return f"scenario error: {excinfo.value}"
        return super().repr_failure(excinfo)


class DeviceMismatch(Exception):
    """The device ended up other than the scenario expected (or did not run)."""

    def __init__(self, result: DeviceResult) -> None:
        super().__init__(result.name)
        self.result = result


class DeviceItem(pytest.Item):
    """One device: run it against the run's server, then compare its reported status."""

    def __init__(
        self,
        *,
        scenario: Scenario,
        plan: DevicePlan,
        expectation: Expectation,
        line: int | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.plan = plan
        self.expectation = expectation
        self.line = line
        self.result: DeviceResult | None = None

    def runtest(self) -> None:
        run = running(self.config)
        if self.scenario.steps:
            result = _steps_result(self.config, run, self.scenario, self.plan.key)
        else:
            result = run.run_device(self.plan, self.expectation)
        self.result = result
        actual = result.actual
        for name, value in (
            ("expected_status", str(result.expected.status)),
            ("expected_detail", str(result.expected.detail)),
            ("actual_status", str(actual.status) if actual else ""),
            ("actual_detail", str(actual.detail) if actual else ""),
            ("device_id", result.device_id),
            ("reason", result.evidence.decision),
            ("error", result.error),
            ("failed_checkpoint", next((c.step for c in result.checkpoints if not c.matched), "")),
        ):
            self.user_properties.append((name, value))
        if not result.matched:
            raise DeviceMismatch(result)

    def repr_failure(self, excinfo: ExceptionInfo[BaseException], style: Any = None) -> str | TerminalRepr:
        from ..errors import HarnessError

        if isinstance(excinfo.value, DeviceMismatch):
            return explain(excinfo.value.result)
        if isinstance(excinfo.value, HarnessError):
            return f"{type(excinfo.value).__name__}: {excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        where = (self.line - 1) if self.line else None
        return self.path, where, f"{self.plan.key} ({self.plan.inventory.device_name})"


def _steps_result(config: pytest.Config, run: FleetRun, scenario: Scenario, key: str) -> DeviceResult:
    """A device of a scenario with steps: the scenario runs at its first item, here, once."""
    from ..errors import HarnessError

    steps = state_of(config).steps
    if scenario.name not in steps:
        try:
            steps[scenario.name] = run.run_steps(scenario)
        except HarnessError as exc:
            steps[scenario.name] = f"{type(exc).__name__}: {exc}"
    done = steps[scenario.name]
    if isinstance(done, str):
        raise HarnessError(f"scenario '{scenario.name}' did not run: {done}")
    return done[key]
