"""Checks over the identity provider's tokens (JWT), with time given, not read."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ._checks import Check, fail, ok

# Each accepted algorithm with the key type it verifies with: a header naming ES256 and the
# kid of an RSA key is a forgery attempt (or a broken issuer), refused before PyJWT sees it.
_KEY_TYPES: dict[str, type[Any]] = {"RS256": rsa.RSAPublicKey, "ES256": ec.EllipticCurvePublicKey}
ACCEPTED_ALGORITHMS = tuple(_KEY_TYPES)
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


def _header(token: str) -> dict[str, Any] | str:
    """The JOSE header, read to choose the key; PyJWT's decode then reads the whole token once.
    A string says why it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return "not three dot-separated segments"
    encoded = parts[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, binascii.Error, RecursionError) as exc:
        return f"header is not base64url JSON: {exc}"
    if not isinstance(header, dict):
        return "header is not a JSON object"
    return header


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
    header = _header(token)
    if isinstance(header, str):
        return TokenVerdict([fail("token.format", f"not a JWT: {header}")])
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
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=audience,
            issuer=issuer,
            options={
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "require": ["exp", "iat", "iss", "aud"],
            },
        )
    except jwt.InvalidSignatureError:
        return TokenVerdict([fail("token.signature", "signature does not verify")])
    except jwt.PyJWTError as exc:
        return TokenVerdict([fail("token.claims", str(exc))])
    except (TypeError, ValueError) as exc:  # PyJWT's own parsers raise these on odd payloads
        return TokenVerdict([fail("token.format", f"not a JWT: {exc}")])
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
