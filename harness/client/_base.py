"""The device side a Windows client keeps between its enrollments: TPM session, Entra join, token.

WindowsClient (in _windows) adds the attestation and enrollment flow; this base holds the
bookkeeping of its steps and what the device's Entra join gives it.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Self

from ..pki import TPMIdentity
from ..results import ClientStep
from ..status import HResult
from ..tpm import RunningTPM
from ._config import ClientBehaviour, ClientConfig, Endpoints
from ._entra import DeviceKey, SoftwareDeviceKey, TPMDeviceKey
from ._failure import ClientFailure
from ._provider import TPMProvider
from ._push import PushChannel, PushNote
from ._pytss import PytssTPM
from ._schedule import sync_delay
from ._service import ServiceClient


@dataclass
class ClientReport:
    """What the client did: its steps, what it sent, and the TPM time it spent."""

    emm_device_id: str
    steps: list[ClientStep] = field(default_factory=list)
    sent_items: list[str] = field(default_factory=list)
    hresult: int = HResult.S_OK
    enrolled: bool = False
    tpm_seconds: float = 0.0
    tpm_commands: int = 0
    # The enrollment request as sent, and its bearer token: recorded evidence that the
    # verifier can be fed again later, from this or any other TPM.
    enrollment_request: dict[str, Any] | None = None
    token: str | None = None
    # The enrollment nonce as the service issued it (value, expiresAt), and the keys the
    # client registered with the identity provider by device ID: the rest of a bundle.
    nonce: bytes | None = None
    nonce_expires_at: str | None = None
    # When the service judged the last enrollment, on its clock: the time to judge the bundle at.
    enrollment_judged_at: str | None = None
    entra_keys: dict[str, bytes] = field(default_factory=dict)


class DeviceBase:
    """A device's TPM session, its Entra join and token, and the record of its steps."""

    def __init__(self, config: ClientConfig, tpm: RunningTPM | TPMProvider | None) -> None:
        self._config = config
        self._tpm: TPMProvider | None = (
            tpm if tpm is None or isinstance(tpm, TPMProvider) else PytssTPM(tpm.tcti)
        )
        self._service = ServiceClient(config.endpoints, timeout=config.http_timeout)
        self.report = ClientReport(emm_device_id=config.emm_device_id or str(uuid.uuid4()))
        self._items: dict[str, str] = {}
        self._token: str | None = None
        self._device_key: DeviceKey | None = None
        self._device_id = ""
        self._reported_identity: TPMIdentity | None = None
        self._mdm_key_existed = False
        self._token_key: DeviceKey | None = None  # the key whose device object the token names
        self._token_device = ""
        self._enrollments = 0
        # A power cut is one event: the device comes back on and its next attempt runs.
        self._power_cut_pending = config.behaviour.powers_off_after_nonce
        # Why the last attempt is worth another at the next check-in ('' when it is not);
        # the client knows only what it met, never what the server decided.
        self.retry = ""
        self._entra_key_was_software = False
        self._push: PushChannel | None = None
        # Autopilot: the device passed the TPM attestation that comes before provisioning; or
        # why provisioning stopped (the device then never enrolls).
        self._provisioned = False
        self.stopped = ""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._push is not None:
            self._push.close()
        self._close_tpm()
        self._service.close()

    # --- push channel ----------------------------------------------------------------

    def _hold_push_channel(self) -> None:
        """Once enrolled, hold the push channel open (when this device keeps one)."""
        if self._push is not None or not self._config.push_channel:
            return
        self._push = PushChannel(
            self._config.endpoints.push or self._config.endpoints.mdm,
            self.report.emm_device_id,
            self._push_headers,
        )

    def _push_headers(self) -> dict[str, str] | None:
        credential = self._service.device_credential
        return {"Device-Credential": credential} if credential else None

    @property
    def push(self) -> PushChannel | None:
        return self._push

    def push_sync_delay(self) -> float:
        """Seconds from a push to the check-in it starts, as busy or idle as this device is."""
        return sync_delay(self.report.emm_device_id, idle=self._config.behaviour.idle)

    def pushes(self) -> list[PushNote]:
        return self._push.received() if self._push is not None else []

    # --- bookkeeping -----------------------------------------------------------------

    @contextmanager
    def _step(self, name: str) -> Iterator[dict[str, str]]:
        note: dict[str, str] = {}
        start = time.perf_counter()
        try:
            yield note
        except ClientFailure as exc:
            self._record(name, False, exc.reason, start)
            raise
        self._record(name, True, note.get("detail", ""), start)

    def _record(self, name: str, ok: bool, detail: str, start: float) -> None:
        self.report.steps.append(
            ClientStep(step=name, ok=ok, detail=detail, seconds=round(time.perf_counter() - start, 4))
        )

    # --- Entra join ------------------------------------------------------------------

    def join(self) -> None:
        """Entra join: the device key, its registration, and the token enrollment presents.

        Enrollment goes on without a token if this fails; the server will say why.
        """
        try:
            with contextlib.suppress(ClientFailure):
                self._identity()
        finally:
            self._close_tpm()  # the TPM may change between joining and enrolling

    def upgrade(self, build: str) -> None:
        """A Windows update to `build`; its token broker asks for the device's own token."""
        inventory = replace(self._config.inventory, os_version=build)
        behaviour = replace(self._config.behaviour, token_for_previous_device=False)
        self._config = replace(self._config, inventory=inventory, behaviour=behaviour)
        self._record("os.upgrade", True, f"Windows updated to {build}", time.perf_counter())
        if self._device_key is not None:
            self._token_key, self._token_device = self._device_key, self._device_id
        self._fresh_token()

    def update_client(self, behaviour: ClientBehaviour) -> None:
        """A client update: the build now behaves as `behaviour` says (AIK support, say)."""
        self._config = replace(self._config, behaviour=behaviour)
        detail = "client updated" + (", with AIK support" if behaviour.sends_aik_items else "")
        self._record("client.update", True, detail, time.perf_counter())

    def rejoin(self) -> None:
        """Entra join again with the device key in the TPM (Autopilot's offline domain join
        completing its hybrid join): a new device object, key and token."""
        behaviour = replace(
            self._config.behaviour, entra_key_in_tpm=True, entra_joined=True, token_for_previous_device=False
        )
        self._config = replace(self._config, behaviour=behaviour)
        self.join()

    def use_endpoints(self, endpoints: Endpoints) -> None:
        """The network changed under the device (a service came back or went away)."""
        self._config = replace(self._config, endpoints=endpoints)
        self._service.endpoints = endpoints
        if self._push is not None:
            self._push.retarget(endpoints.push or endpoints.mdm)

    def _open_tpm(self) -> TPMProvider:
        if self._tpm is None:
            raise ClientFailure(HResult.TBS_E_TPM_NOT_FOUND, "this device has no TPM")
        self._tpm.open()
        return self._tpm

    def _close_tpm(self) -> None:
        if self._tpm is not None:
            self._tpm.close()
            self.report.tpm_seconds = self._tpm.seconds
            self.report.tpm_commands = self._tpm.commands

    # --- identity provider -----------------------------------------------------------

    def _identity(self) -> None:
        behaviour = self._config.behaviour
        assertion: str | None = None
        if behaviour.entra_joined:
            key: DeviceKey | None = None
            if behaviour.entra_key_in_tpm:
                try:
                    with self._step("entra.device_key") as note:
                        key = TPMDeviceKey.create(self._open_tpm())
                        note["detail"] = "RSA 2048 device key created in the TPM"
                except ClientFailure:
                    key = None  # Windows joins with a software key when the TPM fails
            if key is None:
                with self._step("entra.device_key") as note:
                    key = SoftwareDeviceKey()
                    note["detail"] = "RSA 2048 device key created in software (not TPM-bound)"
            self._device_key = key
            self._device_id = self._register(key, "entra.register")
            self._token_key, self._token_device = key, self._device_id
            if behaviour.token_for_previous_device:
                self._token_key = SoftwareDeviceKey()
                self._token_device = self._register(self._token_key, "entra.previous_registration")
            assertion = self._assertion()
        with self._step("entra.token") as note:
            self._token = self._service.token(assertion, self._upn)
            note["detail"] = "device token" if assertion else "user token (device not joined)"

    @property
    def _upn(self) -> str:
        """Whose token it is: the user's, or nobody's on a shared (self-deployed) device."""
        return "" if self._config.behaviour.provisioning == "shared-device" else self._config.inventory.upn

    def _assertion(self) -> str | None:
        key = self._token_key
        if key is None:
            return None
        with self._step("entra.assertion") as note:
            assertion = key.assertion(self._token_device, self._service.assertion_nonce())
            note["detail"] = f"signed for device {self._token_device} over the provider's nonce"
        return assertion

    def _fresh_token(self) -> None:
        """A new token before a later enrollment (tokens live an hour); the old one stays if
        the device key can no longer sign, and the server will say so."""
        if self._token_key is None:
            return
        try:
            with contextlib.suppress(ClientFailure):
                assertion = self._assertion()
                with self._step("entra.token") as note:
                    self._token = self._service.token(assertion, self._upn)
                    note["detail"] = "device token renewed"
        finally:
            self._close_tpm()

    def _register(self, key: DeviceKey, step: str) -> str:
        with self._step(step) as note:
            device_id = self._service.register_device(self._config.inventory.device_name, key.spki())
            note["detail"] = f"device ID {device_id}"
        self.report.entra_keys[device_id] = key.spki()
        return device_id
