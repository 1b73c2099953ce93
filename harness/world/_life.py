"""What a condition sees of a device at its hooks: the device's life, its factory, its path."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from ..client import ClientBehaviour, WindowsClient
    from ..network import Route, Rule
    from ..pki import CertificateAuthority, TPMIdentity
    from ..results import ClientStep
    from ..tpm import RunningTPM
    from ._plan import TPMPlan

T = TypeVar("T")


class DeviceLife(Protocol):
    """One live device (fleet's LiveDevice), as the conditions' hooks act on it."""

    @property
    def key(self) -> str: ...

    @property
    def fault_seed(self) -> str:
        """The seed of an intermittent fault on this device: drawn anew each run."""

    @property
    def world(self) -> Mapping[str, object]:
        """The device's world now: its plan's values, as `world:` steps changed them since."""

    @property
    def tpm_plan(self) -> TPMPlan: ...

    @property
    def behaviour(self) -> ClientBehaviour: ...

    @property
    def client(self) -> WindowsClient | None:
        """The current Windows install's client; None before the factory's work is done."""

    def harness_tpm(self) -> RunningTPM | None:
        """The device's TPM when the harness made it and may change it; else None."""

    def changeable_tpm(self) -> RunningTPM:
        """As harness_tpm, but a HarnessError when there is none."""

    def vendor_ca(self, key: str) -> CertificateAuthority: ...

    def helper(self, name: str) -> Mapping[str, str]:
        """What a running helper service offers ('url', 'dir'); HarnessError when not running."""

    def helper_if_running(self, name: str) -> Mapping[str, str] | None: ...

    def note_world(self, step: ClientStep, tpm_seconds: float) -> None:
        """Record a world step before the client's own (the factory's work)."""

    def note(self, step: ClientStep, tpm_seconds: float) -> None:
        """Record a world step among the client's, where it happened."""

    def change_world(self, values: Mapping[str, object]) -> None:
        """Change settings of the device's world; its network path is rebuilt from them."""

    def set_tpm_plan(self, plan: TPMPlan) -> None: ...

    def upgrade_os(self, build: str) -> None: ...

    def clear_tpm(self) -> None:
        """TPM2_Clear through the platform hierarchy, as the firmware's 'Clear TPM' does."""

    def reinstall(self) -> None:
        """Reset: a new Windows install on a cleared TPM, joined to Entra and enrolled anew."""


@dataclass
class FactoryOrder:
    """What the factory is about to make; factory_order hooks may change it."""

    identity: TPMIdentity
    now: dt.datetime  # the certificates' notBefore
    issuer: CertificateAuthority | None  # who certifies the EK
    write_nv_certificate: bool = True  # False: the certificate goes elsewhere (or nowhere)
    # Said after the issuer in the factory's step ('published on the vendor's service').
    notes: list[str] = field(default_factory=list)


@dataclass
class NetworkPath:
    """The device's path to the services while network_path hooks shape it.

    A hook may point a service elsewhere (`aik_ca = path.enter(RefusingEndpoint()).url`) or
    add rules and routes to the link every MDM request passes through.
    """

    primary: str  # the MDM service (and by default every other service)
    stack: ExitStack
    aik_ca: str
    identity: str
    ek_service: str = ""
    push: str = ""  # the MDM service's push channel; empty: the MDM URL
    rules: list[Rule] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    # Stand-ins whose `log` (a list of str) says what they did, for the device's evidence.
    logged: list[Any] = field(default_factory=list)

    def enter(self, endpoint: AbstractContextManager[T]) -> T:
        """Start a stand-in endpoint for as long as this path lasts."""
        return self.stack.enter_context(endpoint)
