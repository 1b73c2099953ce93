"""What Windows asks of the TPM during attestation, each run N times and timed.

Every result is verified in software (digests recomputed, signatures checked, the
activated secret compared), so a row passes only when the TPM did the work correctly.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from tpm2_pytss import TPM2B_PUBLIC, TPMA_OBJECT, TSS2_Exception

from ..client import key_templates
from ..verifier import check_aik_attributes, check_certify, parse_public, verify_signature
from ._model import ROCA_PAPER, TPM_PART3, WINDOWS_ATTESTATION, Latency, Row, failed, passed, skipped
from ._probe import Probe
from ._roca import roca_fingerprint

AREA = "Algorithms and commands"
T = TypeVar("T")
_BORN_IN_TPM = TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.FIXEDPARENT | TPMA_OBJECT.SENSITIVEDATAORIGIN


def _ecc_signing_key() -> TPM2B_PUBLIC:
    return TPM2B_PUBLIC.parse(
        "ecc256:ecdsa-sha256:null",
        objectAttributes=_BORN_IN_TPM | TPMA_OBJECT.USERWITHAUTH | TPMA_OBJECT.SIGN_ENCRYPT,
    )


def _timed(runs: int, call: Callable[[], T]) -> tuple[list[T], Latency]:
    results: list[T] = []
    seconds: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        results.append(call())
        seconds.append(time.perf_counter() - start)
    return results, Latency.of(seconds)


def modulus_of(public: TPM2B_PUBLIC) -> int:
    return int.from_bytes(bytes(public.publicArea.unique.rsa), "big")


def roca_row(row_id: str, what: str, modulus: int | None) -> Row:
    if modulus is None:
        return skipped(row_id, "ROCA", f"no RSA modulus from {what}", ROCA_PAPER)
    seen = f"{what}: {modulus.bit_length()}-bit modulus"
    if roca_fingerprint(modulus):
        return failed(row_id, "ROCA", f"{seen} HAS the ROCA fingerprint (CVE-2017-15361)", ROCA_PAPER)
    return passed(row_id, "ROCA", f"{seen} lacks the ROCA fingerprint", ROCA_PAPER)


class Operations:
    """Runs each operation; a failure is a row, and rows that needed its result are skipped."""

    def __init__(self, probe: Probe, runs: int, ek: Any, ek_public: TPM2B_PUBLIC) -> None:
        self._probe = probe
        self._runs = runs
        self._ek = ek
        self._ek_public = ek_public
        self.rows: list[Row] = []

    def _row(self, row_id: str, clause: str, action: Callable[[], tuple[bool, str, Latency]]) -> bool:
        try:
            good, evidence, latency = action()
        except TSS2_Exception as exc:
            self.rows.append(failed(row_id, AREA, f"TPM error: {exc}", clause))
            return False
        row = passed if good else failed
        self.rows.append(row(row_id, AREA, evidence, clause, latency))
        return good

    def run(self) -> list[Row]:
        probe, runs = self._probe, self._runs
        state: dict[str, Any] = {}

        def srk() -> tuple[bool, str, Latency]:
            (handle,), latency = _timed(1, lambda: probe.srk(key_templates.srk()))
            state["srk"] = handle
            return True, "RSA 2048 storage root key (CreatePrimary, owner hierarchy)", latency

        if not self._row("alg.rsa2048.storage_root", f"{TPM_PART3} §24.1 CreatePrimary", srk):
            return self._skip_rest("no storage root key")
        parent = state["srk"]

        def rsa_create() -> tuple[bool, str, Latency]:
            keys, latency = _timed(runs, lambda: probe.create(parent, key_templates.bound_signing_key()))
            state["fresh"] = modulus_of(keys[0][1])
            return True, f"RSA 2048 signing key (TPM2_Create) x{runs}", latency

        self._row("alg.rsa2048.create", f"{TPM_PART3} §12.1 Create; {WINDOWS_ATTESTATION}", rsa_create)

        def ecc_create() -> tuple[bool, str, Latency]:
            keys, latency = _timed(runs, lambda: probe.create(parent, _ecc_signing_key()))
            curve = int(keys[0][1].publicArea.parameters.eccDetail.curveID)
            return (
                curve == 0x0003,
                f"ECC NIST P-256 signing key (TPM2_Create) x{runs}, curve 0x{curve:04X}",
                latency,
            )

        self._row("alg.ecc256.create", f"{TPM_PART3} §12.1 Create; {WINDOWS_ATTESTATION}", ecc_create)

        data = b"vendor-check SHA-256 probe"

        def sha256() -> tuple[bool, str, Latency]:
            digests, latency = _timed(runs, lambda: probe.sha256(data))
            good = all(d == hashlib.sha256(data).digest() for d in digests)
            return (
                good,
                "TPM2_Hash(SHA-256) equals the software digest" if good else "digest differs",
                latency,
            )

        self._row("alg.sha256", f"{TPM_PART3} §15.4 Hash", sha256)

        def aik() -> tuple[bool, str, Latency]:
            keys, latency = _timed(runs, lambda: probe.create(parent, key_templates.aik()))
            private, public = keys[0]
            check = check_aik_attributes("aik", parse_public(bytes(public.marshal())))
            state["aik"] = probe.load(parent, private, public)
            state["aik_public"] = public
            state["aik_modulus"] = modulus_of(public)
            return check.passed, check.detail or "restricted RSA 2048 signing key, born in the TPM", latency

        if not self._row("aik.create", f"{TPM_PART3} §12.1 Create; {WINDOWS_ATTESTATION} (AIK)", aik):
            return self._skip_rest("no AIK")
        aik_handle, aik_public = state["aik"], state["aik_public"]

        def activate() -> tuple[bool, str, Latency]:
            secrets = [os.urandom(32) for _ in range(runs)]
            pending = iter(secrets)
            recovered, latency = _timed(
                runs, lambda: probe.activate(aik_handle, aik_public, self._ek, self._ek_public, next(pending))
            )
            good = recovered == secrets
            evidence = (
                "MakeCredential (software) to the EK; ActivateCredential with PolicySecret(endorsement)"
            )
            return good, evidence if good else f"{evidence}: recovered secret differs", latency

        self._row("aik.activate_credential", f"{TPM_PART3} §12.5 ActivateCredential", activate)
        # A TPM without a resource manager has as few as three object slots: the EK's is
        # needed no more once the credential is activated.
        probe.flush(self._ek)
        private, key_public = probe.create(parent, key_templates.bound_signing_key())
        key = probe.load(parent, private, key_public)
        certified = parse_public(bytes(key_public.marshal()))
        aik_key = parse_public(bytes(aik_public.marshal())).crypto_key()

        def certify() -> tuple[bool, str, Latency]:
            nonce = os.urandom(32)
            claims, latency = _timed(runs, lambda: probe.certify(key, aik_handle, nonce))
            for attest, signature in claims:
                checks = [*check_certify("certify", attest, certified=certified, nonce=nonce)]
                checks.append(verify_signature("certify.signature", aik_key, attest, signature))
                bad = [c for c in checks if not c.passed]
                if bad:
                    return False, "; ".join(f"{c.name}: {c.detail}" for c in bad), latency
            return True, "TPMS_ATTEST names the key and the nonce; the AIK's signature verifies", latency

        self._row("tpm.certify", f"{TPM_PART3} §18.2 Certify; {WINDOWS_ATTESTATION}", certify)

        def sign() -> tuple[bool, str, Latency]:
            digest = hashlib.sha256(b"vendor-check TPM2_Sign probe").digest()
            signatures, latency = _timed(runs, lambda: probe.sign(key, digest))
            public_key = certified.crypto_key()
            assert isinstance(public_key, rsa.RSAPublicKey)
            try:
                for signature in signatures:
                    public_key.verify(
                        signature, b"vendor-check TPM2_Sign probe", padding.PKCS1v15(), hashes.SHA256()
                    )
            except InvalidSignature:
                return False, "a TPM2_Sign signature does not verify", latency
            return True, "RSASSA-SHA256 signature verifies with the key's public part", latency

        self._row("tpm.sign", f"{TPM_PART3} §20.2 Sign", sign)
        probe.flush(key)
        probe.flush(aik_handle)
        self.rows.append(roca_row("roca.aik", "the AIK", state.get("aik_modulus")))
        self.rows.append(roca_row("roca.fresh", "a fresh RSA 2048 key", state.get("fresh")))
        return self.rows

    @staticmethod
    def skip_all(reason: str) -> list[Row]:
        return _skip(reason, [])

    def _skip_rest(self, reason: str) -> list[Row]:
        return _skip(reason, self.rows)


_OPERATION_ROWS = (
    "alg.rsa2048.create",
    "alg.ecc256.create",
    "alg.sha256",
    "aik.create",
    "tpm.certify",
    "aik.activate_credential",
    "tpm.sign",
)


def _skip(reason: str, rows: list[Row]) -> list[Row]:
    done = {r.id for r in rows}
    rows.extend(
        skipped(row_id, AREA, reason, WINDOWS_ATTESTATION) for row_id in _OPERATION_ROWS if row_id not in done
    )
    rows.append(roca_row("roca.aik", "the AIK", None))
    rows.append(roca_row("roca.fresh", "a fresh RSA 2048 key", None))
    return rows
