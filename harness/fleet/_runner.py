"""The controller: one reference server, a pool of workers, and the comparison.

Only the controller knows what each device is expected to end up as. It reads
each device's actual status from the server's admin API, as an admin would,
and compares. Everything it starts (server, workers, swtpm processes, the work
directory) is gone when it returns or raises, Ctrl-C included.

The pieces are reusable on their own, so that another driver (the pytest
plugin) runs devices exactly as `harness run` does: `fleet_session` starts what
a run shares, `run_and_check` runs one device and returns its DeviceResult.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import multiprocessing
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import httpx

from .. import __version__
from ..errors import HarnessError, ServerError
from ..results import Check, DeviceResult, Evidence, Outcome, RunResult, summarise
from ..scenario import Expectation, Scenario
from ..status import AttestationStatus, StatusDetail
from ..tpm import (
    DockerBackend,
    SwtpmBackend,
    TPMBackend,
    preflight,
    remove_run_containers,
    swtpm_binary,
)
from ..trust import TrustStore
from ._device import DeviceRun, FleetEnvironment, run_device
from ._pki import create_vendor_cas
from ._plan import DevicePlan, plan_fleet

Progress = Callable[[DeviceRun], None]
BackendName = Literal["process", "docker"]
BACKENDS: tuple[BackendName, ...] = ("process", "docker")


@dataclass(frozen=True)
class RunOptions:
    workers: int = 1
    server_url: str | None = None  # an already running server instead of the embedded one
    admin_token: str | None = None  # needed with server_url
    pki_dir: Path | None = None  # vendor CAs shared with that server
    keep_workdir: bool = False
    backend: BackendName = "process"  # where each device's TPM runs
    trust: TrustStore | None = None  # the embedded server's trust store (--trust); None: defaults


@dataclass(frozen=True)
class FleetSession:
    """What every device of a run shares: the services, the vendor CAs, admin access to the report."""

    env: FleetEnvironment
    admin_url: str
    admin_token: str
    run_id: str  # labels what the run starts outside this process (containers)
    backend: BackendName = "process"
    # Bearer tokens of the scenarios' principals by name ('admin' included), for steps.
    principal_tokens: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, str]:
        """Plain strings, for handing the session to another process (pytest-xdist workers)."""
        env = self.env
        return {
            "server_url": env.server_url,
            "pki_dir": str(env.pki_dir),
            "workdir": str(env.workdir),
            "lagging_replica_url": env.lagging_replica_url,
            "foreign_identity_url": env.foreign_identity_url,
            "admin_url": self.admin_url,
            "admin_token": self.admin_token,
            "run_id": self.run_id,
            "backend": self.backend,
        }

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> FleetSession:
        backend = data.get("backend", "process")
        if backend not in BACKENDS:
            raise HarnessError(f"unknown TPM backend '{backend}' (use one of {', '.join(BACKENDS)})")
        return cls(
            env=FleetEnvironment(
                server_url=data["server_url"],
                pki_dir=Path(data["pki_dir"]),
                workdir=Path(data["workdir"]),
                lagging_replica_url=data.get("lagging_replica_url", ""),
                foreign_identity_url=data.get("foreign_identity_url", ""),
            ),
            admin_url=data["admin_url"],
            admin_token=data["admin_token"],
            run_id=data["run_id"],
            backend=backend,
        )


def choose_backend(option: str | None, scenarios: list[Scenario]) -> BackendName:
    """The option wins; else the scenarios' own `backend` field, which must agree."""
    wanted = {option} if option else {s.backend or "process" for s in scenarios}
    if len(wanted) != 1:
        raise HarnessError(f"the scenarios ask for different TPM backends ({', '.join(sorted(wanted))})")
    name = wanted.pop()
    for known in BACKENDS:
        if name == known:
            return known
    raise HarnessError(f"unknown TPM backend '{name}' (use one of {', '.join(BACKENDS)})")


def new_run_id() -> str:
    return secrets.token_hex(6)


def open_backend(name: str, run_id: str) -> TPMBackend:
    """The TPM backend a worker uses; raises BackendUnavailable where it cannot run."""
    if name == "process":
        return SwtpmBackend()
    if name == "docker":
        return DockerBackend(run_id=run_id)
    raise HarnessError(f"unknown TPM backend '{name}' (use one of {', '.join(BACKENDS)})")


def check_backend(name: str) -> None:
    """Raise BackendUnavailable (with the reason) before anything starts, not in every worker."""
    if name == "process":
        swtpm_binary()
    elif name == "docker":
        preflight()
    else:
        raise HarnessError(f"unknown TPM backend '{name}' (use one of {', '.join(BACKENDS)})")


def remove_leftovers(name: str, run_id: str) -> None:
    """Remove what a run's backend left outside its processes (containers of crashed workers)."""
    if name == "docker":
        remove_run_containers(run_id)


@contextmanager
def _workdir(keep: bool) -> Iterator[Path]:
    # Short, under /tmp by default: swtpm's unix socket paths must fit in 108 bytes.
    base = os.environ.get("HARNESS_TMPDIR") or ("/tmp" if os.path.isdir("/tmp") else None)
    path = Path(tempfile.mkdtemp(prefix="eah-", dir=base))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


@contextmanager
def fleet_session(
    plans: list[DevicePlan],
    options: RunOptions,
    *,
    now: dt.datetime | None = None,
    run_id: str | None = None,
    stepped: Sequence[Scenario] = (),
) -> Iterator[FleetSession]:
    """The work directory, the vendor CAs, the reference server and the services the plans need.

    Everything is stopped and removed when the block ends, however it ends.
    """
    # The server and its helpers are imported here, not at module level: pool workers import
    # this module to run devices and have no use for the web framework's import time.
    from ._services import auxiliary_services

    now = now or dt.datetime.now(dt.UTC)
    run_id = run_id or new_run_id()
    check_backend(options.backend)
    with ExitStack() as stack:
        workdir = stack.enter_context(_workdir(options.keep_workdir))
        stack.callback(remove_leftovers, options.backend, run_id)
        pki_dir = options.pki_dir or workdir / "pki"
        roots = create_vendor_cas(pki_dir, now=now)
        url, tokens = stack.enter_context(_server(options, workdir, roots, stepped))
        token = tokens["admin"]
        auxiliary = stack.enter_context(
            auxiliary_services(
                plans,
                workdir,
                primary_data_dir=None if options.server_url else workdir / "server",
                roots=roots,
            )
        )
        env = FleetEnvironment(
            server_url=url,
            pki_dir=pki_dir,
            workdir=workdir,
            lagging_replica_url=auxiliary.lagging_replica_url,
            foreign_identity_url=auxiliary.foreign_identity_url,
        )
        yield FleetSession(
            env=env,
            admin_url=url,
            admin_token=token,
            run_id=run_id,
            backend=options.backend,
            principal_tokens=tokens,
        )


@contextmanager
def _server(
    options: RunOptions, workdir: Path, roots: list[Any], stepped: Sequence[Scenario] = ()
) -> Iterator[tuple[str, dict[str, str]]]:
    """The server's URL and bearer tokens by principal name ('admin' has Remote tasks)."""
    if options.server_url:
        if not options.admin_token:
            raise HarnessError("a run against --server needs the server's admin token (--admin-token)")
        if stepped:
            names = ", ".join(s.name for s in stepped)
            raise HarnessError(
                f"scenarios with steps ({names}) move the server's clock and add admins: "
                "run them with the embedded server"
            )
        yield options.server_url.rstrip("/"), {"admin": options.admin_token}
        return
    from ..server import EmbeddedServer, ManualClock, Principal, ServerConfig

    tokens = {"admin": secrets.token_urlsafe(24)}
    principals = {tokens["admin"]: Principal("admin", remote_tasks=True)}
    for scenario in stepped:
        for spec in scenario.principals:
            tokens.setdefault(spec.name, secrets.token_urlsafe(24))
            principals[tokens[spec.name]] = Principal(spec.name, remote_tasks=spec.remote_tasks)
    config = ServerConfig(
        data_dir=workdir / "server",
        manufacturer_roots=roots,
        principals=principals,
        trust=options.trust or TrustStore(),
    )
    # Steps test the one-minute and fifteen-minute rules: time moves only when a step moves it.
    clock = ManualClock() if stepped else None
    with EmbeddedServer(config, clock=clock) as server:
        yield server.url, tokens


class AdminReader:
    """The admin API's device view, on one kept-alive connection for a whole run."""

    def __init__(self, url: str, token: str) -> None:
        self._http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def device(self, device_id: str) -> dict[str, Any] | None:
        """The server's record of a device, or None when it never heard of it."""
        try:
            response = self._http.get(f"/admin/devices/{device_id}")
        except httpx.HTTPError as exc:
            raise ServerError(f"cannot read the report from {self._http.base_url}: {exc}") from exc
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise ServerError(f"report for {device_id}: HTTP {response.status_code} {response.text[:200]}")
        body: dict[str, Any] = response.json()
        return body

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminReader:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def run_and_check(
    plan: DevicePlan,
    expectation: Expectation,
    env: FleetEnvironment,
    backend: TPMBackend,
    admin: AdminReader,
) -> DeviceResult:
    """One device, start to finish: run it, then read its status as an admin and compare.

    Every driver (harness run, the pytest plugin) goes through here or through its two
    halves, run_device and check_device, so that they give the same results.
    """
    return check_device(plan, expectation, run_device(plan, env, backend), admin)


def check_device(
    plan: DevicePlan, expectation: Expectation, run: DeviceRun, admin: AdminReader
) -> DeviceResult:
    """Compare what the server reports for a device that has run with what was expected."""
    detail = admin.device(plan.emm_device_id)
    expected = Outcome(status=expectation.status, detail=expectation.detail)
    actual = None
    evidence = Evidence(client_steps=run.steps)
    if detail is not None:
        actual = Outcome(
            status=AttestationStatus(detail["Device attestation status"]),
            detail=StatusDetail(detail["Status detail"]),
        )
        attempts = detail.get("attempts") or []
        last = attempts[-1] if attempts else {}
        evidence.request_items = {k: str(v) for k, v in (last.get("items") or {}).items()}
        evidence.checks = [Check(**c) for c in last.get("checks") or []]
        evidence.decision = str(detail.get("decision", ""))
    error = run.error or ("" if detail is not None else "the server has no record of this device")
    return DeviceResult(
        name=plan.inventory.device_name,
        group=plan.group,
        scenario=plan.scenario,
        device_id=plan.emm_device_id,
        expected=expected,
        actual=actual,
        matched=actual is not None and actual == expected,
        error=error,
        inventory=_inventory(plan, detail),
        evidence=evidence,
        tpm_seconds=round(run.tpm_seconds, 4),
        seconds=round(run.seconds, 4),
    )


_worker_backend: TPMBackend | None = None


def _worker_init(backend: str, run_id: str) -> None:
    global _worker_backend
    _worker_backend = open_backend(backend, run_id)


def _worker_ready() -> None:
    """A no-op task: submitting it starts a worker while the controller is still setting up."""


def _worker_run(plan: DevicePlan, env: FleetEnvironment) -> DeviceRun:
    assert _worker_backend is not None
    return run_device(plan, env, _worker_backend)


def run_fleet(
    scenarios: list[Scenario],
    options: RunOptions | None = None,
    *,
    progress: Progress | None = None,
    backend: TPMBackend | None = None,
) -> RunResult:
    options = options or RunOptions()
    stepped = [s for s in scenarios if s.steps]
    plans, expectations = plan_fleet([s for s in scenarios if not s.steps])
    stepped_plans = {s.name: plan_fleet([s]) for s in stepped}
    every_plan = plans + [p for group, _ in stepped_plans.values() for p in group]
    started_at = dt.datetime.now(dt.UTC)
    wall_start = time.perf_counter()
    run_id = new_run_id()
    with ExitStack() as stack:
        pool = None
        if options.workers > 1:
            check_backend(options.backend)
            # Started before the server: worker processes boot (interpreter, imports) while the
            # controller creates the CAs and starts the server, instead of after.
            pool = _Pool(options.workers, options.backend, run_id)
        try:
            session = stack.enter_context(
                fleet_session(every_plan, options, now=started_at, run_id=run_id, stepped=stepped)
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
        if pool is None or stepped:
            # Devices run in this process too: one backend for all of them, closed with the run.
            local = backend or open_backend(session.backend, session.run_id)
            stack.callback(local.close)
        if pool is None:
            assert local is not None
            results = _run_here(plans, expectations, session, admin, progress, local)
        else:
            results = pool.run(plans, expectations, session.env, admin, progress)
        for scenario in stepped:
            assert local is not None
            results += _run_steps(scenario, *stepped_plans[scenario.name], session, admin, progress, local)
    wall = time.perf_counter() - wall_start
    summary = summarise(
        results,
        scenarios=[s.path for s in scenarios],
        started_at=started_at.isoformat(timespec="seconds"),
        wall_seconds=wall,
        workers=options.workers,
        server=options.server_url or "embedded",
        harness_version=__version__,
    )
    return RunResult(summary=summary, devices=results)


def _run_here(
    plans: list[DevicePlan],
    expectations: dict[str, Expectation],
    session: FleetSession,
    admin: AdminReader,
    progress: Progress | None,
    backend: TPMBackend,
) -> list[DeviceResult]:
    results = []
    for plan in plans:
        run = run_device(plan, session.env, backend)
        results.append(check_device(plan, expectations[plan.key], run, admin))
        if progress:
            progress(run)
    return results


def _run_steps(
    scenario: Scenario,
    plans: list[DevicePlan],
    expectations: dict[str, Expectation],
    session: FleetSession,
    admin: AdminReader,
    progress: Progress | None,
    backend: TPMBackend,
) -> list[DeviceResult]:
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
    if progress:
        for device in runner.devices.values():
            progress(device.run)
    return results


class _Pool:
    """Worker processes, started with spawn: the server's threads make fork unsafe."""

    def __init__(self, workers: int, backend: BackendName, run_id: str) -> None:
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
            if progress:
                progress(run)
        return [results[plan.key] for plan in plans]

    def __enter__(self) -> _Pool:
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


def _inventory(plan: DevicePlan, detail: dict[str, Any] | None) -> dict[str, str]:
    inventory = {
        "Device name": plan.inventory.device_name,
        "UPN": plan.inventory.upn,
        "OS version": plan.inventory.os_version,
        "Ownership": plan.inventory.ownership,
        "Manufacturer": plan.inventory.manufacturer,
        "Model": plan.inventory.model,
        "Serial": plan.inventory.serial,
        "TPM": f"{plan.tpm.family} {plan.tpm.manufacturer_id} {plan.tpm.model} {plan.tpm.firmware}",
    }
    if detail is not None:
        for column in ("TPM version", "TPM manufacturer", "Last check-in", "Enrollment date"):
            inventory[column] = str(detail.get(column, ""))
    return inventory
