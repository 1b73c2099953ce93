"""What a condition may add to a device's plan: the client's behaviour and the factory's TPM."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..client import ClientBehaviour
    from ..scenario import EKKind, TPMFamilySetting


@dataclass(frozen=True)
class TPMPlan:
    """The TPM as its vendor's factory makes it (what befalls it later is the world's)."""

    family: TPMFamilySetting
    manufacturer_id: str
    model: str
    firmware: str  # id:XXXXXXXX
    ek_algorithm: EKKind
    one_rdn: bool
    issuer: str | None  # the key of the harness CA that signs the EK certificate
    # An external TPM the harness did not make, reached by this TCTI; used as it is.
    tcti: str | None = None


@dataclass
class PlanDraft:
    """A device's plan while the conditions add to it (fleet's plan_group makes it final)."""

    behaviour: ClientBehaviour
    tpm: TPMPlan
    world: dict[str, object] = field(default_factory=dict)
