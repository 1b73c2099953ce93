"""One device's life, run in a worker: a TPM from the factory, then the Windows client.

This is the enrollment strategy: manufacture the TPM the plan describes, hand
it to the simulated client, and return what the client did. The expected
outcome is not known here.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from tpm2_pytss import TSS2_Exception

from ..client import ClientConfig, ClientReport, Endpoints, WindowsClient
from ..errors import HarnessError
from ..network import Link
from ..pki import vendor_ca
from ..results import ClientStep
from ..scenario import TPMChange
from ..tcg import TPMIdentity
from ..tpm import RunningTPM, TimedESAPI, TPMBackend, TPMRequest, engine_of, manufacture
from ._plan import DevicePlan, NetworkPlan
from ._world import Services, befall, device_network, leave_mdm_key, tpm_change


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
    engine: str = ""  # the Docker engine its TPM ran on (docker backend)


def run_device(plan: DevicePlan, env: FleetEnvironment, backend: TPMBackend) -> DeviceRun:
    """Manufacture, join Entra, let the world happen to the TPM, then attest and enroll."""
    with LiveDevice(plan, env, backend) as device:
        device.guard(device.first_enrollment)
        return device.finish()


class LiveDevice:
    """A device that stays alive after its first enrollment, for scenario steps.

    It owns its TPM, its network path and its client until closed.
    """

    def __init__(self, plan: DevicePlan, env: FleetEnvironment, backend: TPMBackend) -> None:
        self.plan = plan
        self.env = env
        self.network = plan.network
        self.tpm: RunningTPM | None = None
        self.client: WindowsClient | None = None
        self.run = DeviceRun(key=plan.key, emm_device_id=plan.emm_device_id)
        self._backend = backend
        self._started = time.perf_counter()
        self._stack = ExitStack()
        self._path = ExitStack()  # the current network path; replaced when the world changes
        self._links: list[Link] = []
        self._world_steps: list[ClientStep] = []
        self._world_seconds = 0.0

    def __enter__(self) -> LiveDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._stack.close()
        finally:
            self._path.close()

    def guard(self, action: Callable[[], object]) -> bool:
        """Run one part of the device's life; a harness failure is recorded, not raised."""
        try:
            action()
        except HarnessError as exc:
            self.run.error = f"{type(exc).__name__}: {exc}"
            return False
        except TSS2_Exception as exc:  # the harness's own TPM set-up failed, not the client
            self.run.error = f"TPMError: TPM set-up failed: {exc}"
            return False
        return True

    def first_enrollment(self) -> None:
        self.tpm = self._factory()
        endpoints = self._open_path(self.network)
        config = ClientConfig(
            endpoints=endpoints,
            inventory=self.plan.inventory,
            behaviour=self.plan.behaviour,
            emm_device_id=self.plan.emm_device_id,
        )
        self.client = self._stack.enter_context(WindowsClient(config, self.tpm))
        self.client.join()
        if self.tpm is not None and self.tpm.manufacturable():
            seconds, step = befall(self.plan.tpm, self.tpm)
            self._world_seconds += seconds
            if step is not None:
                self.client.report.steps.append(step)
        self.client.enroll()

    def change_network(self, network: NetworkPlan) -> None:
        """A service comes back or goes away; the client keeps its state."""
        self._path.close()
        self._path = ExitStack()
        self.network = network
        endpoints = self._open_path(network)
        if self.client is not None:
            self.client.use_endpoints(endpoints)

    def change_tpm(self, change: TPMChange) -> None:
        if self.tpm is None or not self.tpm.manufacturable():
            raise HarnessError(f"{self.plan.key}: no TPM the harness may change")
        seconds, step = tpm_change(change, self.tpm)
        self._world_seconds += seconds
        if self.client is not None:
            self.client.report.steps.append(step)

    def finish(self) -> DeviceRun:
        """What the device did so far, for a result."""
        run = self.run
        report = self.client.report if self.client is not None else None
        run.report = report
        run.steps = [*self._world_steps, *(report.steps if report else [])]
        for link in self._links:
            run.steps.extend(ClientStep(step="network.link", ok=False, detail=what) for what in link.log)
        run.tpm_seconds = self._world_seconds + (report.tpm_seconds if report else 0.0)
        run.seconds = time.perf_counter() - self._started
        return run

    def _open_path(self, network: NetworkPlan) -> Endpoints:
        endpoints, links = self._path.enter_context(device_network(network, self.env.services))
        self._links.extend(links)
        return endpoints

    def _factory(self) -> RunningTPM | None:
        """The device's TPM as it left the factory (and an earlier enrollment, if any)."""
        plan = self.plan
        if plan.tpm.family == "none":
            return None
        tpm = self._backend.start(
            TPMRequest(family="1.2" if plan.tpm.family == "1.2" else "2.0"), self.env.workdir
        )
        self._stack.callback(tpm.close)
        self.run.engine = engine_of(tpm)
        if tpm.manufacturable() and plan.tpm.family == "2.0":
            seconds, step = _manufacture(plan, self.env, tpm)
            self._world_seconds += seconds
            self._world_steps.append(step)
            if plan.tpm.mdm_key_present:
                self._world_seconds += leave_mdm_key(tpm)
                self._world_steps.append(
                    ClientStep(step="world.tpm.mdm_key", ok=True, detail="an earlier enrollment's MDM key")
                )
        return tpm


def _manufacture(plan: DevicePlan, env: FleetEnvironment, tpm: RunningTPM) -> tuple[float, ClientStep]:
    start = time.perf_counter()
    issuer = vendor_ca(env.pki_dir, plan.tpm.issuer) if plan.tpm.issuer else None
    identity = TPMIdentity(plan.tpm.manufacturer_id, plan.tpm.model, plan.tpm.firmware)
    with TimedESAPI(tpm.tcti) as esapi:
        manufacture(
            esapi,
            identity=identity,
            issuer=issuer,
            algorithm=plan.tpm.ek_algorithm,
            now=dt.datetime.now(dt.UTC),
            one_rdn=plan.tpm.one_rdn,
        )
        spent = esapi.seconds
    who = issuer.name if issuer else "no EK certificate"
    step = ClientStep(
        step="factory.manufacture",
        ok=True,
        detail=f"{plan.tpm.ek_algorithm} EK, {identity.manufacturer} {identity.model} "
        f"{identity.version}, certificate by {who}",
        seconds=round(time.perf_counter() - start, 4),
    )
    return spent, step
