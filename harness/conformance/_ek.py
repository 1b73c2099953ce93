"""The EK credential NV indices, their certificates, and the EK the template re-creates."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_der_public_key
from tpm2_pytss import TPM2B_PUBLIC, TSS2_Exception
from tpm2_pytss.utils import NoSuchIndex

from ..pki import split_der
from ..verifier import same_public_key
from ._certs import chain_row, describe, profile_rows
from ._credential import PLATFORM_FIRST, PLATFORM_LAST, credential_rows, platform_rows
from ._model import EK_PROFILE, WINDOWS_ATTESTATION, Row, failed, passed, skipped
from ._nv import (
    ATTRIBUTE_CLAUSE,
    CHAIN_CLAUSE,
    CHAIN_FIRST,
    CHAIN_LAST,
    EK_CERT_INDICES,
    EKIndex,
    check_nv_attributes,
)
from ._ops import modulus_of
from ._probe import Probe

AREA_NV = "EK NV indices"
AREA_KEY = "EK key"
_LOW_RANGE = (0x01C00002, 0x01C0000A)
_TEMPLATE_CLAUSE = f"{EK_PROFILE} §2.1.5 (default EK templates); tpm2-pytss create_ek_template"


@dataclass
class EKFindings:
    rows: list[Row] = field(default_factory=list)
    ek: Any = None  # the RSA 2048 EK, loaded, for ActivateCredential
    ek_public: TPM2B_PUBLIC | None = None
    rsa_modulus: int | None = None


def ek_rows(
    probe: Probe,
    props: Any,
    anchors: Sequence[x509.Certificate],
    now: dt.datetime,
    known_intermediates: Sequence[x509.Certificate] = (),
) -> EKFindings:
    findings = EKFindings()
    rows = findings.rows
    defined = set(probe.handles()["nv"])
    certificates: list[tuple[EKIndex, x509.Certificate]] = []
    for entry in EK_CERT_INDICES:
        row_id = f"ek.nv.0x{entry.index:08X}"
        if entry.index not in defined:
            rows.append(skipped(row_id, AREA_NV, f"{entry.label}: index not defined", entry.clause))
            continue
        public = probe.nv_public(entry.index)
        rows.append(check_nv_attributes(row_id, AREA_NV, public.attributes, ATTRIBUTE_CLAUSE, strict=True))
        try:
            certificates.append(
                (entry, x509.load_der_x509_certificate(_certificate_bytes(probe.nv_read(entry.index))))
            )
        except (ValueError, TSS2_Exception) as exc:
            rows.append(
                failed(
                    f"ek.cert.0x{entry.index:08X}", AREA_NV, f"{entry.label}: unreadable: {exc}", entry.clause
                )
            )
    # The TPM's own chain indices first, then the intermediates the user's trust store names.
    intermediates: list[x509.Certificate] = []
    for index in sorted(h for h in defined if CHAIN_FIRST <= h <= CHAIN_LAST):
        public = probe.nv_public(index)
        rows.append(
            check_nv_attributes(
                f"ek.nv.0x{index:08X}", AREA_NV, public.attributes, CHAIN_CLAUSE, strict=False
            )
        )
        for der in split_der(probe.nv_read(index)):
            try:
                intermediates.append(x509.load_der_x509_certificate(der))
            except ValueError as exc:
                rows.append(
                    failed(f"ek.chain.0x{index:08X}", AREA_NV, f"not a certificate: {exc}", CHAIN_CLAUSE)
                )
    low = [c for c in certificates if c[0].index in _LOW_RANGE]
    if low:
        rows.append(
            passed(
                "ek.certificate",
                AREA_NV,
                f"EK certificate at {', '.join(f'0x{e.index:08X}' for e, _ in low)}",
                f"{EK_PROFILE} §2.2.1.4",
            )
        )
    else:
        rows.append(
            failed(
                "ek.certificate",
                AREA_NV,
                "no EK certificate at 0x01C00002 (RSA 2048) or 0x01C0000A (ECC P-256), where Windows looks",
                f"{EK_PROFILE} §2.2.1.4; {WINDOWS_ATTESTATION}",
            )
        )
    primary = low[0][0].index if low else None
    for entry, certificate in certificates:
        prefix = "ek" if entry.index == primary else f"ek[0x{entry.index:08X}]"
        rows.extend(
            profile_rows(
                prefix, certificate, tpm_manufacturer=props.manufacturer_id, tpm_firmware=props.firmware_id
            )
        )
        rows.append(
            chain_row(
                f"{prefix}.chain",
                certificate,
                anchors=anchors,
                intermediates=[*intermediates, *known_intermediates],
                now=now,
                clause=f"{EK_PROFILE} §3 (EK certificate issuer); {CHAIN_CLAUSE}",
            )
        )
        rows.append(_template_row(probe, findings, prefix, entry, certificate))
        rows.extend(
            credential_rows(prefix, certificate, [*intermediates, *known_intermediates, *anchors], now)
        )
    platform = {}
    for index in sorted(h for h in defined if PLATFORM_FIRST <= h <= PLATFORM_LAST):
        try:
            platform[index] = _certificate_bytes(probe.nv_read(index))
        except (TSS2_Exception, NoSuchIndex):
            platform[index] = b""
    rows.extend(platform_rows(sorted(defined), platform))
    if findings.ek is None:
        # Windows creates the RSA EK from the default template whether or not NV holds a certificate.
        handle, public = probe.ek_from_template("EK-RSA2048")
        findings.ek, findings.ek_public, findings.rsa_modulus = handle, public, modulus_of(public)
    return findings


def _certificate_bytes(data: bytes) -> bytes:
    # An index may be larger than its certificate; the DER length says where it ends.
    parts = split_der(data)
    return parts[0] if parts else data


def _template_row(
    probe: Probe, findings: EKFindings, prefix: str, entry: EKIndex, certificate: x509.Certificate
) -> Row:
    row_id = f"{prefix}.key_matches_template"
    try:
        handle, public = probe.ek_from_template(entry.ek_type)
    except (TSS2_Exception, ValueError) as exc:
        return failed(
            row_id, AREA_KEY, f"{entry.ek_type}: the TPM cannot create the EK: {exc}", _TEMPLATE_CLAUSE
        )
    if entry.ek_type == "EK-RSA2048" and findings.ek is None:
        findings.ek, findings.ek_public, findings.rsa_modulus = handle, public, modulus_of(public)
    else:
        probe.flush(handle)
    key = load_der_public_key(public.to_der())
    cert_key = certificate.public_key()
    if isinstance(cert_key, type(key)) and same_public_key(certificate, key):  # type: ignore[arg-type]
        return passed(
            row_id,
            AREA_KEY,
            f"{entry.ek_type} re-created by CreatePrimary equals the key of {describe(certificate)}",
            _TEMPLATE_CLAUSE,
        )
    return failed(
        row_id,
        AREA_KEY,
        f"{describe(certificate)} certifies a key other than the {entry.ek_type} EK the TPM re-creates",
        _TEMPLATE_CLAUSE,
    )
