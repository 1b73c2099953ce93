"""Recording an enrollment: what the client sent and what the server judged it against.

One place for tests, the bench and bundle files: a client's report plus the embedded
server that received it become the verifier's inputs and an evidence bundle.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import jwt

from ..client import ClientReport
from ..errors import HarnessError
from ..server import EmbeddedServer
from ..trust import TrustStore
from ..verifier import (
    DEVICE_ID_CLAIM,
    Evidence,
    IssuedNonce,
    NonceState,
    Policy,
    bundle_document,
    claimed_nonce,
    evidence_from_request,
)


@dataclass(frozen=True)
class RecordedEnrollment:
    """One real enrollment: the evidence, and the context the server judged it in."""

    evidence: Evidence
    policy: Policy
    nonce: NonceState
    registered: dict[str, bytes]
    now: dt.datetime
    device_id: str
    bundle: dict[str, Any]  # the evidence bundle, for `harness verify`
    trust: TrustStore  # what the server trusted: its AIK CA, its token key, the vendor roots


def server_trust(server: EmbeddedServer) -> TrustStore:
    """What an embedded server judges against: its trust store plus its own AIK CA, token key
    and the vendor roots it was given."""
    ctx = server.app.state.context
    given: TrustStore = ctx.config.trust
    return TrustStore(
        aik_roots=(ctx.aik_ca.certificate, *given.aik_roots),
        aik_intermediates=given.aik_intermediates,
        ek_roots=(*ctx.config.manufacturer_roots, *given.ek_roots),
        ek_intermediates=given.ek_intermediates,
        token_keys={**dict(given.token_keys), ctx.idp_key.kid: ctx.idp_key.key.public_key()},
        token_issuer=ctx.config.token_issuer,
        token_audience=ctx.config.token_audience,
        vendors=given.vendors,
        advisories=given.advisories,
        platforms=given.platforms,
        source="recorded server",
    )


def record_enrollment(server: EmbeddedServer, report: ClientReport) -> RecordedEnrollment:
    """The enrollment a client made against an embedded server, as the verifier sees it."""
    if report.enrollment_request is None or report.token is None:
        raise HarnessError("the client sent no enrollment request with a token: nothing to record")
    ctx = server.app.state.context
    evidence = evidence_from_request(report.enrollment_request, report.token)
    nonce = claimed_nonce(evidence)
    device_id = str(jwt.decode(report.token, options={"verify_signature": False}).get(DEVICE_ID_CLAIM, ""))
    spki = ctx.store.entra_device_key(device_id) if device_id else None
    if nonce is None or spki is None:
        raise HarnessError("the enrollment has no nonce or no registered Entra device key")
    now = ctx.clock.now()
    trust = server_trust(server)
    bundle = bundle_document(
        request=report.enrollment_request,
        token=report.token,
        # The server keeps when it issued the nonce to itself; the bundle pins the check time.
        nonce=IssuedNonce(nonce),
        device_id=device_id,
        registered_key=spki,
        check_time=now,
        recorded_at=now,
    )
    return RecordedEnrollment(
        evidence=evidence,
        policy=ctx.policy,
        nonce=NonceState(value=nonce, issued=True),
        registered={device_id: spki},
        now=now,
        device_id=device_id,
        bundle=bundle,
        trust=trust,
    )
