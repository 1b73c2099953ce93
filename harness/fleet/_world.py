"""A device's world beyond its factory: its network path and what befell its TPM.

Each condition is made with the real mechanism (see harness.tpm and
harness.network); none of them names or implies the outcome.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from tpm2_pytss import ESYS_TR, TPM2B_SENSITIVE_CREATE, TSS2_Exception

from ..client import Endpoints, key_templates
from ..errors import HarnessError
from ..network import Link, RefusingEndpoint, ResettingEndpoint, Route, Rule
from ..pki import CertificateAuthority
from ..results import ClientStep
from ..scenario import EKKind, TPMChange
from ..tcg import EK_CERT_NV_INDEX_ECC, EK_CERT_NV_INDEX_RSA, TPMIdentity
from ..tpm import (
    PlatformControl,
    RunningTPM,
    TimedESAPI,
    change_owner_auth,
    disable_hierarchy,
    leave_unstarted,
    lock_out,
    manufacture,
    reset_lockout,
)
from ..windows import MDM_KEY_HANDLE
from ._plan import NetworkPlan, TPMPlan

_FOREIGN_OWNER_AUTH = b"set by another operating system"
_ENROLLMENT_FAULTS = {"reset": "reset", "dropped": "drop", "corrupted": "corrupt", "replayed": "replay"}


class Services:
    """Where the services a world can point a device at are listening."""

    def __init__(
        self, primary: str, lagging_replica: str = "", foreign_identity: str = "", ek_service: str = ""
    ) -> None:
        self.primary = primary
        self.lagging_replica = lagging_replica
        self.foreign_identity = foreign_identity
        self.ek_service = ek_service

    def require(self, url: str, what: str) -> str:
        if not url:
            raise HarnessError(f"this world needs {what}; the harness runs one only with its own server")
        return url


@contextmanager
def device_network(plan: NetworkPlan, services: Services) -> Iterator[tuple[Endpoints, list[Link]]]:
    """The endpoints the device's client uses, and the links to read back what they did."""
    with ExitStack() as stack:
        links: list[Link] = []
        mdm = services.primary
        if plan.enrollment != "delivered" or plan.nonce_from != "primary":
            rules = []
            if plan.enrollment in _ENROLLMENT_FAULTS:
                rules.append(Rule("POST", "/enrollment", _ENROLLMENT_FAULTS[plan.enrollment]))  # type: ignore[arg-type]
            routes = []
            if plan.nonce_from == "lagging-replica":
                replica = services.require(services.lagging_replica, "a lagging replica")
                routes.append(Route("/enrollment/nonce", replica))
            link = stack.enter_context(Link(services.primary, rules=rules, routes=routes))
            links.append(link)
            mdm = link.url
        aik_ca = services.primary
        if plan.aik_ca == "refused":
            aik_ca = stack.enter_context(RefusingEndpoint()).url
        elif plan.aik_ca == "reset":
            aik_ca = stack.enter_context(ResettingEndpoint()).url
        ek_service = services.ek_service
        if plan.ek_service == "refused":
            ek_service = stack.enter_context(RefusingEndpoint()).url
        elif plan.ek_service == "reset":
            ek_service = stack.enter_context(ResettingEndpoint()).url
        identity = services.primary
        if plan.identity == "foreign-tenant":
            identity = services.require(services.foreign_identity, "another tenant's identity provider")
        elif plan.identity == "lagging-replica":
            identity = services.require(services.lagging_replica, "a lagging replica")
        # A blocked push channel: the service's push port refuses the device, as a firewall would.
        push = stack.enter_context(RefusingEndpoint()).url if plan.push == "blocked" else ""
        yield Endpoints(mdm=mdm, aik_ca=aik_ca, identity=identity, ek_service=ek_service, push=push), links


def leave_mdm_key(tpm: RunningTPM) -> float:
    """An earlier enrollment's MDM key, persisted where the client keeps it; returns TPM seconds."""
    with TimedESAPI(tpm.tcti) as esapi:
        srk, *_ = esapi.create_primary(TPM2B_SENSITIVE_CREATE(), key_templates.srk(), ESYS_TR.OWNER)
        private, public, *_ = esapi.create(srk, TPM2B_SENSITIVE_CREATE(), key_templates.bound_signing_key())
        key = esapi.load(srk, private, public)
        esapi.evict_control(ESYS_TR.OWNER, key, MDM_KEY_HANDLE)
        esapi.flush_context(key)
        esapi.flush_context(srk)
        return esapi.seconds


def befall(plan: TPMPlan, tpm: RunningTPM) -> tuple[float, ClientStep | None]:
    """Put the TPM in the state the plan describes; returns TPM seconds and a step to show."""
    if plan.state == "ready":
        return 0.0, None
    start = time.perf_counter()
    seconds = 0.0
    if plan.state == "not-started":
        leave_unstarted(tpm)
        detail = "platform reset through the TPM's control channel; firmware sent no TPM2_Startup"
    else:
        with TimedESAPI(tpm.tcti) as esapi:
            if plan.state == "lockout":
                attempts = lock_out(esapi)
                detail = f"dictionary-attack lockout after {attempts} wrong PINs (maxTries 3)"
            elif plan.state == "owner-auth-unknown":
                change_owner_auth(esapi, _FOREIGN_OWNER_AUTH)
                detail = "owner authorization changed by another operating system"
            elif plan.state == "endorsement-disabled":
                disable_hierarchy(esapi, "endorsement")
                detail = "endorsement hierarchy disabled by platform firmware"
            elif plan.state == "storage-disabled":
                disable_hierarchy(esapi, "storage")
                detail = "storage hierarchy disabled by platform firmware"
            else:
                raise HarnessError(f"unknown TPM state {plan.state!r}")
            seconds = esapi.seconds
    step = ClientStep(
        step=f"world.tpm.{plan.state}",
        ok=True,
        detail=detail,
        seconds=round(time.perf_counter() - start, 4),
    )
    return seconds, step


def clear_tpm(tpm: RunningTPM) -> None:
    """TPM2_Clear through the platform hierarchy, as the firmware's 'Clear TPM' does.

    A new storage seed (the owner's keys, the Entra key and the MDM key stored under it can
    no longer be loaded; the persisted MDM key is evicted), empty owner and lockout
    authorizations, the lockout counter reset; the EK and its platform-written certificate stay.
    """
    if not isinstance(tpm, PlatformControl):
        raise HarnessError(f"{tpm.description} has no platform interface the harness can clear")
    tpm.clear()


def tpm_change(change: TPMChange, tpm: RunningTPM) -> tuple[float, ClientStep]:
    """A later change to the TPM (a scenario step); returns TPM seconds and a step to show."""
    start = time.perf_counter()
    if change == "clear":
        clear_tpm(tpm)
        detail = "TPM2_Clear with platform authorization: new owner, storage keys and MDM key gone"
        return 0.0, ClientStep(
            step="world.tpm.clear", ok=True, detail=detail, seconds=round(time.perf_counter() - start, 4)
        )
    with TimedESAPI(tpm.tcti) as esapi:
        if change == "reset-lockout":
            reset_lockout(esapi)
            detail = "lockout cleared with the lockout authorization"
        elif change == "lockout":
            attempts = lock_out(esapi)
            detail = f"dictionary-attack lockout after {attempts} wrong PINs"
        else:
            raise HarnessError(f"unknown TPM change {change!r}")
        seconds = esapi.seconds
    return seconds, ClientStep(
        step=f"world.tpm.{change}", ok=True, detail=detail, seconds=round(time.perf_counter() - start, 4)
    )


def update_firmware(
    tpm: RunningTPM,
    identity: TPMIdentity,
    issuer: CertificateAuthority | None,
    *,
    algorithm: EKKind,
    one_rdn: bool,
) -> tuple[float, ClientStep]:
    """The vendor's firmware update: a new endorsement seed, so a new EK, and its certificate
    re-issued by the vendor's CA with the new firmware version (as vendors did after ROCA).

    The storage hierarchy (the Entra key, the MDM key) is untouched."""
    start = time.perf_counter()
    index = EK_CERT_NV_INDEX_RSA if algorithm == "rsa2048" else EK_CERT_NV_INDEX_ECC
    with TimedESAPI(tpm.tcti) as esapi:
        esapi.change_eps(ESYS_TR.PLATFORM)
        try:
            old = esapi.tr_from_tpmpublic(index)
        except TSS2_Exception:
            old = None  # the factory shipped no certificate
        if old is not None:
            esapi.nv_undefine_space(old, ESYS_TR.PLATFORM)
        manufacture(
            esapi,
            identity=identity,
            issuer=issuer,
            algorithm=algorithm,
            now=dt.datetime.now(dt.UTC),
            one_rdn=one_rdn,
        )
        seconds = esapi.seconds
    who = issuer.name if issuer else "nobody"
    detail = f"firmware {identity.version}; new EK, certificate re-issued by {who}"
    return seconds, ClientStep(
        step="world.tpm.firmware_update",
        ok=True,
        detail=detail,
        seconds=round(time.perf_counter() - start, 4),
    )
