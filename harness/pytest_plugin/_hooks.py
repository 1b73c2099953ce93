"""The plugin's hooks: options, collection, the run's one session, results for the reports."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ._files import is_scenario_file, scenarios_in_args
from ._items import DeviceItem, ScenarioFile
from ._state import (
    ORDER_ATTR,
    RESULT_ATTR,
    STATE_KEY,
    ResultGatherer,
    State,
    is_worker,
    start_session,
    state_of,
    write_reports,
)

if TYPE_CHECKING:
    from ..tpm import BackendSpec, Engine


_WORKERINPUT_KEY = "harness_session"


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
    if not is_worker(config):
        config.pluginmanager.register(ResultGatherer(config), "harness-results")
    else:
        from ..fleet import FleetSession

        given = config.workerinput.get(_WORKERINPUT_KEY)  # type: ignore[attr-defined]
        if given is not None:
            state.session = FleetSession.from_dict(given)
        else:
            state.session_error = config.workerinput.get(  # type: ignore[attr-defined]
                f"{_WORKERINPUT_KEY}_error", "the xdist controller started no harness session"
            )


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    # Without xdist this process owns the server; start it only when there are devices to run.
    if is_worker(config) or config.option.collectonly:
        return
    devices = [item for item in items if isinstance(item, DeviceItem)]
    if devices:
        scenarios = {id(item.scenario): item.scenario for item in devices}
        start_session(config, list(scenarios.values()))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: start the one server (if this run has scenarios) and hand it to the worker."""
    config: pytest.Config = node.config
    state = state_of(config)
    if state.session is None and not state.session_error:
        if config.option.collectonly:
            return
        scenarios = scenarios_in_args(config)
        if not scenarios:
            return
        start_session(config, scenarios)
    if state.session is not None:
        node.workerinput[_WORKERINPUT_KEY] = state.session.to_dict()
    else:
        node.workerinput[f"{_WORKERINPUT_KEY}_error"] = state.session_error


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if isinstance(item, DeviceItem) and call.when == "call" and item.result is not None:
        # Plain data on the report travels from xdist workers to the controller with it.
        setattr(report, RESULT_ATTR, item.result.model_dump(mode="json"))
        setattr(report, ORDER_ATTR, list(item.order))
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    state = state_of(config)
    state.local.close()
    out = config.getoption("harness_out")
    if out and not is_worker(config) and state.results:
        write_reports(config, Path(out))


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is None:
        return
    state.local.close()
    state.owned.close()
