"""The controller: one reference server, a pool of workers, and the comparison.

Only the controller knows what each device is expected to end up as. It reads
each device's actual status from the server's admin API, as an admin would,
and compares. Everything it starts (server, workers, swtpm processes, the work
directory) is gone when it returns or raises, Ctrl-C included.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .. import __version__
from ..errors import HarnessError, ServerError
from ..results import Check, DeviceResult, Evidence, Outcome, RunResult, summarise
from ..scenario import Expectation, Scenario
from ..server import EmbeddedServer, Principal, ServerConfig
from ..status import AttestationStatus, StatusDetail
from ..tpm import SwtpmBackend, TPMBackend
from ._device import DeviceRun, FleetEnvironment, run_device
from ._pki import create_vendor_cas
from ._plan import DevicePlan, plan_fleet
from ._services import auxiliary_services

Progress = Callable[[DeviceRun], None]


@dataclass(frozen=True)
class RunOptions:
    workers: int = 1
    server_url: str | None = None  # an already running server instead of the embedded one
    admin_token: str | None = None  # needed with server_url
    pki_dir: Path | None = None  # vendor CAs shared with that server
    keep_workdir: bool = False


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


_worker_backend: TPMBackend | None = None


def _worker_init() -> None:
    global _worker_backend
    _worker_backend = SwtpmBackend()


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
    plans, expectations = plan_fleet(scenarios)
    started_at = dt.datetime.now(dt.UTC)
    wall_start = time.perf_counter()
    with _workdir(options.keep_workdir) as workdir:
        pki_dir = options.pki_dir or workdir / "pki"
        roots = create_vendor_cas(pki_dir, now=started_at)
        with (
            _server(options, workdir, roots) as (url, token),
            auxiliary_services(
                plans,
                workdir,
                primary_data_dir=None if options.server_url else workdir / "server",
                roots=roots,
            ) as auxiliary,
        ):
            env = FleetEnvironment(
                server_url=url,
                pki_dir=pki_dir,
                workdir=workdir,
                lagging_replica_url=auxiliary.lagging_replica_url,
                foreign_identity_url=auxiliary.foreign_identity_url,
            )
            runs = _run_all(plans, env, options.workers, progress, backend)
            results = _collect(plans, expectations, runs, url, token)
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


@contextmanager
def _server(options: RunOptions, workdir: Path, roots: list[Any]) -> Iterator[tuple[str, str]]:
    if options.server_url:
        if not options.admin_token:
            raise HarnessError("a run against --server needs the server's admin token (--admin-token)")
        yield options.server_url.rstrip("/"), options.admin_token
        return
    token = secrets.token_urlsafe(24)
    config = ServerConfig(
        data_dir=workdir / "server",
        manufacturer_roots=roots,
        principals={token: Principal("harness", remote_tasks=True)},
    )
    with EmbeddedServer(config) as server:
        yield server.url, token


def _run_all(
    plans: list[DevicePlan],
    env: FleetEnvironment,
    workers: int,
    progress: Progress | None,
    backend: TPMBackend | None,
) -> dict[str, DeviceRun]:
    runs: dict[str, DeviceRun] = {}
    if workers <= 1:
        local = backend or SwtpmBackend()
        try:
            for plan in plans:
                run = run_device(plan, env, local)
                runs[plan.key] = run
                if progress:
                    progress(run)
        finally:
            local.close()
        return runs
    context = multiprocessing.get_context("spawn")  # the server's threads make fork unsafe
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_init) as pool:
        futures = {pool.submit(_worker_run, plan, env): plan for plan in plans}
        try:
            for future in cf.as_completed(futures):
                plan = futures[future]
                try:
                    run = future.result()
                except cf.process.BrokenProcessPool as exc:
                    raise HarnessError(f"a worker died while running {plan.key}: {exc}") from exc
                runs[plan.key] = run
                if progress:
                    progress(run)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return runs


def _collect(
    plans: list[DevicePlan],
    expectations: dict[str, Expectation],
    runs: dict[str, DeviceRun],
    url: str,
    token: str,
) -> list[DeviceResult]:
    results = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as admin:
        for plan in plans:
            run = runs[plan.key]
            expected = expectations[plan.key]
            detail = _device_detail(admin, plan.emm_device_id)
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
            results.append(
                DeviceResult(
                    name=plan.inventory.device_name,
                    group=plan.group,
                    scenario=plan.scenario,
                    device_id=plan.emm_device_id,
                    expected=Outcome(status=expected.status, detail=expected.detail),
                    actual=actual,
                    matched=actual is not None
                    and actual == Outcome(status=expected.status, detail=expected.detail),
                    error=error,
                    inventory=_inventory(plan, detail),
                    evidence=evidence,
                    tpm_seconds=round(run.tpm_seconds, 4),
                    seconds=round(run.seconds, 4),
                )
            )
    return results


def _device_detail(admin: httpx.Client, device_id: str) -> dict[str, Any] | None:
    try:
        response = admin.get(f"/admin/devices/{device_id}")
    except httpx.HTTPError as exc:
        raise ServerError(f"cannot read the report from {admin.base_url}: {exc}") from exc
    if response.status_code == 404:
        return None
    if not response.is_success:
        raise ServerError(f"report for {device_id}: HTTP {response.status_code} {response.text[:200]}")
    body: dict[str, Any] = response.json()
    return body


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
