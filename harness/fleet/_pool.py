"""Worker processes that run devices in parallel, each with its own TPM backend.

Workers are started with spawn: the server's threads make fork unsafe. The
run reads each device's status as soon as its worker returns it, so there is
no collect phase at the end.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

from ..errors import HarnessError
from ..tpm import BackendSpec, TPMBackend, open_backend, remove_leftovers
from ._device import DeviceRun, FleetEnvironment, run_device
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

    def run(self, plans: list[DevicePlan], env: FleetEnvironment) -> Iterator[tuple[DevicePlan, DeviceRun]]:
        """Each device as soon as its worker returns it; the caller judges it while the others go on."""
        futures: dict[cf.Future[Any], DevicePlan] = {
            self._executor.submit(_worker_run, plan, env): plan for plan in plans
        }
        for future in cf.as_completed([*self._warm, *futures]):
            plan_of = futures.get(future)
            try:
                run = future.result()
            except cf.process.BrokenProcessPool as exc:
                where = f"while running {plan_of.key}" if plan_of else "while starting"
                raise HarnessError(f"a worker died {where}: {exc}") from exc
            if plan_of is not None and run is not None:
                yield plan_of, run

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
