"""The controller of `harness run`: one reference server, devices here or in a pool, the comparison.

Everything it starts (server, workers, swtpm processes, the work directory) is
gone when it returns or raises, Ctrl-C included. The pieces it is built from
(fleet_session, run_and_check, the Pool) are what another driver, such as the
pytest plugin, uses to run devices exactly as `harness run` does.
"""

from __future__ import annotations

import datetime as dt
import time
from contextlib import ExitStack
from dataclasses import replace

from .. import __version__
from ..errors import HarnessError, ServerLost
from ..history import code_identity, record_run
from ..results import RunResult, summarise
from ..scenario import Expectation, Scenario, refuse_settings_for_backend
from ..tpm import BACKENDS, TPMBackend, check_backend, open_backend
from ._admin import AdminReader
from ._bundles import BundleWriter
from ._compare import check_device
from ._device import run_device
from ._partial import INTERRUPTED, Collect, Collected, RunInterrupted, RunStopped
from ._plan import DevicePlan, plan_fleet
from ._pool import Pool, Progress
from ._session import FleetSession, RunOptions, fleet_session, new_run_id


def run_fleet(
    scenarios: list[Scenario],
    options: RunOptions | None = None,
    *,
    progress: Progress | None = None,
    backend: TPMBackend | None = None,
) -> RunResult:
    options = options or RunOptions()
    refuse_settings_for_backend(scenarios, options.backend)
    if BACKENDS[options.backend.name].runs_devices:
        from ..cluster import refuse_for_tasks

        refuse_for_tasks(scenarios, str(options.backend))
    plans, expectations = plan_fleet([s for s in scenarios if not s.steps])
    stepped_plans = {s.name: plan_fleet([s]) for s in scenarios if s.steps}
    started_at = dt.datetime.now(dt.UTC)
    wall_start = time.perf_counter()
    collected = Collected(
        plans + [p for group, _ in stepped_plans.values() for p in group],
        {**expectations, **{k: v for _, e in stepped_plans.values() for k, v in e.items()}},
    )
    stopped, interrupted = "", False
    try:
        _run(
            scenarios, options, (plans, expectations), stepped_plans, collected, progress, backend, started_at
        )
    except KeyboardInterrupt:
        interrupted = True
    except HarnessError as exc:
        if not collected.started:
            raise  # nothing ran (options, backend, server start): there is nothing to report
        stopped = (
            f"the reference server stopped answering: {exc}" if isinstance(exc, ServerLost) else str(exc)
        )
    devices = collected.ordered(INTERRUPTED if interrupted else stopped)
    summary = summarise(
        devices,
        scenarios=[s.path for s in scenarios],
        started_at=started_at.isoformat(timespec="seconds"),
        wall_seconds=time.perf_counter() - wall_start,
        workers=options.workers,
        server=options.server_url or "embedded",
        harness_version=__version__,
        code=code_identity(),
        interrupted=interrupted,
        stopped=stopped,
    )
    result = RunResult(summary=summary, devices=devices)
    if interrupted:
        raise RunInterrupted(result)
    if stopped:
        raise RunStopped(stopped, result)
    if options.history is not None:
        record_run(options.history, result)  # only finished runs: a partial one is no baseline
    return result


def _run(
    scenarios: list[Scenario],
    options: RunOptions,
    fleet: tuple[list[DevicePlan], dict[str, Expectation]],
    stepped_plans: dict[str, tuple[list[DevicePlan], dict[str, Expectation]]],
    collected: Collected,
    progress: Progress | None,
    backend: TPMBackend | None,
    started_at: dt.datetime,
) -> None:
    """Everything is stopped and removed when this returns or raises; results go to `collected`."""
    plans, expectations = fleet
    stepped = [s for s in scenarios if s.steps]
    every_plan = collected.plans
    run_id = new_run_id()
    # Under 'swarm' the devices are the engine's tasks: no worker or TPM of this process runs one.
    elsewhere = BACKENDS[options.backend.name].runs_devices
    with ExitStack() as stack:
        pool = None
        if options.workers > 1 and not elsewhere:
            # Checked (and engines weighed) once, before the workers that open it start.
            options = replace(options, backend=check_backend(options.backend, workers=options.workers))
            # Started before the server: worker processes boot (interpreter, imports) while the
            # controller creates the CAs and starts the server, instead of after.
            pool = Pool(options.workers, options.backend, run_id)
        try:
            session = stack.enter_context(
                fleet_session(
                    every_plan,
                    options,
                    now=started_at,
                    run_id=run_id,
                    stepped=stepped,
                    backend_checked=pool is not None,
                )
            )
        except BaseException:
            if pool is not None:
                pool.close()
            raise
        if pool is not None:
            # Entered after the session, so that workers stop before the server and work directory go.
            stack.enter_context(pool)
        admin = stack.enter_context(AdminReader(session.admin_url, session.admin_token))
        local: TPMBackend | None = None
        if (pool is None or stepped) and not elsewhere:
            # Devices run in this process too: one backend for all of them, closed with the run.
            local = backend or open_backend(session.backend, session.run_id)
            stack.callback(local.close)
        if options.bundle_dir is not None:
            collected.hooks.append(BundleWriter(options.bundle_dir, session.judged_trust))
        collected.started = True
        if elsewhere:
            from ..cluster import run_on_swarm

            concurrency = options.workers if options.workers > 1 else 0
            run_on_swarm(plans, expectations, session, admin, progress, collected, concurrency=concurrency)
        elif pool is None:
            assert local is not None
            _run_here(plans, expectations, session, admin, progress, local, collected)
        else:
            pool.run(plans, expectations, session.env, admin, progress, collected)
        for scenario in stepped:
            assert local is not None
            _run_steps(scenario, *stepped_plans[scenario.name], session, admin, progress, local, collected)


def _run_here(
    plans: list[DevicePlan],
    expectations: dict[str, Expectation],
    session: FleetSession,
    admin: AdminReader,
    progress: Progress | None,
    backend: TPMBackend,
    collect: Collect,
) -> None:
    for plan in plans:
        run = run_device(plan, session.env, backend)
        collect(plan, run, check_device(plan, expectations[plan.key], run, admin))
        if progress:
            progress(run)


def _run_steps(
    scenario: Scenario,
    plans: list[DevicePlan],
    expectations: dict[str, Expectation],
    session: FleetSession,
    admin: AdminReader,
    progress: Progress | None,
    backend: TPMBackend,
    collect: Collect,
) -> None:
    """A scenario with steps runs in this process: its devices stay alive between steps."""
    from ._steps import StepRunner

    runner = StepRunner(
        scenario,
        plans,
        expectations,
        session.env,
        admin_url=session.admin_url,
        tokens=session.principal_tokens,
        check=lambda plan, expectation, run: check_device(plan, expectation, run, admin),
    )
    results = runner.run(backend)
    for plan, result in zip(plans, results, strict=True):
        device = runner.devices[plan.key]
        collect(plan, device.run, result)
        if progress:
            progress(device.run)
