"""The plugin's hooks: options, collection, the run, results for the reports."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ._files import is_scenario_file, scenarios_in_args
from ._items import DeviceItem, ScenarioFile
from ._state import (
    KEY_ATTR,
    RESULT_ATTR,
    STATE_KEY,
    WORKERINPUT_KEY,
    ResultGatherer,
    State,
    is_worker,
    join_run,
    read_options,
    start_run,
    state_of,
    write_reports,
)
from ._xdist import steps_scheduling

if TYPE_CHECKING:
    from ..scenario import Scenario
    from ..tpm import BackendSpec, Engine


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "enrollment attestation scenarios (harness)")
    # One prefix, and the same meaning as the `harness run` option named after the prefix.
    group.addoption(
        "--harness-out",
        metavar="DIR",
        default=None,
        help="also write results.json, junit.xml, index.html and bundles/ for the devices run (as --out)",
    )
    group.addoption(
        "--harness-bundles",
        metavar="DIR",
        default=None,
        help="where each device's evidence bundle is written (default: bundles/ under --harness-out)",
    )
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
        "--harness-trust",
        metavar="PATH",
        default=None,
        help="trust store of the embedded server: a directory or YAML manifest (as --trust)",
    )
    group.addoption(
        "--harness-advisories",
        metavar="FILE",
        default=None,
        help="firmware advisory YAML file replacing the shipped list (as --advisories)",
    )
    group.addoption(
        "--harness-backend",
        metavar="BACKEND",
        type=_backend_option,
        default=None,
        help="where each device's TPM runs, named as for 'harness run --backend' "
        "(default: the scenario's, else a local swtpm process)",
    )
    group.addoption(
        "--harness-engine",
        metavar="URL",
        action="append",
        type=_engine_option,
        default=[],
        help="a Docker engine for the devices' TPMs, as 'harness run --engine' takes it "
        "(repeatable; implies --harness-backend docker); xdist workers get the same list",
    )
    group.addoption(
        "--harness-engines",
        metavar="FILE",
        default=None,
        help="YAML file with an 'engines:' list, each as --harness-engine takes it (as --engines)",
    )
    group.addoption(
        "--harness-server-bind",
        metavar="ADDR",
        default="127.0.0.1",
        help="address the embedded reference server listens on (as --server-bind)",
    )


def _backend_option(text: str) -> BackendSpec:
    # The backend registry is imported only when the option is given: most pytest runs
    # that load this plugin collect no scenario.
    from ..tpm import BackendSpec, UnknownBackend

    try:
        return BackendSpec.parse(text)
    except UnknownBackend as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _engine_option(text: str) -> Engine:
    from ..errors import HarnessError
    from ..tpm import parse_engine

    try:
        return parse_engine(text)
    except HarnessError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_scenario_file(file_path):
        collector: pytest.Collector = ScenarioFile.from_parent(parent, path=file_path)
        return collector
    return None


def pytest_configure(config: pytest.Config) -> None:
    state = State()
    config.stash[STATE_KEY] = state
    numprocesses = getattr(config.option, "numprocesses", None)
    state.workers = numprocesses if isinstance(numprocesses, int) and numprocesses > 0 else 1
    if is_worker(config):
        join_run(config)
        return
    read_options(config)
    config.pluginmanager.register(ResultGatherer(config), "harness-results")


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    # Scenarios with steps after the other devices, as `harness run` orders them: steps move
    # the server's clock, and every other device enrolls before it moves.
    stepped = {id(i) for i in items if isinstance(i, DeviceItem) and i.scenario.steps}
    if stepped:
        items[:] = [i for i in items if id(i) not in stepped] + [i for i in items if id(i) in stepped]
    # Without xdist this process owns the server; start it only when there are devices to run.
    if is_worker(config) or config.option.collectonly:
        return
    devices = [item for item in items if isinstance(item, DeviceItem)]
    if devices:
        scenarios = {id(item.scenario): item.scenario for item in devices}
        start_run(config, list(scenarios.values()))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: start the run (if it has scenarios) and hand its session to the worker."""
    config: pytest.Config = node.config
    state = state_of(config)
    if state.run is None and not state.run_error:
        if config.option.collectonly:
            return
        scenarios = scenarios_in_args(config)
        if not scenarios:
            return
        start_run(config, scenarios)
        state.stepped_files = frozenset(_node_paths(config, [s for s in scenarios if s.steps]))
    if state.run is not None and state.run.session is not None:
        node.workerinput[WORKERINPUT_KEY] = state.run.session.to_dict()
    else:
        node.workerinput[f"{WORKERINPUT_KEY}_error"] = state.run_error


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under --dist load (what -n N means), the devices of a scenario with steps go to one worker."""
    stepped = state_of(config).stepped_files
    if config.getvalue("dist") != "load" or not stepped:
        return None  # xdist's own
    return steps_scheduling(config, log, stepped)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if isinstance(item, DeviceItem) and call.when == "call" and item.result is not None:
        # Plain data on the report travels from xdist workers to the controller with it.
        setattr(report, RESULT_ATTR, item.result.model_dump(mode="json"))
        setattr(report, KEY_ATTR, item.plan.key)
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    out = config.getoption("harness_out")
    if out and not is_worker(config):
        write_reports(config, Path(out))
    run = state_of(config).run
    if run is not None:
        run.close()


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is not None and state.run is not None:
        state.run.close()


def _node_paths(config: pytest.Config, scenarios: list[Scenario]) -> list[str]:
    """The scenarios' files as node ids begin: relative to the root directory, with '/'."""
    paths = []
    for scenario in scenarios:
        try:
            paths.append(Path(scenario.path).resolve().relative_to(config.rootpath).as_posix())
        except ValueError:
            continue  # outside the root: node ids name it otherwise; xdist's load splits it
    return paths
