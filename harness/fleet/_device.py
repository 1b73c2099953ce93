"""One device's life, run in a worker: a TPM from the factory, then the Windows client.

This is the enrollment strategy: manufacture the TPM the plan describes, hand
it to the simulated client, and return what the client did. The expected
outcome is not known here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

from tpm2_pytss import TSS2_Exception

from ..client import ClientBehaviour, ClientConfig, ClientReport, Endpoints, WindowsClient
from ..errors import HarnessError
from ..network import FlakyEndpoint, Link
from ..pki import CertificateAuthority, TPMIdentity, vendor_ca
from ..results import ClientStep, TPMCommand
from ..tpm import (
    ExternalTPM,
    PlatformControl,
    RunningTPM,
    TimedESAPI,
    TPMBackend,
    TPMRequest,
    Trace,
    engine_of,
    manufacture,
    start_trace,
    stop_trace,
    tpm_death,
)
from ..world import REGISTRY, FactoryOrder, NetworkPath, TPMPlan, require_helper
from ._external import left_as_found, turn_on
from ._plan import DevicePlan

_DIED = "TPM process died: "


@dataclass(frozen=True)
class FleetEnvironment:
    """What every worker shares: where the services are and where the vendor CAs are."""

    server_url: str
    pki_dir: Path
    workdir: Path
    # The helper services the run started for its worlds (harness.world), by name: what each
    # offers ('url', 'dir'). Plain strings, so that the environment travels to workers.
    helpers: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    trace: str = "failures"  # off | failures | all: which devices' TPM command traces a result keeps
    fault_seed: int = 0  # drawn per run (HARNESS_FAULT_SEED replays one): intermittent faults


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
    trace: list[TPMCommand] = field(default_factory=list)  # every TPM command, when traced
    keep_trace: bool = False  # keep the trace even when the device matched (--trace all)


def run_device(plan: DevicePlan, env: FleetEnvironment, backend: TPMBackend) -> DeviceRun:
    """Manufacture, join Entra, let the world happen to the TPM, then attest and enroll."""
    with LiveDevice(plan, env, backend) as device:
        device.guard(device.first_enrollment)
        return device.finish()


class LiveDevice:
    """A device that stays alive after its first enrollment, for scenario steps.

    It owns its TPM, its network path and its client until closed.
    """

    def __init__(
        self, plan: DevicePlan, env: FleetEnvironment, backend: TPMBackend, *, push: bool = False
    ) -> None:
        self.plan = plan
        self.push = push  # its client holds a push channel once enrolled
        self.env = env
        self._world = dict(plan.world)  # the plan's world, as `world:` steps change it
        self.tpm: RunningTPM | None = None
        self._client: WindowsClient | None = None
        self.run = DeviceRun(key=plan.key, emm_device_id=plan.emm_device_id)
        self._backend = backend
        self._started = time.perf_counter()
        self._stack = ExitStack()
        self._client_stack = ExitStack()  # the current Windows install's client; a wipe replaces it
        self._path = ExitStack()  # the current network path; replaced when the world changes
        self._links: list[Link | FlakyEndpoint] = []
        self._world_steps: list[ClientStep] = []
        self._world_seconds = 0.0
        self._earlier_steps: list[ClientStep] = []  # of the Windows installs before a wipe
        self._earlier_tpm_seconds = 0.0
        self._endpoints: Endpoints | None = None
        self._trace: Trace | None = None
        self.run.keep_trace = env.trace == "all"

    def __enter__(self) -> LiveDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._client_stack.close()
        finally:
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
        self._client = self._new_client(self._open_path())
        for condition in REGISTRY.conditions():
            condition.before_join(self)
        self._client.join()
        self._sending("world")
        for condition in REGISTRY.conditions():
            condition.after_join(self)
        self._sending("client")
        self._client.enroll()

    def change(self, name: str, value: object) -> None:
        """A `world:` step's key (harness.world), with its value."""
        self._sending("world")
        try:
            REGISTRY.for_step(name).change(self, value)
        finally:
            self._sending("client")

    def _sending(self, source: str) -> None:
        """Who sends the TPM commands from now on, for the trace: factory, world or client."""
        if self._trace is not None:
            self._trace.source = source

    @property
    def fault_seed(self) -> str:
        """This run's seed for an intermittent fault on this device: new each run, per device."""
        return f"{self.env.fault_seed}:{self.plan.key}"

    def check_in(self) -> None:
        """The device's check-in (scheduled, or a user's Sync)."""
        if self._client is not None:
            self._client.check_in()

    # --- the device's life, as the world's conditions act on it (harness.world.DeviceLife) ---

    @property
    def key(self) -> str:
        return self.plan.key

    @property
    def world(self) -> Mapping[str, object]:
        return self._world

    @property
    def tpm_plan(self) -> TPMPlan:
        return self.plan.tpm

    @property
    def behaviour(self) -> ClientBehaviour:
        return self.plan.behaviour

    @property
    def client(self) -> WindowsClient | None:
        return self._client

    def harness_tpm(self) -> RunningTPM | None:
        return self.tpm if self.tpm is not None and self.tpm.manufacturable() else None

    def changeable_tpm(self) -> RunningTPM:
        tpm = self.harness_tpm()
        if tpm is None:
            raise HarnessError(f"{self.plan.key}: no TPM the harness may change")
        return tpm

    def vendor_ca(self, key: str) -> CertificateAuthority:
        return vendor_ca(self.env.pki_dir, key)

    def helper(self, name: str) -> Mapping[str, str]:
        return require_helper(self.env.helpers, name)

    def helper_if_running(self, name: str) -> Mapping[str, str] | None:
        return self.env.helpers.get(name) or None

    def note_world(self, step: ClientStep, tpm_seconds: float) -> None:
        self._world_seconds += tpm_seconds
        self._world_steps.append(step)

    def note(self, step: ClientStep, tpm_seconds: float) -> None:
        self._world_seconds += tpm_seconds
        if self._client is not None:
            self._client.report.steps.append(step)

    def change_world(self, values: Mapping[str, object]) -> None:
        """A service comes back or goes away; the client keeps its state."""
        self._world.update(values)
        self._path.close()
        self._path = ExitStack()
        endpoints = self._open_path()
        self._endpoints = endpoints
        if self._client is not None:
            self._client.use_endpoints(endpoints)

    def set_tpm_plan(self, plan: TPMPlan) -> None:
        self.plan = replace(self.plan, tpm=plan)

    def upgrade_os(self, build: str) -> None:
        self.plan = replace(self.plan, inventory=replace(self.plan.inventory, os_version=build))
        if self._client is not None:
            self._client.upgrade(build)

    def clear_tpm(self) -> None:
        _clear(self.changeable_tpm())

    def reinstall(self) -> None:
        """Reset and re-enrolment: a new Windows install on a cleared TPM, joined and enrolled anew.

        It loses the TPM's keys (Entra, MDM), the device credential and the Entra device
        object; the MDM service sees a new device, and the old record stays in the report.
        """
        if self._client is not None:
            self._earlier_steps.extend(self._client.report.steps)
            self._earlier_tpm_seconds += self._client.report.tpm_seconds
        self._client_stack.close()
        self._client_stack = ExitStack()
        self._client = None
        if self.tpm is not None and self.tpm.manufacturable() and self.plan.tpm.family == "2.0":
            self._sending("world")
            _clear(self.tpm)
            self._sending("client")
        digest = hashlib.sha256(f"wipe:{self.plan.emm_device_id}".encode()).digest()
        behaviour = self.plan.behaviour
        for condition in REGISTRY.conditions():
            behaviour = condition.reinstalled(behaviour)
        self.plan = replace(
            self.plan, emm_device_id=str(uuid.UUID(bytes=digest[:16], version=4)), behaviour=behaviour
        )
        self.run.emm_device_id = self.plan.emm_device_id
        self._earlier_steps.append(
            ClientStep(
                step="world.wipe", ok=True, detail=f"reset; enrolls again as {self.plan.emm_device_id}"
            )
        )
        self._client = self._new_client(self._endpoints or self._open_path())
        self._client.join()
        self._client.enroll()

    def _new_client(self, endpoints: Endpoints) -> WindowsClient:
        self._endpoints = endpoints
        config = ClientConfig(
            endpoints=endpoints,
            inventory=self.plan.inventory,
            behaviour=self.plan.behaviour,
            emm_device_id=self.plan.emm_device_id,
            push_channel=self.push,
        )
        return self._client_stack.enter_context(WindowsClient(config, self.tpm))

    def finish(self) -> DeviceRun:
        """What the device did so far, for a result."""
        run = self.run
        report = self._client.report if self._client is not None else None
        run.report = report
        run.steps = [*self._world_steps, *self._earlier_steps, *(report.steps if report else [])]
        for link in self._links:
            run.steps.extend(ClientStep(step="network.link", ok=False, detail=what) for what in link.log)
        run.tpm_seconds = (
            self._world_seconds + self._earlier_tpm_seconds + (report.tpm_seconds if report else 0.0)
        )
        # Asked of the backend, not read from the client's HRESULT: a device without a TPM on
        # purpose must still be "TPM isn't available", and one whose swtpm died is a harness error.
        died = tpm_death(self.tpm) if self.tpm is not None else None
        if died and not run.error.startswith(_DIED):
            run.error = f"{_DIED}{died}" + (f" (then {run.error})" if run.error else "")
        run.seconds = time.perf_counter() - self._started
        run.trace = list(self._trace.commands) if self._trace is not None else []
        return run

    def _open_path(self) -> Endpoints:
        """The endpoints the client uses, as the world's conditions shape the path to them."""
        primary = self.env.server_url
        path = NetworkPath(primary=primary, stack=self._path, aik_ca=primary, identity=primary)
        for condition in REGISTRY.conditions():
            condition.network_path(self, path)
        self._links.extend(path.logged)
        mdm = primary
        if path.rules or path.routes:
            link = path.enter(Link(primary, rules=path.rules, routes=path.routes))
            self._links.append(link)
            mdm = link.url
        return Endpoints(
            mdm=mdm, aik_ca=path.aik_ca, identity=path.identity, ek_service=path.ek_service, push=path.push
        )

    def _factory(self) -> RunningTPM | None:
        """The device's TPM as it left the factory (and an earlier enrollment, if any)."""
        plan = self.plan
        if plan.tpm.family == "none":
            return None
        if plan.tpm.tcti is not None:
            tpm: RunningTPM = ExternalTPM(plan.tpm.tcti)
        else:
            tpm = self._backend.start(
                TPMRequest(family="1.2" if plan.tpm.family == "1.2" else "2.0"), self.env.workdir
            )
        self._stack.callback(tpm.close)
        self.tpm = tpm  # known before manufacturing, so that a death during it is seen
        if self.env.trace != "off":
            self._trace = start_trace(tpm.tcti)
            self._trace.source = "factory"
            self._stack.callback(stop_trace, tpm.tcti)
        if isinstance(tpm, ExternalTPM):
            # Entered before the client, so they close after it: the key is evicted once the
            # client's session has ended, and the next device gets its turn after that.
            self._stack.enter_context(turn_on(tpm.spec, self.env.workdir))
            self._stack.enter_context(left_as_found(tpm.spec))
            self._world_steps.append(ClientStep(step="world.tpm.external", ok=True, detail=tpm.description))
        self.run.engine = engine_of(tpm)
        if tpm.manufacturable() and plan.tpm.family == "2.0":
            self._manufacture(tpm)
            self._sending("world")
            for condition in REGISTRY.conditions():
                condition.after_manufacture(self)
        self._sending("client")
        return tpm

    def _manufacture(self, tpm: RunningTPM) -> None:
        start = time.perf_counter()
        plan = self.plan.tpm
        order = FactoryOrder(
            identity=TPMIdentity(plan.manufacturer_id, plan.model, plan.firmware),
            now=dt.datetime.now(dt.UTC),
            issuer=vendor_ca(self.env.pki_dir, plan.issuer) if plan.issuer else None,
        )
        for condition in REGISTRY.conditions():
            condition.factory_order(self, order)
        with TimedESAPI(tpm.tcti) as esapi:
            made = manufacture(
                esapi,
                identity=order.identity,
                issuer=order.issuer if order.write_nv_certificate else None,
                algorithm=plan.ek_algorithm,
                now=order.now,
                one_rdn=plan.one_rdn,
            )
            spent = esapi.seconds
        for condition in REGISTRY.conditions():
            condition.factory_made(self, order, made)
        who = ", ".join([order.issuer.name if order.issuer else "no EK certificate", *order.notes])
        identity = order.identity
        step = ClientStep(
            step="factory.manufacture",
            ok=True,
            detail=f"{plan.ek_algorithm} EK, {identity.manufacturer} {identity.model} "
            f"{identity.version}, certificate by {who}",
            seconds=round(time.perf_counter() - start, 4),
        )
        self.note_world(step, spent)


def _clear(tpm: RunningTPM) -> None:
    """TPM2_Clear through the platform hierarchy, as the firmware's 'Clear TPM' does.

    A new storage seed (the owner's keys, the Entra key and the MDM key stored under it can
    no longer be loaded; the persisted MDM key is evicted), empty owner and lockout
    authorizations, the lockout counter reset; the EK and its platform-written certificate stay.
    """
    if not isinstance(tpm, PlatformControl):
        raise HarnessError(f"{tpm.description} has no platform interface the harness can clear")
    tpm.clear()
