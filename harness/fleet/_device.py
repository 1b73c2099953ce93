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
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key
from tpm2_pytss import TPM2B_PUBLIC, TSS2_Exception

from ..catalog import firmware_version
from ..client import ClientConfig, ClientReport, Endpoints, WindowsClient
from ..ek_service import publish
from ..errors import HarnessError
from ..network import Link
from ..pki import certificate_der, vendor_ca
from ..results import ClientStep
from ..scenario import TPMChange
from ..tcg import TPMIdentity
from ..tpm import (
    ExternalTPM,
    RunningTPM,
    TimedESAPI,
    TPMBackend,
    TPMRequest,
    engine_of,
    manufacture,
    tpm_death,
)
from ._external import left_as_found, turn_on
from ._plan import DevicePlan, NetworkPlan
from ._world import Services, befall, clear_tpm, device_network, leave_mdm_key, tpm_change, update_firmware

_DIED = "TPM process died: "


@dataclass(frozen=True)
class FleetEnvironment:
    """What every worker shares: where the services are and where the vendor CAs are."""

    server_url: str
    pki_dir: Path
    workdir: Path
    lagging_replica_url: str = ""  # a replica of the server whose clock is behind
    foreign_identity_url: str = ""  # another tenant's identity provider
    ek_service_url: str = ""  # the TPM vendors' online EK-certificate service
    ek_service_dir: str = ""  # where the factory publishes certificates to it

    @property
    def services(self) -> Services:
        return Services(
            self.server_url, self.lagging_replica_url, self.foreign_identity_url, self.ek_service_url
        )


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

    def __init__(
        self, plan: DevicePlan, env: FleetEnvironment, backend: TPMBackend, *, push: bool = False
    ) -> None:
        self.plan = plan
        self.push = push  # its client holds a push channel once enrolled
        self.env = env
        self.network = plan.network
        self.tpm: RunningTPM | None = None
        self.client: WindowsClient | None = None
        self.run = DeviceRun(key=plan.key, emm_device_id=plan.emm_device_id)
        self._backend = backend
        self._started = time.perf_counter()
        self._stack = ExitStack()
        self._client_stack = ExitStack()  # the current Windows install's client; a wipe replaces it
        self._path = ExitStack()  # the current network path; replaced when the world changes
        self._links: list[Link] = []
        self._world_steps: list[ClientStep] = []
        self._world_seconds = 0.0
        self._earlier_steps: list[ClientStep] = []  # of the Windows installs before a wipe
        self._earlier_tpm_seconds = 0.0
        self._endpoints: Endpoints | None = None

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
        self.client = self._new_client(self._open_path(self.network))
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
        self._endpoints = endpoints
        if self.client is not None:
            self.client.use_endpoints(endpoints)

    def change_tpm(self, change: TPMChange) -> None:
        seconds, step = tpm_change(change, self._changeable_tpm())
        self._world_seconds += seconds
        if self.client is not None:
            self.client.report.steps.append(step)

    def update_firmware(self, firmware: str) -> None:
        """The vendor's firmware update, with the EK certificate re-issued by its CA."""
        tpm = self._changeable_tpm()
        plan = replace(self.plan.tpm, firmware=firmware_version(firmware))
        issuer = vendor_ca(self.env.pki_dir, plan.issuer) if plan.issuer else None
        identity = TPMIdentity(plan.manufacturer_id, plan.model, plan.firmware)
        seconds, step = update_firmware(
            tpm, identity, issuer, algorithm=plan.ek_algorithm, one_rdn=plan.one_rdn
        )
        self.plan = replace(self.plan, tpm=plan)
        self._world_seconds += seconds
        if self.client is not None:
            self.client.report.steps.append(step)

    def upgrade_os(self, build: str) -> None:
        self.plan = replace(self.plan, inventory=replace(self.plan.inventory, os_version=build))
        if self.client is not None:
            self.client.upgrade(build)

    def update_client(self) -> None:
        """A client update that brings AIK support."""
        behaviour = replace(self.plan.behaviour, sends_aik_items=True)
        self.plan = replace(self.plan, behaviour=behaviour)
        if self.client is not None:
            self.client.update_client(behaviour)

    def repair_token_source(self) -> None:
        """The identity provider the device reaches is the tenant's own, in time, again."""
        self.change_network(replace(self.network, identity="tenant"))

    def rejoin_entra(self) -> None:
        if self.client is not None:
            self.client.rejoin()

    def check_in(self) -> None:
        """The device's check-in (scheduled, or a user's Sync)."""
        if self.client is not None:
            self.client.check_in()

    def wipe(self) -> None:
        """Reset and re-enrolment: a new Windows install on a cleared TPM, joined and enrolled anew.

        It loses the TPM's keys (Entra, MDM), the device credential and the Entra device
        object; the MDM service sees a new device, and the old record stays in the report.
        """
        if self.client is not None:
            self._earlier_steps.extend(self.client.report.steps)
            self._earlier_tpm_seconds += self.client.report.tpm_seconds
        self._client_stack.close()
        self._client_stack = ExitStack()
        self.client = None
        if self.tpm is not None and self.tpm.manufacturable() and self.plan.tpm.family == "2.0":
            clear_tpm(self.tpm)
        digest = hashlib.sha256(f"wipe:{self.plan.emm_device_id}".encode()).digest()
        behaviour = replace(
            self.plan.behaviour,
            powers_off_after_nonce=False,
            token_for_previous_device=False,
            first_enrollment_version="",
        )
        self.plan = replace(
            self.plan, emm_device_id=str(uuid.UUID(bytes=digest[:16], version=4)), behaviour=behaviour
        )
        self.run.emm_device_id = self.plan.emm_device_id
        self._earlier_steps.append(
            ClientStep(
                step="world.wipe", ok=True, detail=f"reset; enrolls again as {self.plan.emm_device_id}"
            )
        )
        self.client = self._new_client(self._endpoints or self._open_path(self.network))
        self.client.join()
        self.client.enroll()

    def _changeable_tpm(self) -> RunningTPM:
        if self.tpm is None or not self.tpm.manufacturable():
            raise HarnessError(f"{self.plan.key}: no TPM the harness may change")
        return self.tpm

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
        report = self.client.report if self.client is not None else None
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
        if plan.tpm.tcti is not None:
            tpm: RunningTPM = ExternalTPM(plan.tpm.tcti)
        else:
            tpm = self._backend.start(
                TPMRequest(family="1.2" if plan.tpm.family == "1.2" else "2.0"), self.env.workdir
            )
        self._stack.callback(tpm.close)
        self.tpm = tpm  # known before manufacturing, so that a death during it is seen
        if isinstance(tpm, ExternalTPM):
            # Entered before the client, so they close after it: the key is evicted once the
            # client's session has ended, and the next device gets its turn after that.
            self._stack.enter_context(turn_on(tpm.spec, self.env.workdir))
            self._stack.enter_context(left_as_found(tpm.spec))
            self._world_steps.append(ClientStep(step="world.tpm.external", ok=True, detail=tpm.description))
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
    online = plan.tpm.ek_certificate_online and issuer is not None
    now = dt.datetime.now(dt.UTC)
    with TimedESAPI(tpm.tcti) as esapi:
        made = manufacture(
            esapi,
            identity=identity,
            issuer=None if online else issuer,
            algorithm=plan.tpm.ek_algorithm,
            now=now,
            one_rdn=plan.tpm.one_rdn,
        )
        spent = esapi.seconds
    who = issuer.name if issuer else "no EK certificate"
    if online and issuer is not None:
        # The vendor's CA certifies the EK all the same; the certificate goes to the vendor's
        # online service instead of NV.
        if not env.ek_service_dir:
            raise HarnessError("tpm.ek_certificate 'online' needs the harness's EK-certificate service")
        ek_key = load_der_public_key(bytes(TPM2B_PUBLIC.unmarshal(made.ek_public)[0].to_der()))
        if not isinstance(ek_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
            raise HarnessError("the EK is neither RSA nor ECC")
        certificate = issuer.issue_ek_certificate(ek_key, identity, now=now, one_rdn=plan.tpm.one_rdn)
        publish(Path(env.ek_service_dir), certificate_der(certificate))
        who += ", published on the vendor's online EK-certificate service (not in NV)"
    step = ClientStep(
        step="factory.manufacture",
        ok=True,
        detail=f"{plan.tpm.ek_algorithm} EK, {identity.manufacturer} {identity.model} "
        f"{identity.version}, certificate by {who}",
        seconds=round(time.perf_counter() - start, 4),
    )
    return spent, step
