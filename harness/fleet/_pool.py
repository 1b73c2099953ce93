"""Worker processes that run devices in parallel, each with its own TPM backend.

Workers are started with spawn: the server's threads make fork unsafe. The
controller reads each device's status as soon as its worker returns it, so
there is no collect phase at the end.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ..errors import HarnessError
from ..results import DeviceResult
from ..scenario import Expectation
from ..tpm import BackendSpec, TPMBackend, open_backend, remove_leftovers
from ._admin import AdminReader
from ._compare import check_device
from ._device import DeviceRun, FleetEnvironment, run_device
from ._partial import Collect
from ._plan import DevicePlan

Progress = Callable[[DeviceRun], None]

_worker_backend: TPMBackend | None = None


def _worker_init(backend: BackendSpec, run_id: str) -> None:
    global _worker_backend
    _worker_backend = open_backend(backend, run_id)


def _worker_ready() -> None:
    """A no-op task: submitting it starts a worker while the controller is still setting up."""


def _worker_run(plan: DevicePlan, env: FleetEnvironment) -> DeviceRun:
    assert _worker_backend is not None
    return run_device(plan, env, _worker_backend)


class Pool:
    """N worker processes; close() stops them and removes what their backend left behind."""

    def __init__(self, workers: int, backend: BackendSpec, run_id: str) -> None:
        self._run_id = run_id
        self._backend = backend
        self._executor = cf.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init,
            initargs=(backend, run_id),
        )
        # Each submit starts one more worker while none is idle, so this boots all of them now.
        self._warm: list[cf.Future[Any]] = [self._executor.submit(_worker_ready) for _ in range(workers)]

    def run(
        self,
        plans: list[DevicePlan],
        expectations: dict[str, Expectation],
        env: FleetEnvironment,
        admin: AdminReader,
        progress: Progress | None,
        collect: Collect | None = None,
    ) -> list[DeviceResult]:
        futures: dict[cf.Future[Any], DevicePlan] = {
            self._executor.submit(_worker_run, plan, env): plan for plan in plans
        }
        results: dict[str, DeviceResult] = {}
        for future in cf.as_completed([*self._warm, *futures]):
            plan_of = futures.get(future)
            try:
                run = future.result()
            except cf.process.BrokenProcessPool as exc:
                where = f"while running {plan_of.key}" if plan_of else "while starting"
                raise HarnessError(f"a worker died {where}: {exc}") from exc
            if plan_of is None or run is None:
                continue
            # Read the device's status now, while the workers go on: no collect phase at the end.
            results[plan_of.key] = check_device(plan_of, expectations[plan_of.key], run, admin)
            if collect is not None:
                collect(plan_of, run, results[plan_of.key])
            if progress:
                progress(run)
        return [results[plan.key] for plan in plans]

    def __enter__(self) -> Pool:
        return self

    def close(self) -> None:
        try:
            self._executor.shutdown(wait=True, cancel_futures=True)
        finally:
            remove_leftovers(self._backend, self._run_id)

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
