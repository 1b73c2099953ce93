"""tpm.ek_certificate: who signed the EK certificate, and where the factory put it.

'online' is what Intel PTT and AMD fTPM do: the vendor's CA certifies the EK at
manufacturing and publishes the certificate on its online EK-certificate service instead
of writing it to NV; Windows fetches it from there. The service is a helper of the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ...catalog import unlisted_ca_key
from ...errors import HarnessError
from ...tpm import Manufactured
from .. import (
    DeviceLife,
    FactoryOrder,
    HelperContext,
    NetworkPath,
    PlanDraft,
    Setting,
    WorldCondition,
    WorldValues,
    helper_service,
    world_condition,
)
from ._tpm2 import needs_tpm2

if TYPE_CHECKING:
    from ...scenario import ResolvedGroup

EKCertificateSource = Literal["vendor-ca", "unlisted-ca", "online", "none"]
# The vendors whose firmware TPMs often ship without an EK certificate in NV; Windows fetches
# theirs from the vendor's online EK-certificate service (Intel PTT, AMD fTPM).
ONLINE_EK_VENDORS: frozenset[str] = frozenset({"intel", "amd"})

EK_CERTIFICATE: Setting[EKCertificateSource] = Setting(
    "tpm",
    "ek_certificate",
    EKCertificateSource,
    "vendor-ca",
    "who signed the EK certificate in NV: the vendor's CA (trusted by the AIK CA), a CA of the "
    "same vendor that the AIK CA has not imported, the vendor's CA but published on its online "
    "EK-certificate service instead of NV (Intel PTT, AMD fTPM), or nobody",
)
EK_SERVICE = "ek-service"


@helper_service(EK_SERVICE, "the TPM vendors' online EK-certificate service")
@contextmanager
def _ek_service(context: HelperContext) -> Iterator[Mapping[str, str]]:
    from ...network import EKCertificateService

    directory = context.workdir / "ek-service"
    with EKCertificateService(directory) as service:
        yield {"url": service.url, "dir": str(directory)}


@world_condition
class EKCertificate(WorldCondition):
    name = "tpm.ek_certificate"
    settings = (EK_CERTIFICATE,)

    def check_group(self, group: ResolvedGroup) -> str | None:
        wrong_family = needs_tpm2(group, EK_CERTIFICATE)
        if wrong_family:
            return wrong_family
        vendor = str(group.tpm.vendor or "").lower()
        if EK_CERTIFICATE.of(group) == "online" and vendor not in ONLINE_EK_VENDORS:
            return (
                "tpm.ek_certificate 'online' is what Intel PTT and AMD fTPM do: set tpm.vendor "
                "to intel or amd (Windows knows no online EK-certificate service for others)"
            )
        return None

    def plan(self, group: ResolvedGroup, draft: PlanDraft) -> None:
        source = EK_CERTIFICATE.of(group)
        issuer = draft.tpm.issuer
        if draft.tpm.tcti is not None or issuer is None:
            return  # an external TPM says itself who certified its EK
        signer = {"vendor-ca": issuer, "online": issuer, "unlisted-ca": unlisted_ca_key(issuer), "none": None}
        draft.tpm = replace(draft.tpm, issuer=signer[source])

    def helpers(self, world: WorldValues) -> Iterable[str]:
        return (EK_SERVICE,) if EK_CERTIFICATE.planned(world) == "online" else ()

    def factory_order(self, life: DeviceLife, order: FactoryOrder) -> None:
        if EK_CERTIFICATE.planned(life.world) == "online" and order.issuer is not None:
            order.write_nv_certificate = False

    def factory_made(self, life: DeviceLife, order: FactoryOrder, made: Manufactured) -> None:
        if EK_CERTIFICATE.planned(life.world) != "online" or order.issuer is None:
            return
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from cryptography.hazmat.primitives.serialization import load_der_public_key
        from tpm2_pytss import TPM2B_PUBLIC

        from ...network import publish
        from ...pki import certificate_der

        # The vendor's CA certifies the EK all the same; the certificate goes to the vendor's
        # online service instead of NV.
        service = life.helper_if_running(EK_SERVICE)
        if not service:
            raise HarnessError("tpm.ek_certificate 'online' needs the harness's EK-certificate service")
        ek_key = load_der_public_key(bytes(TPM2B_PUBLIC.unmarshal(made.ek_public)[0].to_der()))
        if not isinstance(ek_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
            raise HarnessError("the EK is neither RSA nor ECC")
        certificate = order.issuer.issue_ek_certificate(
            ek_key, order.identity, now=order.now, one_rdn=life.tpm_plan.one_rdn
        )
        publish(Path(service["dir"]), certificate_der(certificate))
        order.notes.append("published on the vendor's online EK-certificate service (not in NV)")

    def network_path(self, life: DeviceLife, path: NetworkPath) -> None:
        # Every Windows device knows the vendors' services; it asks when NV holds no certificate.
        service = life.helper_if_running(EK_SERVICE)
        if service:
            path.ek_service = service["url"]
