"""What the plugin keeps per pytest process: the run (harness.fleet FleetRun) and its options.

The process that owns the run (pytest alone, or the xdist controller) starts it; an xdist
worker joins it from the session its controller handed over. Every device is run and
judged by the run, as under `harness run`; the owner gathers the results for the reports.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ..fleet import FleetRun, RunOptions
    from ..results import DeviceResult
    from ..scenario import Scenario
    from ..trust import TrustStore

RESULT_ATTR = "harness_result"
KEY_ATTR = "harness_key"
WORKERINPUT_KEY = "harness_session"


class State:
    """Per process: the run, why there is none, and what the items of scenarios with steps share."""

    def __init__(self) -> None:
        self.run: FleetRun | None = None
        self.run_error = ""
        self.trust: TrustStore | None = None  # --harness-trust / --harness-advisories, read once
        self.steps: dict[str, dict[str, DeviceResult] | str] = {}  # scenario: results, or the error
        self.scenario_names: dict[str, Path] = {}
        self.stepped_files: frozenset[str] = frozenset()  # xdist controller: node id paths
        self.workers = 1


STATE_KEY = pytest.StashKey[State]()


def state_of(config: pytest.Config) -> State:
    return config.stash[STATE_KEY]


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def bundle_dir(config: pytest.Config) -> Path | None:
    """--harness-bundles, else the bundles beside --harness-out's reports (as `harness run` writes them)."""
    given = config.getoption("harness_bundles")
    if given:
        return Path(given)
    out = config.getoption("harness_out")
    return Path(out) / "bundles" if out else None


def read_options(config: pytest.Config) -> None:
    """Read the options that name files now, so that a mistake is a usage error before anything runs.

    The harness is imported only when such an option is given: most pytest runs that load the
    plugin have none.
    """
    trust, advisories = config.getoption("harness_trust"), config.getoption("harness_advisories")
    engines, bind = config.getoption("harness_engines"), config.getoption("harness_server_bind")
    if not (trust or advisories or engines or bind != "127.0.0.1"):
        return
    from ..errors import HarnessError
    from ..fleet import RunOptions
    from ..tpm import load_engine_file
    from ..trust import trust_from_options

    state = state_of(config)
    try:
        state.trust = trust_from_options(
            Path(trust) if trust else None, Path(advisories) if advisories else None
        )
        if engines:
            named = config.getoption("harness_engine")
            config.option.harness_engine = [*named, *load_engine_file(Path(engines))]
        RunOptions(server_bind=bind)  # an address, not a name
    except HarnessError as exc:
        raise pytest.UsageError(f"harness: {exc}") from exc


def run_options(config: pytest.Config, scenarios: list[Scenario]) -> RunOptions:
    from ..fleet import RunOptions, choose_backend
    from ..tpm import engine_backend

    state = state_of(config)
    pki_dir = config.getoption("harness_pki_dir")
    given = engine_backend(config.getoption("harness_backend"), config.getoption("harness_engine"))
    return RunOptions(
        workers=state.workers,
        server_url=config.getoption("harness_server"),
        admin_token=config.getoption("harness_admin_token") or os.environ.get("HARNESS_ADMIN_TOKEN"),
        pki_dir=Path(pki_dir) if pki_dir else None,
        backend=choose_backend(given, scenarios),
        trust=state.trust,
        bundle_dir=bundle_dir(config),
        server_bind=config.getoption("harness_server_bind"),
    )


def start_run(config: pytest.Config, scenarios: list[Scenario]) -> None:
    """Start the run's server and services, once, in the process that owns them."""
    state = state_of(config)
    if state.run is not None or state.run_error:
        return
    from ..errors import HarnessError
    from ..fleet import FleetRun

    # Scenarios with steps need the embedded server (its manual clock, their admins); against
    # --harness-server the others still run and those say why they cannot.
    served = config.getoption("harness_server")
    try:
        run = FleetRun([s for s in scenarios if not (served and s.steps)], run_options(config, scenarios))
        state.run = run.start(pool=False)
    except HarnessError as exc:
        state.run_error = str(exc)


def join_run(config: pytest.Config) -> None:
    """An xdist worker: join the run its controller started."""
    from ..fleet import FleetRun, FleetSession, RunOptions

    state = state_of(config)
    given = config.workerinput.get(WORKERINPUT_KEY)  # type: ignore[attr-defined]
    if given is None:
        state.run_error = config.workerinput.get(  # type: ignore[attr-defined]
            f"{WORKERINPUT_KEY}_error", "the xdist controller started no harness session"
        )
        return
    state.run = FleetRun.join(FleetSession.from_dict(given), RunOptions(bundle_dir=bundle_dir(config)))


def running(config: pytest.Config) -> FleetRun:
    from ..errors import HarnessError

    state = state_of(config)
    if state.run is None:
        raise HarnessError(f"no harness session: {state.run_error or 'not started'}")
    return state.run


class ResultGatherer:
    """In the process that writes the reports: every device result, from whichever worker ran it."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data, key = getattr(report, RESULT_ATTR, None), getattr(report, KEY_ATTR, None)
        run = state_of(self.config).run
        if data is None or key is None or run is None:
            return
        from ..results import DeviceResult

        run.gather(str(key), DeviceResult.model_validate(data))


def write_reports(config: pytest.Config, out: Path) -> None:
    from ..report import write_reports

    run = state_of(config).run
    if run is None:
        return
    result = run.result(finished_only=True)
    if not result.devices:
        return
    paths = write_reports(result, out)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"harness reports: {', '.join(str(p) for p in paths.values())}")
