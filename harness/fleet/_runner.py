"""One run of scenarios: the object that `harness run`, the pytest plugin and the benchmarks drive.

A FleetRun plans its scenarios, starts what the run shares (fleet_session: the work
directory, the vendor CAs, the reference server; a Pool of worker processes when asked),
runs devices, judges each against its expectation, and hands every judged device to one
place, `_finish`, which records it and tells the run's observers (the progress display,
the evidence bundles, and whatever is added next). `result()` is the run's RunResult.

The front ends:
- `harness run` and the benchmarks: `FleetRun(scenarios, options).run()` (run_fleet).
- pytest in one process: the run is started (`start(pool=False)`); each item calls
  `run_device` or, for a scenario with steps, `run_steps`.
- pytest-xdist: the controller starts the run and hands `session.to_dict()` to its workers,
  which `FleetRun.join` it and run items; the controller `gather`s their results.

Everything a run starts (server, workers, swtpm processes, the work directory) is gone
when it is closed, however it ends, Ctrl-C included.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from types import TracebackType

from .. import __version__
from ..errors import HarnessError, ServerLost
from ..results import DeviceResult, RunResult, summarise
from ..scenario import Expectation, Scenario, refuse_settings_for_backend
from ..tpm import BACKENDS, TPMBackend, check_backend, open_backend
from ._admin import AdminReader
from ._bundles import BundleWriter
from ._clock import ClockLock
from ._compare import check_device
from ._device import DeviceRun, run_device
from ._partial import INTERRUPTED, Collected, RunInterrupted, RunStopped
from ._plan import DevicePlan, plan_fleet
from ._pool import Pool, Progress
from ._session import FleetSession, RunOptions, fleet_session, new_run_id


@dataclass(frozen=True)
class FinishedDevice:
    """A device the run judged: its plan, what it did, and the result."""

    plan: DevicePlan
    run: DeviceRun
    result: DeviceResult


# How far ahead of real time (and of the scenario before) a scenario with steps starts.
SCENARIO_SEPARATION = 3600.0

# Told of each device as soon as it is judged, in the process that ran it.
DeviceObserver = Callable[[FinishedDevice], None]


class FleetRun:
    """One run: its scenarios' plans, the shared session, the devices judged so far, observers."""

    def __init__(
        self,
        scenarios: Sequence[Scenario] = (),
        options: RunOptions | None = None,
        *,
        backend: TPMBackend | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.scenarios = list(scenarios)
        self.options = options or RunOptions()
        refuse_settings_for_backend(self.scenarios, self.options.backend)
        # Under a backend that runs devices as tasks (swarm), no worker or TPM of this process runs one.
        self._elsewhere = BACKENDS[self.options.backend.name].runs_devices
        if self._elsewhere:
            from ..cluster import refuse_for_tasks

            refuse_for_tasks(self.scenarios, str(self.options.backend))
        self.plans, expectations = plan_fleet([s for s in self.scenarios if not s.steps])
        self._stepped = {s.name: plan_fleet([s]) for s in self.scenarios if s.steps}
        self._collected = Collected(
            self.plans + [p for plans, _ in self._stepped.values() for p in plans],
            {**expectations, **{k: v for _, each in self._stepped.values() for k, v in each.items()}},
        )
        self.observers: list[DeviceObserver] = []
        if progress is not None:
            self.observers.append(lambda finished: progress(finished.run))
        self.session: FleetSession | None = None
        self.started_at = dt.datetime.now(dt.UTC)
        self._wall_start = time.perf_counter()
        self._stack = ExitStack()
        self._pool: Pool | None = None
        self._given_backend = backend
        self._backend: TPMBackend | None = None
        self._admin: AdminReader | None = None
        self._clock: ClockLock | None = None

    @classmethod
    def join(cls, session: FleetSession, options: RunOptions | None = None) -> FleetRun:
        """A run whose session another process started (a pytest-xdist worker's): it runs
        devices here and writes their bundles into the directory that process prepared."""
        run = cls((), options)
        run.session = session
        if run.options.bundle_dir is not None:
            run._observe_bundles(BundleWriter(run.options.bundle_dir, None, fresh=False))
        return run

    # --- lifecycle ------------------------------------------------------------------------

    def start(self, *, pool: bool | None = None) -> FleetRun:
        """Start the session (and, with `pool`, default options.workers > 1, the worker processes).

        On failure everything already started is stopped again and the error raised: nothing ran.
        """
        options = self.options
        run_id = new_run_id()
        workers = None
        if not self._elsewhere and (options.workers > 1 if pool is None else pool):
            # Checked (and engines weighed) once, before the workers that open it start.
            options = replace(options, backend=check_backend(options.backend, workers=options.workers))
            # Started before the server: worker processes boot (interpreter, imports) while the
            # controller creates the CAs and starts the server, instead of after.
            workers = Pool(options.workers, options.backend, run_id)
        try:
            self.session = self._stack.enter_context(
                fleet_session(
                    self._collected.plans,
                    options,
                    now=self.started_at,
                    run_id=run_id,
                    stepped=[s for s in self.scenarios if s.steps],
                    backend_checked=workers is not None,
                )
            )
        except BaseException:
            if workers is not None:
                workers.close()
            self._stack.close()
            raise
        if workers is not None:
            # Entered after the session, so that workers stop before the server and work directory go.
            self._pool = self._stack.enter_context(workers)
        if options.bundle_dir is not None:
            self._observe_bundles(BundleWriter(options.bundle_dir, self.session.judged_trust))
        return self

    def close(self) -> None:
        """Stop and remove everything this process started for the run."""
        self._stack.close()

    def __enter__(self) -> FleetRun:
        return self if self.session is not None else self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- running devices ------------------------------------------------------------------

    def run(self) -> RunResult:
        """`harness run`: every device, in the pool or here, then each scenario with steps.

        Raises RunInterrupted (Ctrl-C, SIGTERM) or RunStopped (server lost, worker died) with
        the partial result once devices began to run, HarnessError when nothing ran.
        """
        stopped, interrupted = "", False
        try:
            with self:
                self._run_all()
        except KeyboardInterrupt:
            interrupted = True
        except HarnessError as exc:
            if not self._collected.started:
                raise  # nothing ran (options, backend, server start): there is nothing to report
            stopped = (
                f"the reference server stopped answering: {exc}" if isinstance(exc, ServerLost) else str(exc)
            )
        result = self.result(interrupted=interrupted, stopped=stopped)
        if interrupted:
            raise RunInterrupted(result)
        if stopped:
            raise RunStopped(stopped, result)
        return result

    def _run_all(self) -> None:
        session = self._session()
        stepped = [s for s in self.scenarios if s.steps]
        if (self._pool is None or stepped) and not self._elsewhere:
            self._here()  # opened before devices start: a backend that cannot open ran nothing
        admin = self._admin_reader()
        self._collected.started = True
        if self._elsewhere:
            from ..cluster import run_on_swarm

            workers = self.options.workers
            run_on_swarm(
                self.plans,
                self._collected.expectations,
                session,
                admin,
                None,  # the progress display is an observer of _finish
                self._finish,
                concurrency=workers if workers > 1 else 0,
            )
        elif self._pool is None:
            for plan in self.plans:
                self.run_device(plan)
        else:
            expectations = self._collected.expectations
            for plan, run in self._pool.run(self.plans, session.env):
                # Read the device's status now, while the workers go on: no collect phase at the end.
                self._finish(plan, run, check_device(plan, expectations[plan.key], run, admin))
                self._catch_up()  # for the devices the workers start next
        for scenario in stepped:
            self.run_steps(scenario)

    def run_device(self, plan: DevicePlan, expectation: Expectation | None = None) -> DeviceResult:
        """One device without steps, in this process: run it, read its status, compare."""
        session = self._session()
        backend = self._here()
        expectation = expectation or self._collected.expectations[plan.key]
        with self._clock_lock().shared():
            self._catch_up()
            run = run_device(plan, session.env, backend)
            result = check_device(plan, expectation, run, self._admin_reader())
        self._finish(plan, run, result)
        return result

    def run_steps(self, scenario: Scenario) -> dict[str, DeviceResult]:
        """A scenario with steps, in this process: its devices stay alive between steps.
        Returns each device's result by its plan's key.

        No other device of the run is in flight meanwhile, in any process: steps move the
        server's clock.
        """
        from ._steps import StepRunner

        session = self._session()
        if scenario.name not in session.stepped:
            raise HarnessError(
                f"scenario '{scenario.name}' has steps, which move the server's clock and add admins: "
                "run it with the embedded server"
            )
        plans, expectations = self._stepped.get(scenario.name) or plan_fleet([scenario])
        backend, admin = self._here(), self._admin_reader()
        runner = StepRunner(
            scenario,
            plans,
            expectations,
            session.env,
            admin_url=session.admin_url,
            tokens=session.principal_tokens,
            check=lambda plan, expectation, run: check_device(plan, expectation, run, admin),
        )
        with self._clock_lock().exclusive(scenario.name):
            self._catch_up(ahead=SCENARIO_SEPARATION)
            results = runner.run(backend)
        for plan, result in zip(plans, results, strict=True):
            self._finish(plan, runner.devices[plan.key].run, result)
        return {plan.key: result for plan, result in zip(plans, results, strict=True)}

    def _catch_up(self, ahead: float = 0.0) -> None:
        """Bring a manual clock up to real time, plus `ahead` seconds.

        A server started for scenarios with steps is on a clock that moves only when told.
        What a device brings from the real world (an EK certificate made this minute) must
        not come from the server's future, so the clock is caught up before devices begin,
        never while steps run (the clock lock). A scenario with steps also starts `ahead` of
        the one before, so that no rule of time (the one-minute limit of the Attest device
        action) reaches from one scenario into the next.
        """
        if not self._session().stepped:
            return  # the real clock
        admin = self._admin_reader()
        behind = (dt.datetime.now(dt.UTC) - admin.server_time()).total_seconds()
        if max(behind, 0.0) + ahead > 0:
            admin.advance_clock(max(behind, 0.0) + ahead)

    def _finish(self, plan: DevicePlan, run: DeviceRun, result: DeviceResult) -> None:
        """The one place a device is done: recorded for the run's result, then observed."""
        self._collected.record(plan.key, result)
        finished = FinishedDevice(plan, run, result)
        for observer in self.observers:
            observer(finished)

    def gather(self, key: str, result: DeviceResult) -> None:
        """A device another process ran and observed (a pytest-xdist worker's): recorded only."""
        self._collected.record(key, result)

    # --- results ---------------------------------------------------------------------------

    def result(
        self, *, interrupted: bool = False, stopped: str = "", finished_only: bool = False
    ) -> RunResult:
        """The run's result. Every planned device is in it, one that did not finish as an
        error saying why, unless `finished_only` (pytest, where a selection runs a subset)."""
        if finished_only:
            devices = self._collected.finished()
            scenarios = list(dict.fromkeys(d.scenario for d in devices))
        else:
            devices = self._collected.ordered(INTERRUPTED if interrupted else stopped)
            scenarios = [s.path for s in self.scenarios]
        summary = summarise(
            devices,
            scenarios=scenarios,
            started_at=self.started_at.isoformat(timespec="seconds"),
            wall_seconds=time.perf_counter() - self._wall_start,
            workers=self.options.workers,
            server=self.options.server_url or "embedded",
            harness_version=__version__,
            interrupted=interrupted,
            stopped=stopped,
        )
        return RunResult(summary=summary, devices=devices)

    # --- this process's share ----------------------------------------------------------------

    def _session(self) -> FleetSession:
        if self.session is None:
            raise HarnessError("the run has not started")
        return self.session

    def _here(self) -> TPMBackend:
        """This process's TPM backend, opened at its first device and closed with the run."""
        if self._backend is None:
            session = self._session()
            backend = self._given_backend or open_backend(session.backend, session.run_id)
            self._stack.callback(backend.close)
            self._backend = backend
        return self._backend

    def _admin_reader(self) -> AdminReader:
        if self._admin is None:
            session = self._session()
            self._admin = self._stack.enter_context(AdminReader(session.admin_url, session.admin_token))
        return self._admin

    def _clock_lock(self) -> ClockLock:
        if self._clock is None:
            self._clock = ClockLock(self._session().env.workdir)
        return self._clock

    def _observe_bundles(self, writer: BundleWriter) -> None:
        self.observers.append(lambda finished: writer(finished.plan, finished.run, finished.result))


def run_fleet(
    scenarios: list[Scenario],
    options: RunOptions | None = None,
    *,
    progress: Progress | None = None,
    backend: TPMBackend | None = None,
) -> RunResult:
    """`harness run` as a function: FleetRun(scenarios, options).run()."""
    return FleetRun(scenarios, options, backend=backend, progress=progress).run()
