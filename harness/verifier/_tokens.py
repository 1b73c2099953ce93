"""Checks over the identity provider's tokens (JWT), with time given, not read."""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ._checks import Check, fail, ok

# Each accepted algorithm with the key type it verifies with: a header naming ES256 and the
# kid of an RSA key is a forgery attempt (or a broken issuer), refused before any signature is checked.
_KEY_TYPES: dict[str, type[Any]] = {"RS256": rsa.RSAPublicKey, "ES256": ec.EllipticCurvePublicKey}
ACCEPTED_ALGORITHMS = tuple(_KEY_TYPES)
# PyJWT's own algorithm objects verify the signature (an ES256 signature is r||s, not DER).
_ALGORITHMS = {name: jwt.get_algorithm_by_name(name) for name in ACCEPTED_ALGORITHMS}
DEVICE_ID_CLAIM = "deviceid"
CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class TokenVerdict:
    checks: list[Check]
    claims: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return all(c.passed for c in self.checks)


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


# A compact JWS segment: base64url without padding (RFC 7515 section 2). PyJWT's own decode
# checks this one character at a time in Python, which was a sixth of an evaluation; the
# regular expression checks the same alphabet at C speed.
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")


def _segment(encoded: str, name: str) -> bytes | str:
    """A segment's bytes, or a string saying why it is not base64url."""
    if _SEGMENT.fullmatch(encoded) is None or len(encoded) % 4 == 1:
        return f"{name} is not base64url"
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))


def _json_object(encoded: str, name: str) -> dict[str, Any] | str:
    raw = _segment(encoded, name)
    if isinstance(raw, str):
        return raw
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        return f"{name} is not JSON: {exc}"
    if not isinstance(value, dict):
        return f"{name} is not a JSON object"
    return value


@dataclass(frozen=True)
class _Parts:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def _split(token: str) -> _Parts | str:
    """The token's parts, each decoded once; a string says why it is not a compact JWS."""
    parts = token.split(".")
    if len(parts) != 3:
        return "not three dot-separated segments"
    header = _json_object(parts[0], "header")
    if isinstance(header, str):
        return header
    # No JWS extension is understood here: a critical one must be refused (RFC 7515 section
    # 4.1.11), and an unencoded payload (RFC 7797 'b64') is not a token an issuer sends.
    for name in ("crit", "b64"):
        if name in header:
            return f"header parameter {name!r} is not supported"
    claims = _json_object(parts[1], "payload")
    if isinstance(claims, str):
        return claims
    signature = _segment(parts[2], "signature")
    if isinstance(signature, str):
        return signature
    return _Parts(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


def _claims_problem(claims: dict[str, Any], *, issuer: str, audience: str) -> str | None:
    """What PyJWT's decode would refuse in the registered claims we rely on, in its words."""
    for name in ("exp", "iat", "iss", "aud"):
        if name not in claims:
            return f'Token is missing the "{name}" claim'
    if claims["iss"] != issuer:
        return "Invalid issuer"
    audiences = claims["aud"]
    if isinstance(audiences, str):
        audiences = [audiences]
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        return "Invalid claim format in token"
    if audience not in audiences:
        return "Audience doesn't match"
    return None


def _key_type(key: object) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "an RSA key"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "an ECC key"
    return f"a {type(key).__name__}"


def verify_token(
    token: str,
    *,
    keys: Mapping[str, Any],
    issuer: str,
    audience: str,
    now: dt.datetime,
) -> TokenVerdict:
    """Signature by a known key (by kid), issuer, audience and lifetime at `now`."""
    parts = _split(token)
    if isinstance(parts, str):
        return TokenVerdict([fail("token.format", f"not a JWT: {parts}")])
    header = parts.header
    algorithm = header.get("alg")
    if algorithm not in ACCEPTED_ALGORITHMS:
        return TokenVerdict([fail("token.algorithm", f"algorithm {algorithm!r} is not accepted")])
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        return TokenVerdict([fail("token.signature", f"signed by unknown key id {kid!r}")])
    if not isinstance(key, _KEY_TYPES[algorithm]):
        return TokenVerdict(
            [fail("token.algorithm", f"algorithm {algorithm} does not fit key id {kid!r} ({_key_type(key)})")]
        )
    verifier = _ALGORITHMS[algorithm]
    try:
        verified = verifier.verify(parts.signing_input, verifier.prepare_key(key), parts.signature)
    except jwt.PyJWTError as exc:  # a key PyJWT refuses for the algorithm (an ECC key's curve)
        return TokenVerdict([fail("token.algorithm", str(exc))])
    if not verified:
        return TokenVerdict([fail("token.signature", "signature does not verify")])
    claims = parts.claims
    problem = _claims_problem(claims, issuer=issuer, audience=audience)
    if problem is not None:
        return TokenVerdict([fail("token.claims", problem)])
    checks = [ok("token.signature", f"key id {header.get('kid')}")]
    times = {name: _finite(claims.get(name)) for name in ("exp", "iat", "nbf")}
    bad = [name for name in ("exp", "iat") if times[name] is None]
    if "nbf" in claims and times["nbf"] is None:
        bad.append("nbf")
    if bad:
        checks.append(fail("token.lifetime", f"{', '.join(bad)} is not a finite number"))
        return TokenVerdict(checks, claims)
    timestamp = now.timestamp()
    expires = float(claims["exp"])
    not_before = times["nbf"]
    if not_before is not None and not_before - CLOCK_SKEW.total_seconds() > timestamp:
        checks.append(fail("token.lifetime", "not valid yet (nbf)"))
    elif expires + CLOCK_SKEW.total_seconds() < timestamp:
        expired_at = dt.datetime.fromtimestamp(expires, dt.UTC)
        checks.append(fail("token.lifetime", f"expired at {expired_at:%Y-%m-%d %H:%M:%S}Z"))
    elif float(claims["iat"]) - CLOCK_SKEW.total_seconds() > timestamp:
        checks.append(fail("token.lifetime", "issued in the future"))
    else:
        checks.append(ok("token.lifetime"))
    return TokenVerdict(checks, claims)
