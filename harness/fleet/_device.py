"""One device's life, run in a worker: a TPM from the factory, then the Windows client.

This is the enrollment strategy: manufacture the TPM the plan describes, hand
it to the simulated client, and return what the client did. The expected
outcome is not known here.
"""

from __future__ import annotations

import datetime as dt
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from ..client import ClientConfig, ClientReport, WindowsClient
from ..errors import HarnessError
from ..results import ClientStep
from ..tcg import TPMIdentity
from ..tpm import TimedESAPI, TPMBackend, TPMDevice, TPMRequest, manufacture
from ._pki import vendor_ca
from ._plan import DevicePlan
from ._world import Services, befall, device_network, leave_mdm_key


@dataclass(frozen=True)
class FleetEnvironment:
    """What every worker shares: where the services are and where the vendor CAs are."""

    server_url: str
    pki_dir: Path
    workdir: Path
    lagging_replica_url: str = ""  # a replica of the server whose clock is behind
    foreign_identity_url: str = ""  # another tenant's identity provider

    @property
    def services(self) -> Services:
        return Services(self.server_url, self.lagging_replica_url, self.foreign_identity_url)


@dataclass
class DeviceRun:
    key: str
    emm_device_id: str
    report: ClientReport | None = None
    steps: list[ClientStep] = field(default_factory=list)
    tpm_seconds: float = 0.0
    seconds: float = 0.0
    error: str = ""


def run_device(plan: DevicePlan, env: FleetEnvironment, backend: TPMBackend) -> DeviceRun:
    """Manufacture, join Entra, let the world happen to the TPM, then attest and enroll."""
    started = time.perf_counter()
    run = DeviceRun(key=plan.key, emm_device_id=plan.emm_device_id)
    try:
        with ExitStack() as stack:
            tpm = _factory(plan, env, backend, stack, run)
            endpoints, links = stack.enter_context(device_network(plan.network, env.services))
            config = ClientConfig(
                endpoints=endpoints,
                inventory=plan.inventory,
                behaviour=plan.behaviour,
                emm_device_id=plan.emm_device_id,
            )
            client = stack.enter_context(WindowsClient(config, tpm))
            client.join()
            if tpm is not None and tpm.manufacturable():
                seconds, step = befall(plan.tpm, tpm)
                run.tpm_seconds += seconds
                if step is not None:
                    client.report.steps.append(step)
            report = client.enroll()
            run.report = report
            run.steps.extend(report.steps)
            run.tpm_seconds += report.tpm_seconds
            for link in links:
                run.steps.extend(ClientStep(step="network.link", ok=False, detail=what) for what in link.log)
    except HarnessError as exc:
        run.error = f"{type(exc).__name__}: {exc}"
    finally:
        run.seconds = time.perf_counter() - started
    return run


def _factory(
    plan: DevicePlan, env: FleetEnvironment, backend: TPMBackend, stack: ExitStack, run: DeviceRun
) -> TPMDevice | None:
    """The device's TPM as it left the factory (and an earlier enrollment, if any)."""
    if plan.tpm.family == "none":
        return None
    tpm = backend.start(TPMRequest(family="1.2" if plan.tpm.family == "1.2" else "2.0"), env.workdir)
    stack.callback(tpm.close)
    if tpm.manufacturable() and plan.tpm.family == "2.0":
        run.tpm_seconds += _manufacture(plan, env, tpm, run)
        if plan.tpm.mdm_key_present:
            run.tpm_seconds += leave_mdm_key(tpm)
            run.steps.append(ClientStep(step="world.tpm.mdm_key", ok=True, detail="an earlier MDM key"))
    return tpm


def _manufacture(plan: DevicePlan, env: FleetEnvironment, tpm: TPMDevice, run: DeviceRun) -> float:
    start = time.perf_counter()
    issuer = vendor_ca(env.pki_dir, plan.tpm.issuer) if plan.tpm.issuer else None
    identity = TPMIdentity(plan.tpm.manufacturer_id, plan.tpm.model, plan.tpm.firmware)
    with TimedESAPI(tpm.tcti) as esapi:
        manufacture(
            esapi,
            identity=identity,
            issuer=issuer,
            algorithm="ecc256" if plan.tpm.ek_algorithm == "ecc256" else "rsa2048",
            now=dt.datetime.now(dt.UTC),
            one_rdn=plan.tpm.one_rdn,
        )
        spent = esapi.seconds
    who = issuer.name if issuer else "no EK certificate"
    run.steps.append(
        ClientStep(
            step="factory.manufacture",
            ok=True,
            detail=f"{plan.tpm.ek_algorithm} EK, {identity.manufacturer} {identity.model} "
            f"{identity.version}, certificate by {who}",
            seconds=round(time.perf_counter() - start, 4),
        )
    )
    return spent
