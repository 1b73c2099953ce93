"""The collected tests: a scenario file, and one item per device that runs it end to end."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ._state import local_backend, state_of

if TYPE_CHECKING:
    from _pytest._code.code import ExceptionInfo, TerminalRepr

    from ..fleet import DevicePlan
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
        # Steps move the server's clock and need the scenario's admins; the devices of such
        # a scenario live together in one process. 'harness run' does that; here they skip.
        skip = None
        if scenario.steps:
            skip = pytest.mark.skip(reason="a scenario with steps runs with 'harness run'")
        items: list[pytest.Item] = []
        for position, group in enumerate(scenario.groups):
            for plan in plan_group(scenario, group):
                item = DeviceItem.from_parent(
                    self,
                    name=f"{group.name}[{plan.index}]",
                    scenario=scenario,
                    plan=plan,
                    expectation=group.expect,
                    line=group.line,
                    order=(str(self.path), 0 if skip else position, plan.index),
                )
                if skip is not None:
                    item.add_marker(skip)
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
        order: tuple[str, int, int],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.plan = plan
        self.expectation = expectation
        self.line = line
        self.order = order
        self.result: DeviceResult | None = None

    def runtest(self) -> None:
        state = state_of(self.config)
        if state.session is None:
            from ..errors import HarnessError

            raise HarnessError(f"no harness session: {state.session_error or 'not started'}")
        backend, admin = local_backend(self.config, state.session)
        from ..fleet import run_and_check

        result = run_and_check(self.plan, self.expectation, state.session.env, backend, admin)
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


def explain(result: DeviceResult) -> str:
    """Expected versus actual, the server's reason and what failed, as a failing test shows it."""

    def describe(outcome: Any) -> str:
        if outcome is None:
            return "no result"
        return f"{outcome.status} / {outcome.detail}" if outcome.detail else str(outcome.status)

    lines = [
        f"expected {describe(result.expected)}, got {describe(result.actual)}",
        f"device:   {result.name} ({result.group}, {result.device_id})",
        f"expected: {describe(result.expected)}",
        f"actual:   {describe(result.actual)}",
    ]
    if result.evidence.decision:
        lines.append(f"reason:   {result.evidence.decision}")
    if result.error:
        lines.append(f"error:    {result.error}")
    failing = [c for c in result.evidence.checks if not c.passed]
    if failing:
        lines.append("failing checks:")
        lines.extend(f"  - {c.name}: {c.detail}" if c.detail else f"  - {c.name}" for c in failing)
    steps = [s for s in result.evidence.client_steps if not s.ok]
    if steps:
        lines.append("failed client steps:")
        lines.extend(f"  - {s.step}: {s.detail}" if s.detail else f"  - {s.step}" for s in steps)
    return "\n".join(lines)
