"""The value types of a scenario's settings, and what an expectation may say.

Device plans carry the same types; the group and step models build on them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from ..status import AttestationStatus, StatusDetail
from ..tpm import BackendSpec

# The value types of the world's settings; device plans carry the same types.
Platform = Literal[
    "physical",
    "hyper-v",
    "azure-vm",
    "avd",
    "cloud-pc",
    "dev-box",
    "vmware",
    "virtualbox",
    "kvm",
    "parallels",
    "xen",
]
VIRTUAL_PLATFORMS: frozenset[str] = frozenset(
    {"hyper-v", "azure-vm", "avd", "cloud-pc", "dev-box", "vmware", "virtualbox", "kvm", "parallels", "xen"}
)
TPMFamilySetting = Literal["2.0", "1.2", "none"]
EKKind = Literal["rsa2048", "ecc256"]
SanLayout = Literal["one-rdn", "rdn-per-attribute"]
EKCertificateSource = Literal["vendor-ca", "unlisted-ca", "online", "none"]
# The vendors whose firmware TPMs often ship without an EK certificate in NV; Windows fetches
# theirs from the vendor's online EK-certificate service (Intel PTT, AMD fTPM).
ONLINE_EK_VENDORS: frozenset[str] = frozenset({"intel", "amd"})
TPMState = Literal[
    "ready",
    "lockout",
    "owner-auth-unknown",
    "endorsement-disabled",
    "storage-disabled",
    "not-started",
]
MDMKeySetting = Literal["absent", "present"]
TPMChange = Literal["reset-lockout", "lockout", "clear"]
EntraJoin = Literal["tpm", "software", "offline-domain-join", "none"]
TokenSource = Literal["own-device", "previous-device", "foreign-tenant", "lagging-replica"]
AikCaPath = Literal["reachable", "refused", "reset"]
EKServicePath = Literal["reachable", "refused", "reset"]
EnrollmentPath = Literal["delivered", "reset", "dropped", "corrupted", "replayed"]
NonceSource = Literal["primary", "lagging-replica"]
# The device's push channel to the MDM service: open, or blocked (a firewall, no network).
PushPath = Literal["open", "blocked"]
# How the device is provisioned: a user signs in (user-driven), or Autopilot pre-provisions it
# (technician flow), or self-deploys it as a shared device with no user; the last two attest
# the TPM with the AIK service before the device is provisioned.
ProvisioningPath = Literal["user-driven", "autopilot-preprovisioning", "shared-device"]
Ownership = Literal["corporate", "personal"]


def _backend(value: object) -> object:
    return BackendSpec.parse(value) if isinstance(value, str) else value


# The TPM backend registry's own type, written in YAML as the CLI's --backend takes it.
Backend = Annotated[
    BackendSpec,
    BeforeValidator(_backend),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "examples": ["process", "docker", "device:/dev/tpmrm0"]}),
]
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Expectation(Strict):
    status: AttestationStatus
    detail: StatusDetail = StatusDetail.NONE

    @model_validator(mode="after")
    def _detail_fits_status(self) -> Expectation:
        if self.status is AttestationStatus.ATTESTED and self.detail is not StatusDetail.NONE:
            raise ValueError("an 'Attested' device has no status detail")
        if self.status is AttestationStatus.NOT_STARTED and self.detail is not StatusDetail.NONE:
            raise ValueError("a 'Not started' device has no status detail")
        if self.status is AttestationStatus.NOT_ATTESTED and self.detail is StatusDetail.NONE:
            raise ValueError("a 'Not attested' device needs the status detail it is expected to show")
        return self
