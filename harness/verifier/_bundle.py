"""Evidence bundles: one recorded enrollment, judged again offline against a trust store.

A bundle is JSON (see README, "Evidence bundles"): the enrollment request as the client
sent it (MS-MDE2 context items, with the OS build and inventory), the bearer token, the
nonce as the server issued it, the key the identity provider registered for the token's
device, and the time to judge it at. Parsing here is pure: the caller reads the file.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..errors import BundleFormatError as BundleFormatError
from ._evaluate import evaluate
from ._model import Evidence, NonceState, Policy, Verdict, claimed_nonce
from ._request import evidence_from_request
from ._tpm import EvidenceFormatError

BUNDLE_FORMAT = "enrollment-attestation-bundle/1"


@dataclass(frozen=True)
class IssuedNonce:
    value: bytes
    issued_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None


@dataclass(frozen=True)
class Bundle:
    evidence: Evidence
    nonce: IssuedNonce | None  # None: the device never got a nonce from anyone we know of
    registered_key: bytes | None  # SubjectPublicKeyInfo DER of the token's device, if known
    device_id: str | None
    check_time: dt.datetime | None
    request: dict[str, Any]
    token: str | None


def parse_bundle(data: Any) -> Bundle:
    """A Bundle from decoded JSON; BundleFormatError names the field that is wrong."""
    if not isinstance(data, Mapping):
        raise BundleFormatError("a bundle is a JSON object")
    if data.get("format") != BUNDLE_FORMAT:
        raise BundleFormatError(f"format: must be '{BUNDLE_FORMAT}', not {data.get('format')!r}")
    known = {"format", "request", "token", "nonce", "entra_device", "check_time", "recorded_at", "note"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise BundleFormatError(f"{unknown[0]}: unknown field")
    request = data.get("request")
    if not isinstance(request, Mapping):
        raise BundleFormatError("request: must be the enrollment request object")
    token = data.get("token")
    if token is not None and not isinstance(token, str):
        raise BundleFormatError("token: must be a string or null")
    try:
        evidence = evidence_from_request(request, token)
    except EvidenceFormatError as exc:
        raise BundleFormatError(f"request: {exc}") from exc
    nonce = _nonce(data.get("nonce"))
    device = data.get("entra_device")
    device_id, registered = None, None
    if device is not None:
        if not isinstance(device, Mapping) or not isinstance(device.get("id"), str):
            raise BundleFormatError("entra_device: must be {id, key_spki}")
        device_id, registered = device["id"], _b64(device.get("key_spki"), "entra_device.key_spki")
    check_time = _time(data.get("check_time"), "check_time") if data.get("check_time") else None
    return Bundle(evidence, nonce, registered, device_id, check_time, dict(request), token)


def judge_bundle(bundle: Bundle, policy: Policy, *, at: dt.datetime | None, now: dt.datetime) -> Verdict:
    """Evaluate a bundle at `at`, else its pinned check time, else `now`.

    Offline, nothing can say whether the nonce was used before; it counts as unused, and the
    verdict names it among the facts not judged (Verdict.not_judged), as it does a registered
    Entra key the bundle does not carry.
    """
    when = at or bundle.check_time or now
    claimed = claimed_nonce(bundle.evidence)
    if claimed is None or bundle.nonce is None or claimed != bundle.nonce.value:
        nonce = NonceState(value=claimed or b"", issued=False)
    else:
        expires = bundle.nonce.expires_at
        nonce = NonceState(value=claimed, issued=True, expired=expires is not None and when > expires)
    registered = (
        {bundle.device_id: bundle.registered_key} if bundle.device_id and bundle.registered_key else {}
    )
    verdict = evaluate(bundle.evidence, policy, now=when, nonce=nonce, registered_keys=registered)
    not_judged = []
    if nonce.issued:
        not_judged.append(
            "whether the nonce was used before (the server refuses a reused one with 409, recording nothing)"
        )
    device = verdict.device_id
    if device and device not in registered:
        not_judged.append(f"the Entra key registered for device {device} (the bundle carries none)")
    return replace(verdict, not_judged=tuple(not_judged))


def bundle_document(
    *,
    request: Mapping[str, Any],
    token: str | None,
    nonce: IssuedNonce | None,
    device_id: str | None,
    registered_key: bytes | None,
    check_time: dt.datetime,
    recorded_at: dt.datetime,
) -> dict[str, Any]:
    """The JSON object of a bundle (what parse_bundle reads)."""
    return {
        "format": BUNDLE_FORMAT,
        "recorded_at": _iso(recorded_at),
        "check_time": _iso(check_time),
        "request": dict(request),
        "token": token,
        "nonce": None
        if nonce is None
        else {
            "value": base64.b64encode(nonce.value).decode("ascii"),
            "issued_at": _iso(nonce.issued_at) if nonce.issued_at else None,
            "expires_at": _iso(nonce.expires_at) if nonce.expires_at else None,
        },
        "entra_device": None
        if device_id is None or registered_key is None
        else {"id": device_id, "key_spki": base64.b64encode(registered_key).decode("ascii")},
    }


def _nonce(value: Any) -> IssuedNonce | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BundleFormatError("nonce: must be {value, issued_at, expires_at} or null")
    issued = value.get("issued_at")
    expires = value.get("expires_at")
    return IssuedNonce(
        value=_b64(value.get("value"), "nonce.value"),
        issued_at=_time(issued, "nonce.issued_at") if issued else None,
        expires_at=_time(expires, "nonce.expires_at") if expires else None,
    )


def _b64(value: Any, field: str) -> bytes:
    if not isinstance(value, str):
        raise BundleFormatError(f"{field}: must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BundleFormatError(f"{field}: not valid base64") from exc


def _time(value: Any, field: str) -> dt.datetime:
    if not isinstance(value, str):
        raise BundleFormatError(f"{field}: must be an ISO 8601 time")
    return parse_time(value, field)


def parse_time(text: str, field: str = "time") -> dt.datetime:
    """An ISO 8601 time; one without a zone is UTC."""
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BundleFormatError(f"{field}: '{text}' is not an ISO 8601 time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
