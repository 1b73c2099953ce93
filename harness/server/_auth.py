"""Who a device request comes from.

A device proves itself at first enrollment with the Entra token of its join (the token's
'deviceid' claim binds the EmmDeviceId to that Entra device). The id is claimed earlier, by
the first valid token that asks for its nonce: from then on, until it enrolls, only that
token's identity may change the record. The enrollment answer then
hands it a device credential, a 256-bit random bearer secret sent in the Device-Credential
header of its nonce requests, check-ins and later enrollments. The server keeps only the
SHA-256 of the credential: it has 256 random bits, so the hash can be neither inverted nor
guessed, and a copy of the database does not let anyone act as a device.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import Enum
from typing import Annotated

from fastapi import Header

from ..status import HResult
from ..verifier import DEVICE_ID_CLAIM, TokenVerdict, verify_token
from ._context import ServerContext, ServiceFailure, unauthenticated

CREDENTIAL_HEADER = "Device-Credential"
# The headers a device proves itself with, as the enrollment and check-in routes declare them
# (documented by the routes' security schemes, so kept out of the generated parameters).
AuthorizationHeader = Annotated[str | None, Header(max_length=8192, include_in_schema=False)]
CredentialHeader = Annotated[
    str | None, Header(alias=CREDENTIAL_HEADER, max_length=256, include_in_schema=False)
]
E_ACCESSDENIED = 0x80070005  # what Windows reports for a refused request
E_FAIL = HResult.E_FAIL


class Proof(Enum):
    CREDENTIAL = "device credential"
    TOKEN = "Entra token of the bound device"
    FIRST_ENROLLMENT = "Entra token at first enrollment"
    NONE = "nothing"  # only an id nobody has bound may be enrolled (its result stays unbound)


@dataclass(frozen=True)
class Caller:
    proof: Proof
    bound: bool  # the record is tied to an identity already (bound, or claimed by a nonce request)
    token_device: str  # the verified token's deviceid ('' without one)
    token_identity: str = ""  # who a valid token names: 'device:<deviceid>' or 'user:<tid>/<upn>'
    known: bool = False  # the server has a record of this id

    @property
    def may_bind(self) -> bool:
        """This request ties the id to its identity and receives a (new) credential."""
        return self.proof in (Proof.TOKEN, Proof.FIRST_ENROLLMENT)

    @property
    def authenticated(self) -> bool:
        return self.proof is not Proof.NONE

    def limit_key(self, emm_device_id: str) -> str:
        """What the per-device limit counts this request against: the device once bound; before,
        the id together with the identity that proved itself, so that a stranger's valid token
        cannot use up the limit of an id it does not own."""
        if self.proof is Proof.FIRST_ENROLLMENT:
            return f"{emm_device_id}\n{self.token_identity}"
        return emm_device_id


def new_credential() -> tuple[str, bytes]:
    """A device credential and the digest the store keeps of it."""
    value = secrets.token_urlsafe(32)
    return value, credential_digest(value)


def credential_digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


def bearer(authorization: str | None) -> str | None:
    """The token of an 'Authorization: Bearer <token>' header (None without the header)."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ServiceFailure(400, "malformed_request", E_FAIL, "Authorization must be 'Bearer <token>'")
    return value.strip()


def refuse(reason: str) -> ServiceFailure:
    return unauthenticated(reason, realm="enrollment", hresult=E_ACCESSDENIED)


def identify(
    ctx: ServerContext,
    emm_device_id: str,
    *,
    token: str | None,
    credential: str | None,
    now: dt.datetime,
    token_verdict: TokenVerdict | None = None,
) -> Caller:
    """What the request proves about its sender, judged on the server's clock.

    `token_verdict`: the token verified already (by verify_token_once), so that an enrollment
    verifies its token once for authentication and evaluation."""
    binding = ctx.store.binding(emm_device_id)
    known = binding is not None
    token_device, identity = "", ""
    if token:
        verdict = token_verdict or verify_token_once(ctx, token, now)
        if verdict.valid:
            token_device, identity = token_identity(verdict.claims)
    if binding is not None and binding.bound:
        stored = binding.credential_sha256
        if credential and stored is not None and hmac.compare_digest(credential_digest(credential), stored):
            return Caller(Proof.CREDENTIAL, True, token_device, identity, known)
        if identity and binding.entra_device_id and token_device == binding.entra_device_id:
            return Caller(Proof.TOKEN, True, token_device, identity, known)
        return Caller(Proof.NONE, True, token_device, identity, known)
    if binding is not None and binding.claimed_by:
        proof = Proof.FIRST_ENROLLMENT if identity == binding.claimed_by else Proof.NONE
        return Caller(proof, True, token_device, identity, known)
    if identity:
        return Caller(Proof.FIRST_ENROLLMENT, False, token_device, identity, known)
    return Caller(Proof.NONE, False, token_device, identity, known)


def token_identity(claims: dict[str, object]) -> tuple[str, str]:
    """The deviceid of a verified token and the identity it proves ('', '' when it proves none).

    A 'deviceid' that is not a non-empty string is no device identity: such a token is treated
    as invalid here (docs/protocol.md), never as the text of a list or a number."""
    device = claims.get(DEVICE_ID_CLAIM)
    if device is not None:
        if not isinstance(device, str) or not device:
            return "", ""
        return device, f"device:{device}"
    return "", f"user:{claims.get('tid', '')}/{claims.get('upn', '')}"


def verify_token_once(ctx: ServerContext, token: str, now: dt.datetime) -> TokenVerdict:
    """The verifier's verdict on a bearer token, with the server's policy and clock."""
    return verify_token(
        token,
        keys=ctx.policy.token_keys,
        issuer=ctx.policy.token_issuer,
        audience=ctx.policy.token_audience,
        now=now,
    )


def require_device(caller: Caller, emm_device_id: str) -> None:
    """Refuse (401, nothing changed) a request that cannot prove it comes from the device."""
    if caller.proof is Proof.NONE:
        if caller.bound:
            raise refuse(
                f"device {emm_device_id} is enrolled or enrolling: send its {CREDENTIAL_HEADER} or "
                "the Entra token of the device it is bound to (or that asked for its nonce)"
            )
        raise refuse("send a valid Entra token (Authorization: Bearer) to start enrolling this device")
