"""pytest plugin: scenario YAML files as tests, one test per device.

`pytest scenarios/` collects every scenario file (a YAML file under a `scenarios`
directory, or one with a top-level `groups:`) and runs each device end to end,
exactly as `harness run` does: the same plans, the same per-device function
(harness.fleet run_and_check), the same status read from the server's admin API.

One reference server per run. Without xdist the pytest process owns it; with
`-n N` the controller owns it and hands its address, admin token and vendor CA
directory to the workers in `workerinput`, so every worker's devices enroll
with the same server, which stops when the run ends.

The module imports the harness lazily: it is loaded by every pytest run in an
environment where the harness is installed, and most of those collect no scenario.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
import re
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from _pytest._code.code import ExceptionInfo, TerminalRepr

    from .fleet._plan import DevicePlan
    from .fleet._runner import AdminReader, FleetSession, RunOptions
    from .results import DeviceResult
    from .scenario import Expectation, Scenario
    from .tpm import TPMBackend

_SCENARIO_SUFFIXES = (".yaml", ".yml")
_GROUPS_LINE = re.compile(rb"^groups\s*:", re.MULTILINE)
_WORKERINPUT_KEY = "harness_session"
_RESULT_ATTR = "harness_result"
_ORDER_ATTR = "harness_order"

_state_key = pytest.StashKey["_State"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "enrollment attestation scenarios (harness)")
    group.addoption(
        "--harness-server",
        metavar="URL",
        default=None,
        help="a running reference server to enroll against (default: an embedded one for the run)",
    )
    group.addoption(
        "--harness-admin-token",
        metavar="TOKEN",
        default=None,
        help="admin bearer token of --harness-server (default: $HARNESS_ADMIN_TOKEN)",
    )
    group.addoption(
        "--harness-pki-dir",
        metavar="DIR",
        default=None,
        help="vendor CA directory shared with --harness-server (see 'harness serve')",
    )
    group.addoption(
        "--harness-out",
        metavar="DIR",
        default=None,
        help="also write results.json, junit.xml and index.html for the devices run",
    )
    group.addoption(
        "--harness-backend",
        choices=("process", "docker"),
        default=None,
        help="where each device's TPM runs: a local swtpm process (default) or a swtpm container",
    )


def is_scenario_file(path: Path) -> bool:
    """A scenario is YAML under a `scenarios` directory, or YAML with a top-level `groups:` key."""
    if path.suffix not in _SCENARIO_SUFFIXES:
        return False
    if "scenarios" in path.parent.parts:
        return True
    try:
        return _GROUPS_LINE.search(path.read_bytes()) is not None
    except OSError:
        return False


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_scenario_file(file_path):
        collector: pytest.Collector = ScenarioFile.from_parent(parent, path=file_path)
        return collector
    return None


class _State:
    """Per process: the session this process uses, what it owns, and what it gathered."""

    def __init__(self) -> None:
        self.session: FleetSession | None = None
        self.session_error = ""
        self.owned = ExitStack()  # the server and work directory, in the process that owns them
        self.local = ExitStack()  # this process's TPM backend and admin connection
        self.backend: TPMBackend | None = None
        self.admin: AdminReader | None = None
        self.results: list[tuple[tuple[str, int, int], DeviceResult]] = []
        self.scenario_names: dict[str, Path] = {}
        self.started = time.perf_counter()
        self.started_at = dt.datetime.now(dt.UTC)
        self.workers = 1


def _state(config: pytest.Config) -> _State:
    return config.stash[_state_key]


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _run_options(config: pytest.Config, scenarios: list[Scenario]) -> RunOptions:
    from .fleet._runner import RunOptions, choose_backend

    pki_dir = config.getoption("harness_pki_dir")
    backend = choose_backend(config.getoption("harness_backend"), scenarios)
    return RunOptions(
        server_url=config.getoption("harness_server"),
        admin_token=config.getoption("harness_admin_token") or os.environ.get("HARNESS_ADMIN_TOKEN"),
        pki_dir=Path(pki_dir) if pki_dir else None,
        backend=backend,
    )


def pytest_configure(config: pytest.Config) -> None:
    state = _State()
    config.stash[_state_key] = state
    numprocesses = getattr(config.option, "numprocesses", None)
    state.workers = numprocesses if isinstance(numprocesses, int) and numprocesses > 0 else 1
    if not _is_worker(config):
        config.pluginmanager.register(_ResultGatherer(config), "harness-results")
    else:
        from .fleet._runner import FleetSession

        given = config.workerinput.get(_WORKERINPUT_KEY)  # type: ignore[attr-defined]
        if given is not None:
            state.session = FleetSession.from_dict(given)
        else:
            state.session_error = config.workerinput.get(  # type: ignore[attr-defined]
                f"{_WORKERINPUT_KEY}_error", "the xdist controller started no harness session"
            )


def _start_session(config: pytest.Config, scenarios: list[Scenario]) -> None:
    """Start the run's server and services, once, in the process that owns them."""
    state = _state(config)
    if state.session is not None or state.session_error:
        return
    from .errors import HarnessError
    from .fleet._plan import plan_fleet
    from .fleet._runner import fleet_session

    plans, _ = plan_fleet(scenarios)
    try:
        state.session = state.owned.enter_context(
            fleet_session(plans, _run_options(config, scenarios), now=state.started_at)
        )
    except HarnessError as exc:
        state.owned.close()
        state.session_error = str(exc)


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    # Without xdist this process owns the server; start it only when there are devices to run.
    if _is_worker(config) or config.option.collectonly:
        return
    devices = [item for item in items if isinstance(item, DeviceItem)]
    if devices:
        scenarios = {id(item.scenario): item.scenario for item in devices}
        _start_session(config, list(scenarios.values()))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: start the one server (if this run has scenarios) and hand it to the worker."""
    config: pytest.Config = node.config
    state = _state(config)
    if state.session is None and not state.session_error:
        if config.option.collectonly:
            return
        scenarios = _scenarios_in_args(config)
        if not scenarios:
            return
        _start_session(config, scenarios)
    if state.session is not None:
        node.workerinput[_WORKERINPUT_KEY] = state.session.to_dict()
    else:
        node.workerinput[f"{_WORKERINPUT_KEY}_error"] = state.session_error


def _scenarios_in_args(config: pytest.Config) -> list[Scenario]:
    """The scenario files the workers will collect, found in the controller (which collects nothing)."""
    from .errors import ScenarioError
    from .scenario import load_scenario

    ignored = config.getini("norecursedirs")
    found: list[Path] = []
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::")[0])
        if path.is_file():
            candidates = [path]
        elif path.is_dir():
            candidates = sorted(_walk_yaml(path, ignored))
        else:
            continue
        found.extend(p for p in candidates if is_scenario_file(p))
    scenarios = []
    for path in dict.fromkeys(found):
        try:
            scenarios.append(load_scenario(path))
        except ScenarioError:
            continue  # the worker that collects it reports the error, with file and line
    return scenarios


def _walk_yaml(root: Path, ignored: list[str]) -> list[Path]:
    out: list[Path] = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [
            d for d in subdirs if not d.startswith(".") and not any(fnmatch.fnmatch(d, p) for p in ignored)
        ]
        out.extend(Path(directory, f) for f in files if f.endswith(_SCENARIO_SUFFIXES))
    return out


class ScenarioFile(pytest.File):
    """A scenario YAML file: one test per device of every group."""

    def collect(self) -> list[pytest.Item]:
        from .errors import ScenarioError
        from .fleet._plan import plan_group
        from .scenario import load_scenario

        scenario = load_scenario(self.path)
        if scenario.path != str(self._source()):
            # Reports name the file as the user would (like `harness run`'s), not by absolute path.
            scenario = scenario.model_copy(update={"path": str(self._source())})
        names = _state(self.config).scenario_names
        other = names.setdefault(scenario.name, self.path)
        if other != self.path:
            raise ScenarioError(
                str(self._source()), None, "name", f"scenario '{scenario.name}' is also the name of {other}"
            )
        items: list[pytest.Item] = []
        if scenario.steps:
            # Steps move the server's clock and need the scenario's admins; the devices of such
            # a scenario live together in one process. 'harness run' does that; here they skip.
            skip = pytest.mark.skip(reason="a scenario with steps runs with 'harness run'")
            for group in scenario.groups:
                for plan in plan_group(scenario, group):
                    item = DeviceItem.from_parent(
                        self,
                        name=f"{group.name}[{plan.index}]",
                        scenario=scenario,
                        plan=plan,
                        expectation=group.expect,
                        line=group.line,
                        order=(str(self.path), 0, plan.index),
                    )
                    item.add_marker(skip)
                    items.append(item)
            return items
        for position, group in enumerate(scenario.groups):
            for plan in plan_group(scenario, group):
                items.append(
                    DeviceItem.from_parent(
                        self,
                        name=f"{group.name}[{plan.index}]",
                        scenario=scenario,
                        plan=plan,
                        expectation=group.expect,
                        line=group.line,
                        order=(str(self.path), position, plan.index),
                    )
                )
        return items

    def _source(self) -> Path:
        # The path as the user would name it, so that reports read like `harness run`'s.
        try:
            return self.path.relative_to(self.config.invocation_params.dir)
        except ValueError:
            return self.path

    def repr_failure(self, excinfo: ExceptionInfo[BaseException], style: Any = None) -> str | TerminalRepr:
        from .errors import ScenarioError

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
        state = _state(self.config)
        if state.session is None:
            from .errors import HarnessError

            raise HarnessError(f"no harness session: {state.session_error or 'not started'}")
        backend, admin = _local(self.config, state.session)
        from .fleet._runner import run_and_check

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
        from .errors import HarnessError

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


def _local(config: pytest.Config, session: FleetSession) -> tuple[TPMBackend, AdminReader]:
    """This process's TPM backend and admin connection, opened at its first device."""
    state = _state(config)
    if state.backend is None or state.admin is None:
        from .fleet._runner import AdminReader, open_backend

        backend = open_backend(session.backend, session.run_id)
        state.local.callback(backend.close)
        state.admin = state.local.enter_context(AdminReader(session.admin_url, session.admin_token))
        state.backend = backend
    return state.backend, state.admin


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if isinstance(item, DeviceItem) and call.when == "call" and item.result is not None:
        # Plain data on the report travels from xdist workers to the controller with it.
        setattr(report, _RESULT_ATTR, item.result.model_dump(mode="json"))
        setattr(report, _ORDER_ATTR, list(item.order))
    return report


class _ResultGatherer:
    """In the process that writes the reports: every device result, from whichever worker ran it."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        _gather(self.config, report)


def _gather(config: pytest.Config, report: pytest.TestReport) -> None:
    data = getattr(report, _RESULT_ATTR, None)
    if data is None:
        return
    from .results import DeviceResult

    order = getattr(report, _ORDER_ATTR, None) or ["", 0, 0]
    _state(config).results.append(
        ((str(order[0]), int(order[1]), int(order[2])), DeviceResult.model_validate(data))
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = _state(config)
    state.local.close()
    out = config.getoption("harness_out")
    if out and not _is_worker(config) and state.results:
        _write_reports(config, Path(out))


def _write_reports(config: pytest.Config, out: Path) -> None:
    from . import __version__
    from .report import write_reports
    from .results import RunResult, summarise

    state = _state(config)
    devices = [result for _, result in sorted(state.results, key=lambda pair: pair[0])]
    scenarios = list(dict.fromkeys(d.scenario for d in devices))
    summary = summarise(
        devices,
        scenarios=scenarios,
        started_at=state.started_at.isoformat(timespec="seconds"),
        wall_seconds=time.perf_counter() - state.started,
        workers=state.workers,
        server=config.getoption("harness_server") or "embedded",
        harness_version=__version__,
    )
    paths = write_reports(RunResult(summary=summary, devices=devices), out)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"harness reports: {', '.join(str(p) for p in paths.values())}")


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_state_key, None)
    if state is None:
        return
    state.local.close()
    state.owned.close()
