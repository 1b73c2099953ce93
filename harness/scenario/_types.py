"""The value types of a scenario's core settings, and what an expectation may say.

Device plans carry the same types; the group and step models build on them. The types of
the world conditions' settings live with each condition (harness.world).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BeforeValidator,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from ..status import AttestationStatus, StatusDetail
from ..tpm import BackendSpec
from ..world import Strict

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
