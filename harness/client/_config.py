"""What the simulated Windows client knows about itself. No expected outcome lives here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Inventory:
    """What Windows reports about the device (SMBIOS, OS, join state)."""

    device_name: str
    serial: str
    manufacturer: str
    model: str
    os_version: str
    os_edition: str = "Enterprise"
    ownership: Literal["Corporate", "Personal"] = "Corporate"
    upn: str = ""


@dataclass(frozen=True)
class ClientBehaviour:
    """How this client build and device behave; each is a fact of the device, not an outcome."""

    enrollment_version: str = "5.0"
    # A device enrolled before enrollment attestation was on: its first enrollment was sent
    # with this older protocol version (no attestation items); later ones use the current one.
    first_enrollment_version: str = ""
    # An older client that creates no AIK and sends no AIK items.
    sends_aik_items: bool = True
    # False: the Entra device key lives in software (offline domain join), not in the TPM.
    entra_key_in_tpm: bool = True
    # False: the device never registered with the identity provider (user token only).
    entra_joined: bool = True
    # True: the token broker still holds a token for the device object of an earlier join.
    token_for_previous_device: bool = False
    # True: the device loses power once, after fetching the enrollment nonce.
    powers_off_after_nonce: bool = False
    # A client build that attaches a diagnostic log of this many bytes to its request.
    diagnostic_log_bytes: int = 0
    # user-driven, or an Autopilot path (autopilot-preprovisioning, shared-device) that attests
    # the TPM with the AIK service before the device is provisioned.
    provisioning: str = "user-driven"
    # True: idle in connected standby; a push is handled at the next maintenance wake.
    idle: bool = False


@dataclass(frozen=True)
class Endpoints:
    """Where the client finds each service; they can differ to place a fault on one path."""

    mdm: str
    aik_ca: str
    identity: str
    # The TPM vendor's online EK-certificate service, asked when NV holds no EK certificate
    # (as Windows asks Intel's or AMD's); empty: none is known.
    ek_service: str = ""
    # The MDM service's push channel (Windows Push Notification Services); empty: the MDM URL.
    push: str = ""

    @classmethod
    def single(cls, url: str) -> Endpoints:
        return cls(mdm=url, aik_ca=url, identity=url)


@dataclass(frozen=True)
class ClientConfig:
    endpoints: Endpoints
    inventory: Inventory
    behaviour: ClientBehaviour = field(default_factory=ClientBehaviour)
    emm_device_id: str = ""
    http_timeout: float = 30.0
    # Hold a push channel open once enrolled (devices that live on after their first enrollment).
    push_channel: bool = False
