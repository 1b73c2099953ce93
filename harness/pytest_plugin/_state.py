"""What the plugin keeps per pytest process: the run's session, this process's backend and
admin connection, and the device results it gathered for the reports."""

from __future__ import annotations

import datetime as dt
import os
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ..fleet import AdminReader, FleetSession, RunOptions
    from ..results import DeviceResult
    from ..scenario import Scenario
    from ..tpm import TPMBackend

RESULT_ATTR = "harness_result"
ORDER_ATTR = "harness_order"


class State:
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


STATE_KEY = pytest.StashKey[State]()


def state_of(config: pytest.Config) -> State:
    return config.stash[STATE_KEY]


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _run_options(config: pytest.Config, scenarios: list[Scenario]) -> RunOptions:
    from ..fleet import RunOptions, choose_backend
    from ..tpm import engine_backend

    pki_dir = config.getoption("harness_pki_dir")
    given = engine_backend(config.getoption("harness_backend"), config.getoption("harness_engine"))
    backend = choose_backend(given, scenarios)
    return RunOptions(
        workers=state_of(config).workers,
        server_url=config.getoption("harness_server"),
        admin_token=config.getoption("harness_admin_token") or os.environ.get("HARNESS_ADMIN_TOKEN"),
        pki_dir=Path(pki_dir) if pki_dir else None,
        backend=backend,
    )


def start_session(config: pytest.Config, scenarios: list[Scenario]) -> None:
    """Start the run's server and services, once, in the process that owns them."""
    state = state_of(config)
    if state.session is not None or state.session_error:
        return
    from ..errors import HarnessError
    from ..fleet import fleet_session, plan_fleet

    plans, _ = plan_fleet(scenarios)
    try:
        state.session = state.owned.enter_context(
            fleet_session(plans, _run_options(config, scenarios), now=state.started_at)
        )
    except HarnessError as exc:
        state.owned.close()
        state.session_error = str(exc)


def local_backend(config: pytest.Config, session: FleetSession) -> tuple[TPMBackend, AdminReader]:
    """This process's TPM backend and admin connection, opened at its first device."""
    state = state_of(config)
    if state.backend is None or state.admin is None:
        from ..fleet import AdminReader
        from ..tpm import open_backend

        backend = open_backend(session.backend, session.run_id)
        state.local.callback(backend.close)
        state.admin = state.local.enter_context(AdminReader(session.admin_url, session.admin_token))
        state.backend = backend
    return state.backend, state.admin


class ResultGatherer:
    """In the process that writes the reports: every device result, from whichever worker ran it."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, RESULT_ATTR, None)
        if data is None:
            return
        from ..results import DeviceResult

        order = getattr(report, ORDER_ATTR, None) or ["", 0, 0]
        state_of(self.config).results.append(
            ((str(order[0]), int(order[1]), int(order[2])), DeviceResult.model_validate(data))
        )


def write_reports(config: pytest.Config, out: Path) -> None:
    from .. import __version__
    from ..report import write_reports
    from ..results import RunResult, summarise

    state = state_of(config)
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
