"""The identity provider (the Entra role): device registration and tokens.

A device registers its device key and proves possession when it asks for a
token by signing an assertion with that key over a nonce the identity
provider issued (Entra's server challenge), so freshness is judged by the
provider's clock, not the device's. The token it gets carries its device ID in
the 'deviceid' claim. A user who asks without a device assertion gets a user
token with no device identity, as on a device that never joined.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import APIRouter, Body, Depends
from jwt.algorithms import RSAAlgorithm

from ..protocol import (
    AssertionNonceRequest,
    AssertionNonceResponse,
    DeviceRegistrationRequest,
    DeviceRegistrationResponse,
    TokenRequest,
    TokenResponse,
)
from ..verifier import DEVICE_ID_CLAIM
from ._context import ServerContext, ServiceFailure, bad_request, unauthenticated
from ._deps import context, rate_limited
from ._openapi import errors

router = APIRouter(prefix="/entra", tags=["Identity provider"], dependencies=[Depends(rate_limited)])
ASSERTION_MAX_AGE = dt.timedelta(minutes=10)
_NONCE_PURPOSE = "device-assertion"
_LATEST_TIME = 253_402_300_799  # 9999-12-31T23:59:59Z


def _refuse(reason: str) -> ServiceFailure:
    return unauthenticated(reason, realm="entra", error="invalid_grant")


@router.post(
    "/devices",
    response_model=DeviceRegistrationResponse,
    response_model_by_alias=True,
    responses=errors(413, 429),
)
def register(
    request: DeviceRegistrationRequest, ctx: ServerContext = Depends(context)
) -> DeviceRegistrationResponse:
    try:
        key = serialization.load_der_public_key(request.key_spki)
    except ValueError as exc:
        raise bad_request(f"keySpki is not a DER SubjectPublicKeyInfo: {exc}") from exc
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise bad_request("device key must be RSA or ECC")
    device_id = str(uuid.uuid4())
    ctx.store.register_entra_device(device_id, request.display_name, request.key_spki, ctx.clock.now())
    return DeviceRegistrationResponse(deviceId=device_id)


@router.post(
    "/nonce", response_model=AssertionNonceResponse, response_model_by_alias=True, responses=errors(413, 429)
)
def assertion_nonce(
    body: Annotated[AssertionNonceRequest | None, Body()] = None, ctx: ServerContext = Depends(context)
) -> AssertionNonceResponse:
    """A nonce for the device's next assertion: signed by this provider, valid for ten minutes.

    The body is absent or the JSON object {}; anything else is refused (400)."""
    now = ctx.clock.now()
    claims = {
        "purpose": _NONCE_PURPOSE,
        "iat": int(now.timestamp()),
        "exp": int((now + ASSERTION_MAX_AGE).timestamp()),
        "jti": str(uuid.uuid4()),
    }
    signed = jwt.encode(claims, ctx.idp_key.key, algorithm="RS256", headers={"kid": ctx.idp_key.kid})
    return AssertionNonceResponse(nonce=signed)


@router.post(
    "/token", response_model=TokenResponse, response_model_by_alias=True, responses=errors(401, 413, 429)
)
def token(request: TokenRequest, ctx: ServerContext = Depends(context)) -> TokenResponse:
    now = ctx.clock.now()
    claims: dict[str, Any] = {
        "iss": ctx.config.token_issuer,
        "aud": ctx.config.token_audience,
        "iat": int(now.timestamp()),
        "exp": int((now + ctx.config.token_lifetime).timestamp()),
        "upn": request.upn,
        "tid": "00000000-0000-0000-0000-000000000001",
    }
    if request.assertion is not None:
        claims[DEVICE_ID_CLAIM] = _verify_assertion(request.assertion, ctx, now)
    signed = jwt.encode(claims, ctx.idp_key.key, algorithm="RS256", headers={"kid": ctx.idp_key.kid})
    return TokenResponse(accessToken=signed, expiresIn=int(ctx.config.token_lifetime.total_seconds()))


def _verify_assertion(assertion: str, ctx: ServerContext, now: dt.datetime) -> str:
    try:
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise _refuse(f"assertion is not a JWT: {exc}") from exc
    device_id = str(unverified.get("sub", ""))
    spki = ctx.store.entra_device_key(device_id)
    if spki is None:
        raise _refuse(f"device {device_id!r} is not registered")
    key = serialization.load_der_public_key(spki)
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise _refuse("registered device key is neither RSA nor ECC")
    algorithm = "RS256" if isinstance(key, rsa.RSAPublicKey) else "ES256"
    try:
        verified = jwt.decode(
            assertion,
            key,
            algorithms=[algorithm],
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require": ["iat", "sub"],
            },
        )
    except jwt.PyJWTError as exc:
        raise _refuse(f"assertion does not verify with the device key: {exc}") from exc
    issued_at = verified["iat"]
    if not isinstance(issued_at, int | float) or isinstance(issued_at, bool):
        raise _refuse("assertion 'iat' is not a number")
    if not 0 <= issued_at <= _LATEST_TIME:
        raise _refuse("assertion 'iat' is not a time")
    # Freshness comes from the provider's nonce: the device's own clock may be wrong.
    _check_request_nonce(verified.get("request_nonce"), ctx, now)
    return device_id


def _check_request_nonce(nonce: object, ctx: ServerContext, now: dt.datetime) -> None:
    if not isinstance(nonce, str) or not nonce:
        raise _refuse("assertion has no request_nonce from this identity provider")
    try:
        claims = jwt.decode(
            nonce,
            ctx.idp_key.key.public_key(),
            algorithms=["RS256"],
            # PyJWT would judge times on this machine's real clock; they are judged below on the server's.
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require": ["exp", "purpose"],
            },
        )
    except jwt.PyJWTError as exc:
        raise _refuse(f"request_nonce was not issued by this identity provider: {exc}") from exc
    expires = claims["exp"]
    if claims["purpose"] != _NONCE_PURPOSE or not isinstance(expires, int) or isinstance(expires, bool):
        raise _refuse("request_nonce is not an assertion nonce")
    if expires < now.timestamp():
        raise _refuse("request_nonce has expired")


@router.get("/keys", tags=["Identity provider"], responses=errors(429))
def keys(ctx: ServerContext = Depends(context)) -> dict[str, list[dict[str, Any]]]:
    """The token signing keys as a JWKS, for relying parties that verify tokens themselves."""
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(ctx.idp_key.key.public_key(), as_dict=True)
    jwk.update({"kid": ctx.idp_key.kid, "use": "sig", "alg": "RS256"})
    return {"keys": [jwk]}
