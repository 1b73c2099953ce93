"""The verifier refuses tampered evidence, for the reason an admin reads in the report.

Every test starts from one real enrollment recorded from a swtpm TPM into a bundle
(tests/data/bundles, recorded by scripts/record_bundles.py; the `recorded` fixture, which
evaluates to Attested), changes one thing, and asserts three facts:
the device is not Attested, the status detail is the documented one, and the check
that decided it is the one named in `verdict.decision` (and failed in `verdict.checks`).
No TPM is needed: these tests pass with swtpm absent. Tests that need one carry the
`swtpm` marker (`pytest -m "not swtpm"` runs the rest).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from tpm2_pytss import TPM2_ALG, TPM2B_PUBLIC, TPMA_OBJECT

from harness.fleet import RecordedEnrollment
from harness.pki import (
    OID_AIK_CERTIFICATE,
    OID_EK_CERTIFICATE,
    CertificateAuthority,
    TPMIdentity,
    certificate_der,
    tpm_san,
)
from harness.status import AttestationStatus, HResult, StatusDetail, from_tpm_rc
from harness.verifier import (
    DEVICE_ID_CLAIM,
    Evidence,
    FirmwareAdvisory,
    NonceState,
    PlatformRules,
    Policy,
    Verdict,
    VersionRange,
    VirtualPlatform,
    check_ek_certificate,
    evaluate,
    parse_public,
    parse_version,
    verify_chain,
)
from tests.bundled import recorded_from_bundle
from tests.conftest import IDENTITY

# Microsoft Pluton as the TPM of a physical laptop, and a Hyper-V vTPM: both report MSFT.
PLUTON = TPMIdentity("id:4D534654", "Pluton.TPM.A", "id:00060001")
HYPER_V_VTPM = TPMIdentity("id:4D534654", "Virtual TPM", "id:00020000")


@pytest.fixture(scope="module")
def recorded() -> RecordedEnrollment:
    """A real enrollment recorded from swtpm (tests/data/bundles): no TPM needed to judge it."""
    return recorded_from_bundle()


BINARY_FIELDS = ("aik_claim", "aik_pub", "aik_cert", "aad_claim", "aad_pub", "mdm_pub")
ATTESTATION_FIELDS = (*BINARY_FIELDS, "client_status", "client_hresult")
# Offsets into a marshalled TPM2B_ATTEST || TPMT_SIGNATURE claim.
MAGIC_OFFSET = 2  # after the 2-byte TPM2B size
TYPE_OFFSET = 6  # after the 4-byte magic
# Offsets into a marshalled TPM2B_PUBLIC: size(2) type(2) nameAlg(2) objectAttributes(4).
ATTRIBUTES = slice(6, 10)


# --- helpers ---------------------------------------------------------------------------


def judge(
    recorded: RecordedEnrollment,
    evidence: Evidence | None = None,
    *,
    policy: Policy | None = None,
    now: dt.datetime | None = None,
    nonce: NonceState | None = None,
    registered: dict[str, bytes] | None = None,
) -> Verdict:
    """Evaluate `evidence` in the recorded context, with any part of that context replaced."""
    return evaluate(
        recorded.evidence if evidence is None else evidence,
        recorded.policy if policy is None else policy,
        now=recorded.now if now is None else now,
        nonce=recorded.nonce if nonce is None else nonce,
        registered_keys=recorded.registered if registered is None else registered,
    )


def tampered(recorded: RecordedEnrollment, **changes: Any) -> Evidence:
    return replace(recorded.evidence, **changes)


def failed_checks(verdict: Verdict) -> list[str]:
    return [check.name for check in verdict.checks if not check.passed]


def assert_refused(
    verdict: Verdict,
    detail: StatusDetail,
    check: str,
    *,
    status: AttestationStatus = AttestationStatus.NOT_ATTESTED,
) -> None:
    """Not Attested, for `detail`, and decided by the failure of `check`."""
    assert verdict.status != AttestationStatus.ATTESTED, verdict.decision
    assert verdict.status == status, verdict.decision
    assert verdict.detail == detail, verdict.decision
    assert check in failed_checks(verdict), (check, verdict.checks)
    assert verdict.decision.startswith(f"{check}:"), verdict.decision


def flip(blob: bytes, index: int, mask: int = 0xFF) -> bytes:
    changed = bytearray(blob)
    changed[index] ^= mask
    return bytes(changed)


def signature_offset(claim: bytes) -> int:
    """Where the TPMT_SIGNATURE starts in a claim: after the TPM2B_ATTEST."""
    return 2 + int.from_bytes(claim[:2], "big")


def with_attributes(public_blob: bytes, change: Callable[[int], int]) -> bytes:
    attributes = int.from_bytes(public_blob[ATTRIBUTES], "big")
    changed = change(attributes).to_bytes(4, "big")
    return public_blob[: ATTRIBUTES.start] + changed + public_blob[ATTRIBUTES.stop :]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def weak_rsa_key() -> rsa.RSAPublicKey:
    """1024 bits: under the 2048 every key of an enrollment needs."""
    return rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()


def spki(key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def build_aik_cert(
    issuer: CertificateAuthority,
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    now: dt.datetime,
    *,
    eku: bool = True,
    is_ca: bool = False,
    identity: TPMIdentity = IDENTITY,
    subject: x509.Name | None = None,
    san: bool = True,
    san_critical: bool = True,
    not_before: dt.timedelta = dt.timedelta(minutes=-5),
    not_after: dt.timedelta = dt.timedelta(days=365),
    version: x509.Version = x509.Version.v3,
) -> bytes:
    """An AIK certificate per the TCG profile, unless told to deviate in one way."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]) if subject is None else subject)
        .issuer_name(issuer.certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + not_before)
        .not_valid_after(now + not_after)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(tpm_san(identity), critical=san_critical)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage([OID_AIK_CERTIFICATE]), critical=False)
    builder._version = version  # cryptography writes what it holds; only v3 may carry extensions
    return certificate_der(builder.sign(issuer.key, hashes.SHA256()))


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aik_ca(recorded: RecordedEnrollment) -> CertificateAuthority:
    """An AIK CA of the tests' own, so they can issue AIK certificates that deviate."""
    return CertificateAuthority.create("Test AIK CA", "Verifier tests", now=recorded.now)


@pytest.fixture(scope="module")
def aik_policy(recorded: RecordedEnrollment, aik_ca: CertificateAuthority) -> Policy:
    return replace(recorded.policy, aik_roots=[aik_ca.certificate])


@pytest.fixture(scope="module")
def aik_public(recorded: RecordedEnrollment) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    assert recorded.evidence.aik_pub is not None
    return parse_public(recorded.evidence.aik_pub).crypto_key()


@dataclass(frozen=True)
class IdentityProvider:
    """A token signer of the tests' own, trusted by `policy` alone."""

    key: rsa.RSAPrivateKey
    kid: str
    policy: Policy
    claims: dict[str, Any]  # the recorded token's claims

    def token(self, changes: dict[str, Any] | None = None, *, drop: tuple[str, ...] = ()) -> str:
        """The recorded token's claims with `changes` made and `drop` removed, signed."""
        merged = {**self.claims, **(changes or {})}
        payload = {k: v for k, v in merged.items() if k not in drop}
        return jwt.encode(payload, self.key, algorithm="RS256", headers={"kid": self.kid})


@pytest.fixture(scope="module")
def idp(recorded: RecordedEnrollment) -> IdentityProvider:
    key = rsa_key()
    assert recorded.evidence.token is not None
    claims = jwt.decode(recorded.evidence.token, options={"verify_signature": False})
    policy = replace(recorded.policy, token_keys={"k1": key.public_key()})
    return IdentityProvider(key=key, kid="k1", policy=policy, claims=claims)


@pytest.fixture(scope="module")
def policy_kid(recorded: RecordedEnrollment) -> str:
    (kid,) = recorded.policy.token_keys
    return kid


# --- 1. baseline -----------------------------------------------------------------------


class TestBaseline:
    def test_recorded_enrollment_is_attested(self, recorded: RecordedEnrollment) -> None:
        verdict = judge(recorded)
        assert verdict.status == AttestationStatus.ATTESTED, verdict.decision
        assert verdict.detail == StatusDetail.NONE
        assert failed_checks(verdict) == []
        assert verdict.device_id == recorded.device_id

    def test_own_aik_ca_and_idp_attest_untampered_keys(
        self,
        recorded: RecordedEnrollment,
        aik_ca: CertificateAuthority,
        aik_policy: Policy,
        aik_public: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
        idp: IdentityProvider,
    ) -> None:
        """The tests' CA and token signer are sound, so their deviations alone explain refusals."""
        cert = build_aik_cert(aik_ca, aik_public, recorded.now)
        verdict = judge(recorded, tampered(recorded, aik_cert=cert), policy=aik_policy)
        assert verdict.status == AttestationStatus.ATTESTED, verdict.decision
        verdict = judge(recorded, tampered(recorded, token=idp.token()), policy=idp.policy)
        assert verdict.status == AttestationStatus.ATTESTED, verdict.decision


# --- 2-4. the MDM key's attestation claim ----------------------------------------------


class TestMdmClaim:
    def test_flipped_signature_byte_is_rejected(self, recorded: RecordedEnrollment) -> None:
        claim = recorded.evidence.aik_claim
        assert claim is not None
        verdict = judge(recorded, tampered(recorded, aik_claim=flip(claim, len(claim) - 1)))
        assert_refused(verdict, StatusDetail.CLIENT_REQUEST_REJECTED, "mdm.signature")

    @pytest.mark.parametrize(
        ("where", "value"),
        [
            pytest.param(0, b"\x00\x04", id="rsassa-to-sha1-hash"),  # hash of the scheme
            pytest.param(-2, b"\x00\x16", id="rsassa-to-rsapss"),  # sigAlg
        ],
    )
    def test_signature_scheme_changes_are_rejected(
        self, recorded: RecordedEnrollment, where: int, value: bytes
    ) -> None:
        claim = recorded.evidence.aik_claim
        assert claim is not None
        start = signature_offset(claim)
        assert claim[start : start + 4] == bytes.fromhex("0014000b"), "RSASSA/SHA256 expected"
        at = start + 2 + where  # sigAlg at start, its hash at start + 2
        changed = claim[:at] + value + claim[at + 2 :]
        verdict = judge(recorded, tampered(recorded, aik_claim=changed))
        assert_refused(verdict, StatusDetail.CLIENT_REQUEST_REJECTED, "mdm.signature")

    def test_flipped_magic_is_rejected(self, recorded: RecordedEnrollment) -> None:
        claim = recorded.evidence.aik_claim
        assert claim is not None
        assert claim[MAGIC_OFFSET : MAGIC_OFFSET + 4] == b"\xffTCG"
        verdict = judge(recorded, tampered(recorded, aik_claim=flip(claim, MAGIC_OFFSET)))
        assert_refused(verdict, StatusDetail.CLIENT_REQUEST_REJECTED, "mdm.magic")
        assert "mdm.signature" in failed_checks(verdict)  # the AIK never signed these bytes

    @pytest.mark.parametrize(
        ("attest_type", "check"),
        [
            # TPM_ST_ATTEST_CREATION has the same layout as CERTIFY: it parses, then is refused.
            pytest.param(0x801A, "mdm.type", id="creation"),
            pytest.param(0x8018, "mdm.attest_parses", id="quote"),
            pytest.param(0x8014, "mdm.attest_parses", id="nv"),
            pytest.param(0x0000, "mdm.attest_parses", id="zero"),
        ],
    )
    def test_changed_attest_type_is_rejected(
        self, recorded: RecordedEnrollment, attest_type: int, check: str
    ) -> None:
        claim = recorded.evidence.aik_claim
        assert claim is not None
        assert claim[TYPE_OFFSET : TYPE_OFFSET + 2] == b"\x80\x17"  # TPM_ST_ATTEST_CERTIFY
        changed = claim[:TYPE_OFFSET] + attest_type.to_bytes(2, "big") + claim[TYPE_OFFSET + 2 :]
        verdict = judge(recorded, tampered(recorded, aik_claim=changed))
        assert_refused(verdict, StatusDetail.CLIENT_REQUEST_REJECTED, check)

    def test_entra_claim_of_another_attest_type_is_rejected(self, recorded: RecordedEnrollment) -> None:
        claim = recorded.evidence.aad_claim
        assert claim is not None
        assert claim[TYPE_OFFSET : TYPE_OFFSET + 2] == b"\x80\x17"  # TPM_ST_ATTEST_CERTIFY
        creation = claim[:TYPE_OFFSET] + (0x801A).to_bytes(2, "big") + claim[TYPE_OFFSET + 2 :]
        verdict = judge(recorded, tampered(recorded, aad_claim=creation))
        assert_refused(verdict, StatusDetail.CLIENT_REQUEST_REJECTED, "entra.type")

    def test_entra_claim_signature_is_checked_too(self, recorded: RecordedEnrollment) -> None:
        claim = recorded.evidence.aad_claim
        assert claim is not None
        verdict = judge(recorded, tampered(recorded, aad_claim=flip(claim, len(claim) - 1)))
        assert_refused(verdict, StatusDetail.CLIENT_REQUEST_REJECTED, "entra.signature")

    @pytest.mark.parametrize("field", ["aik_claim", "aad_claim", "mdm_pub", "aad_pub"])
    def test_no_single_byte_change_is_attested(self, recorded: RecordedEnrollment, field: str) -> None:
        """Every byte of the claims and the certified keys is bound by a signature or a name."""
        blob = getattr(recorded.evidence, field)
        assert blob is not None
        attested = [
            index
            for index in range(len(blob))
            if judge(recorded, tampered(recorded, **{field: flip(blob, index, 0x01)})).status
            != AttestationStatus.NOT_ATTESTED
        ]
        assert attested == [], f"{field}: flipping these bytes was not refused: {attested}"


# --- 5. nonce --------------------------------------------------------------------------


class TestNonce:
    @pytest.mark.parametrize(
        ("state", "check"),
        [
            pytest.param({"value": b"x" * 32}, "mdm.nonce_bound", id="other-nonce"),
            pytest.param({"used": True}, "nonce.unused", id="reused"),
            pytest.param({"expired": True}, "nonce.fresh", id="expired"),
            pytest.param({"issued": False}, "nonce.issued", id="not-issued"),
        ],
    )
    def test_nonce_that_is_not_fresh_and_ours_is_rejected(
        self, recorded: RecordedEnrollment, state: dict[str, Any], check: str
    ) -> None:
        verdict = judge(recorded, nonce=replace(recorded.nonce, **state))
        assert_refused(verdict, StatusDetail.CLIENT_REQUEST_REJECTED, check)


# --- 6. attested name ------------------------------------------------------------------


class TestAttestedName:
    def test_mdm_pub_replaced_by_another_tpm_key(self, recorded: RecordedEnrollment) -> None:
        verdict = judge(recorded, tampered(recorded, mdm_pub=recorded.evidence.aad_pub))
        assert_refused(verdict, StatusDetail.CLIENT_REQUEST_REJECTED, "mdm.name")

    def test_aad_pub_replaced_by_the_mdm_key(self, recorded: RecordedEnrollment) -> None:
        verdict = judge(recorded, tampered(recorded, aad_pub=recorded.evidence.mdm_pub))
        assert_refused(verdict, StatusDetail.CLIENT_REQUEST_REJECTED, "entra.name")

    def test_mdm_claim_presented_as_the_entra_claim(self, recorded: RecordedEnrollment) -> None:
        verdict = judge(recorded, tampered(recorded, aad_claim=recorded.evidence.aik_claim))
        assert_refused(verdict, StatusDetail.CLIENT_REQUEST_REJECTED, "entra.name")


# --- 7. AIK certificate and AIKPub -----------------------------------------------------


class TestAikCertificate:
    @pytest.mark.parametrize(
        ("deviation", "check"),
        [
            pytest.param({"eku": False}, "aik_cert.eku", id="no-aik-eku"),
            pytest.param({"is_ca": True}, "aik_cert.not_ca", id="ca-true"),
            pytest.param(
                {"subject": x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aik")])},
                "aik_cert.empty_subject",
                id="subject-not-empty",
            ),
            pytest.param({"san_critical": False}, "aik_cert.san_critical", id="san-not-critical"),
            pytest.param({"san": False}, "aik_cert.tpm_identity", id="no-tpm-identity"),
            pytest.param(
                {"not_before": dt.timedelta(days=-30), "not_after": dt.timedelta(days=-1)},
                "aik_cert.chain",
                id="expired",
            ),
            pytest.param(
                {"not_before": dt.timedelta(days=1), "not_after": dt.timedelta(days=30)},
                "aik_cert.chain",
                id="not-yet-valid",
            ),
        ],
    )
    def test_certificate_off_the_tcg_profile_is_rejected(
        self,
        recorded: RecordedEnrollment,
        aik_ca: CertificateAuthority,
        aik_policy: Policy,
        aik_public: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
        deviation: dict[str, Any],
        check: str,
    ) -> None:
        cert = build_aik_cert(aik_ca, aik_public, recorded.now, **deviation)
        verdict = judge(recorded, tampered(recorded, aik_cert=cert), policy=aik_policy)
        assert_refused(verdict, StatusDetail.CLIENT_REQUEST_REJECTED, check)

    def test_a_version_1_certificate_is_rejected(
        self,
        recorded: RecordedEnrollment,
        aik_ca: CertificateAuthority,
        aik_policy: Policy,
        aik_public: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    ) -> None:
        cert = build_aik_cert(aik_ca, aik_public, recorded.now, version=x509.Version.v1)
        verdict = judge(recorded, tampered(recorded, aik_cert=cert), policy=aik_policy)
        assert_refused(verdict, StatusDetail.CLIENT_REQUEST_REJECTED, "aik_cert.version")

    def test_a_certificate_over_a_weak_key_is_rejected(
        self, recorded: RecordedEnrollment, aik_ca: CertificateAuthority, aik_policy: Policy
    ) -> None:
        weak = weak_rsa_key()
        cert = build_aik_cert(aik_ca, weak, recorded.now)
        verdict = judge(recorded, tampered(recorded, aik_cert=cert), policy=aik_policy)
        assert_refused(verdict, StatusDetail.CLIENT_REQUEST_REJECTED, "aik_cert.key_strength")

    def test_certificate_from_an_untrusted_ca_is_rejected(
        self,
        recorded: RecordedEnrollment,
        aik_ca: CertificateAuthority,
        aik_public: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    ) -> None:
        cert = aik_ca.issue_aik_certificate(aik_public, IDENTITY, now=recorded.now)
        verdict = judge(recorded, tampered(recorded, aik_cert=certificate_der(cert)))
        assert_refused(verdict, StatusDetail.CLIENT_REQUEST_REJECTED, "aik_cert.chain")

    def test_certificate_over_another_key_than_aik_pub_is_rejected(
        self, recorded: RecordedEnrollment, aik_ca: CertificateAuthority, aik_policy: Policy
    ) -> None:
        cert = aik_ca.issue_aik_certificate(rsa_key().public_key(), IDENTITY, now=recorded.now)
        verdict = judge(recorded, tampered(recorded, aik_cert=certificate_der(cert)), policy=aik_policy)
        assert_refused(verdict, StatusDetail.CLIENT_REQUEST_REJECTED, "aik_pub.matches_cert")

    def test_ca_certificate_sent_as_the_aik_certificate_is_rejected(
        self, recorded: RecordedEnrollment, aik_ca: CertificateAuthority, aik_policy: Policy
    ) -> None:
        verdict = judge(recorded, tampered(recorded, aik_cert=aik_ca.certificate_der), policy=aik_policy)
        assert verdict.status == AttestationStatus.NOT_ATTESTED, verdict.decision
        assert verdict.detail == StatusDetail.CLIENT_REQUEST_REJECTED
        assert {"aik_cert.eku", "aik_cert.not_ca", "aik_pub.matches_cert"} <= set(failed_checks(verdict))

    def test_firmware_on_the_advisory_list_is_not_available(self, recorded: RecordedEnrollment) -> None:
        version = parse_version(IDENTITY.version)
        advisory = FirmwareAdvisory("test advisory", IDENTITY.manufacturer, (VersionRange(version, version),))
        policy = replace(recorded.policy, firmware_advisories=[advisory])
        verdict = judge(recorded, policy=policy)
        assert_refused(verdict, StatusDetail.TPM_NOT_AVAILABLE, "tpm.firmware")


class TestAikPub:
    def test_aik_pub_with_another_modulus_is_rejected(self, recorded: RecordedEnrollment) -> None:
        blob = recorded.evidence.aik_pub
        assert blob is not None
        verdict = judge(recorded, tampered(recorded, aik_pub=flip(blob, len(blob) - 1)))
        assert_refused(verdict, StatusDetail.CLIENT_REQUEST_REJECTED, "aik_pub.matches_cert")

    @pytest.mark.parametrize(
        "change",
        [
            pytest.param(lambda a: a & ~int(TPMA_OBJECT.RESTRICTED), id="not-restricted"),
            pytest.param(lambda a: a | int(TPMA_OBJECT.DECRYPT), id="also-decrypts"),
            pytest.param(lambda a: a & ~int(TPMA_OBJECT.FIXEDTPM), id="not-fixed-tpm"),
        ],
    )
    def test_aik_pub_that_is_not_a_restricted_signing_key_is_rejected(
        self, recorded: RecordedEnrollment, change: Callable[[int], int]
    ) -> None:
        blob = recorded.evidence.aik_pub
        assert blob is not None
        verdict = judge(recorded, tampered(recorded, aik_pub=with_attributes(blob, change)))
        assert_refused(verdict, StatusDetail.CLIENT_REQUEST_REJECTED, "aik_pub.attributes")

    def test_aik_pub_of_a_weak_key_is_rejected(self, recorded: RecordedEnrollment) -> None:
        assert recorded.evidence.aik_pub is not None
        public, _ = TPM2B_PUBLIC.unmarshal(recorded.evidence.aik_pub)
        weak = weak_rsa_key()
        public.publicArea.parameters.rsaDetail.keyBits = 1024
        public.publicArea.unique.rsa = weak.public_numbers().n.to_bytes(128, "big")
        verdict = judge(recorded, tampered(recorded, aik_pub=bytes(public.marshal())))
        assert_refused(verdict, StatusDetail.CLIENT_REQUEST_REJECTED, "aik_pub.key_strength")

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            pytest.param("nameAlg", 0x0012, id="name-alg-sm3"),
            pytest.param("symmetric", int(TPM2_ALG.AES), id="aes-symmetric"),
            pytest.param("scheme", int(TPM2_ALG.NULL), id="null-scheme"),
        ],
    )
    def test_aik_pub_no_tpm_can_hold_is_rejected_by_the_aik_cas_rule(
        self, recorded: RecordedEnrollment, field: str, value: int
    ) -> None:
        """The rule the AIK CA refuses these with (aik_pub.structure, a 400 there) refuses them here."""
        assert recorded.evidence.aik_pub is not None
        public, _ = TPM2B_PUBLIC.unmarshal(recorded.evidence.aik_pub)
        area = public.publicArea
        if field == "nameAlg":
            area.nameAlg = value
        elif field == "symmetric":
            area.parameters.rsaDetail.symmetric.algorithm = value
            area.parameters.rsaDetail.symmetric.keyBits.aes = 128
            area.parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG.CFB
        else:
            area.parameters.rsaDetail.scheme.scheme = value
        verdict = judge(recorded, tampered(recorded, aik_pub=bytes(public.marshal())))
        assert_refused(verdict, StatusDetail.CLIENT_REQUEST_REJECTED, "aik_pub.structure")


class TestEkCertificate:
    """The EK certificate checks the AIK CA applies before it issues an AIK certificate."""

    @staticmethod
    def ek_cert(
        vendor: CertificateAuthority,
        now: dt.datetime,
        *,
        key: rsa.RSAPublicKey | None = None,
        is_ca: bool = False,
        san: bool = True,
        eku: bool = True,
        version: x509.Version = x509.Version.v3,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(vendor.certificate.subject)
            .public_key(key or rsa_key().public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        )
        if eku:
            builder = builder.add_extension(x509.ExtendedKeyUsage([OID_EK_CERTIFICATE]), critical=False)
        if san:
            builder = builder.add_extension(tpm_san(IDENTITY), critical=True)
        builder._version = version
        return builder.sign(vendor.key, hashes.SHA256())

    def test_an_ek_certificate_on_the_profile_passes(self, recorded: RecordedEnrollment) -> None:
        vendor = CertificateAuthority.create("Vendor EK CA", "Verifier tests", now=recorded.now)
        checks, identity = check_ek_certificate(self.ek_cert(vendor, recorded.now))
        assert [c.name for c in checks if not c.passed] == []
        assert identity == IDENTITY

    @pytest.mark.parametrize(
        ("deviation", "check"),
        [
            pytest.param({"version": x509.Version.v1}, "ek_cert.version", id="version-1"),
            pytest.param({"eku": False}, "ek_cert.eku", id="no-ek-eku"),
            pytest.param({"is_ca": True}, "ek_cert.not_ca", id="ca-true"),
            pytest.param({"san": False}, "ek_cert.tpm_identity", id="no-tpm-identity"),
            pytest.param({"weak": True}, "ek_cert.key_strength", id="rsa-1024"),
        ],
    )
    def test_an_ek_certificate_off_the_profile_fails_that_check(
        self, recorded: RecordedEnrollment, deviation: dict[str, Any], check: str
    ) -> None:
        vendor = CertificateAuthority.create("Vendor EK CA", "Verifier tests", now=recorded.now)
        options = dict(deviation)  # the parameter's own dict stays as collected
        if options.pop("weak", False):
            options["key"] = weak_rsa_key()
        checks, _ = check_ek_certificate(self.ek_cert(vendor, recorded.now, **options))
        assert [c.name for c in checks if not c.passed] == [check]

    def test_an_ek_certificate_of_an_unknown_vendor_does_not_chain(
        self, recorded: RecordedEnrollment
    ) -> None:
        vendor = CertificateAuthority.create("Vendor EK CA", "Verifier tests", now=recorded.now)
        other = CertificateAuthority.create("Another vendor", "Verifier tests", now=recorded.now)
        leaf = self.ek_cert(vendor, recorded.now)
        trusted = verify_chain("ek_cert.chain", leaf, roots=[vendor.certificate], now=recorded.now)
        refused = verify_chain("ek_cert.chain", leaf, roots=[other.certificate], now=recorded.now)
        assert trusted.passed, trusted.detail
        assert not refused.passed and "is not a trusted root" in refused.detail, refused


# --- 8. tokens -------------------------------------------------------------------------


class TestToken:
    def test_missing_token(self, recorded: RecordedEnrollment) -> None:
        verdict = judge(recorded, tampered(recorded, token=None))
        assert_refused(verdict, StatusDetail.AUTHENTICATION_FAILED, "token.present")

    def test_not_a_jwt(self, recorded: RecordedEnrollment) -> None:
        verdict = judge(recorded, tampered(recorded, token="not-a-jwt"))
        assert_refused(verdict, StatusDetail.AUTHENTICATION_FAILED, "token.format")

    def test_token_signed_by_an_unknown_key_under_the_policy_kid(
        self, recorded: RecordedEnrollment, idp: IdentityProvider, policy_kid: str
    ) -> None:
        forged = jwt.encode(idp.claims, rsa_key(), algorithm="RS256", headers={"kid": policy_kid})
        verdict = judge(recorded, tampered(recorded, token=forged))
        assert_refused(verdict, StatusDetail.AUTHENTICATION_FAILED, "token.signature")

    def test_token_with_an_unknown_kid(self, recorded: RecordedEnrollment, idp: IdentityProvider) -> None:
        verdict = judge(recorded, tampered(recorded, token=idp.token()))  # policy lacks "k1"
        assert_refused(verdict, StatusDetail.AUTHENTICATION_FAILED, "token.signature")

    def test_unsigned_alg_none_token(
        self, recorded: RecordedEnrollment, idp: IdentityProvider, policy_kid: str
    ) -> None:
        unsigned = jwt.encode(idp.claims, "", algorithm="none", headers={"kid": policy_kid})
        verdict = judge(recorded, tampered(recorded, token=unsigned))
        assert_refused(verdict, StatusDetail.AUTHENTICATION_FAILED, "token.algorithm")

    def test_hs256_token_keyed_with_the_public_key(
        self, recorded: RecordedEnrollment, idp: IdentityProvider, policy_kid: str
    ) -> None:
        """The algorithm-confusion attack: HMAC keyed with the IdP's public key.

        PyJWT refuses to make such a token, so it is put together by hand."""
        secret = recorded.policy.token_keys[policy_kid].public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        header = {"alg": "HS256", "typ": "JWT", "kid": policy_kid}
        signing_input = f"{b64url_json(header)}.{b64url_json(idp.claims)}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        confused = f"{signing_input}.{b64url(mac)}"
        verdict = judge(recorded, tampered(recorded, token=confused))
        assert_refused(verdict, StatusDetail.AUTHENTICATION_FAILED, "token.algorithm")

    @pytest.mark.parametrize(
        ("offset", "reason"),
        [
            pytest.param(dt.timedelta(hours=2), "expired", id="expired"),
            pytest.param(dt.timedelta(hours=-1), "issued in the future", id="from-the-future"),
        ],
    )
    def test_token_outside_its_lifetime(
        self, recorded: RecordedEnrollment, offset: dt.timedelta, reason: str
    ) -> None:
        verdict = judge(recorded, now=recorded.now + offset)
        assert_refused(verdict, StatusDetail.AUTHENTICATION_FAILED, "token.lifetime")
        assert reason in verdict.decision

    @pytest.mark.parametrize(
        "claims",
        [
            pytest.param({"aud": "urn:someone-else"}, id="audience"),
            pytest.param({"iss": "urn:another-idp"}, id="issuer"),
        ],
    )
    def test_token_for_another_audience_or_from_another_issuer(
        self, recorded: RecordedEnrollment, idp: IdentityProvider, claims: dict[str, str]
    ) -> None:
        verdict = judge(recorded, tampered(recorded, token=idp.token(claims)), policy=idp.policy)
        assert_refused(verdict, StatusDetail.AUTHENTICATION_FAILED, "token.claims")

    def test_token_without_expiry(self, recorded: RecordedEnrollment, idp: IdentityProvider) -> None:
        token = idp.token(drop=("exp",))
        verdict = judge(recorded, tampered(recorded, token=token), policy=idp.policy)
        assert_refused(verdict, StatusDetail.AUTHENTICATION_FAILED, "token.claims")

    def test_token_segments_outside_base64url_are_refused(
        self, recorded: RecordedEnrollment, idp: IdentityProvider
    ) -> None:
        """A lenient decoder drops a stray character and would verify what was not signed."""
        header, payload, signature = idp.token().split(".")
        for token in (f"{header}.{payload}!.{signature}", f"{header}.{payload}.{signature}=="):
            verdict = judge(recorded, tampered(recorded, token=token), policy=idp.policy)
            assert_refused(verdict, StatusDetail.AUTHENTICATION_FAILED, "token.format")
            assert "not base64url" in verdict.decision

    def test_a_critical_header_extension_is_refused(
        self, recorded: RecordedEnrollment, idp: IdentityProvider
    ) -> None:
        token = jwt.encode(
            idp.claims, idp.key, algorithm="RS256", headers={"kid": idp.kid, "crit": ["exp"], "exp": 1}
        )
        verdict = judge(recorded, tampered(recorded, token=token), policy=idp.policy)
        assert_refused(verdict, StatusDetail.AUTHENTICATION_FAILED, "token.format")
        assert "'crit' is not supported" in verdict.decision

    def test_an_audience_list_naming_this_service_is_accepted(
        self, recorded: RecordedEnrollment, idp: IdentityProvider
    ) -> None:
        token = idp.token({"aud": ["urn:someone-else", idp.claims["aud"]]})
        verdict = judge(recorded, tampered(recorded, token=token), policy=idp.policy)
        assert verdict.status == AttestationStatus.ATTESTED, verdict.decision
        refused = judge(recorded, tampered(recorded, token=idp.token({"aud": [7]})), policy=idp.policy)
        assert_refused(refused, StatusDetail.AUTHENTICATION_FAILED, "token.claims")

    def test_an_es256_token_from_a_key_on_another_curve_is_refused(
        self, recorded: RecordedEnrollment, idp: IdentityProvider
    ) -> None:
        key = ec.generate_private_key(ec.SECP384R1())
        policy = replace(idp.policy, token_keys={"e1": key.public_key()})
        header = b64url_json({"alg": "ES256", "typ": "JWT", "kid": "e1"})
        signing_input = f"{header}.{b64url_json(idp.claims)}"
        r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        token = f"{signing_input}.{b64url(r.to_bytes(48, 'big') + s.to_bytes(48, 'big'))}"
        verdict = judge(recorded, tampered(recorded, token=token), policy=policy)
        assert_refused(verdict, StatusDetail.AUTHENTICATION_FAILED, "token.algorithm")

    def test_token_without_device_identity(self, recorded: RecordedEnrollment, idp: IdentityProvider) -> None:
        token = idp.token(drop=(DEVICE_ID_CLAIM,))
        verdict = judge(recorded, tampered(recorded, token=token), policy=idp.policy)
        assert_refused(verdict, StatusDetail.TOKEN_MISSING_DEVICE_ID, "token.device_id")

    def test_token_of_another_registered_device(
        self, recorded: RecordedEnrollment, idp: IdentityProvider
    ) -> None:
        other_key = ec.generate_private_key(ec.SECP256R1()).public_key()
        registered = {**recorded.registered, "other-device": spki(other_key)}
        token = idp.token({DEVICE_ID_CLAIM: "other-device"})
        verdict = judge(recorded, tampered(recorded, token=token), policy=idp.policy, registered=registered)
        assert_refused(verdict, StatusDetail.TOKEN_DEVICE_MISMATCH, "entra.token_device")

    def test_token_of_an_unregistered_device(
        self, recorded: RecordedEnrollment, idp: IdentityProvider
    ) -> None:
        token = idp.token({DEVICE_ID_CLAIM: "never-registered"})
        verdict = judge(recorded, tampered(recorded, token=token), policy=idp.policy)
        assert_refused(verdict, StatusDetail.TOKEN_DEVICE_MISMATCH, "entra.token_device")

    def test_device_registered_with_another_key_than_aad_pub(self, recorded: RecordedEnrollment) -> None:
        other_key = ec.generate_private_key(ec.SECP256R1()).public_key()
        verdict = judge(recorded, registered={recorded.device_id: spki(other_key)})
        assert_refused(verdict, StatusDetail.TOKEN_DEVICE_MISMATCH, "entra.token_device")


# --- 9. missing parameters -------------------------------------------------------------


class TestParameters:
    @pytest.mark.parametrize(
        ("missing", "detail", "check"),
        [
            pytest.param(("aik_cert", "aik_pub"), StatusDetail.MISSING_PARAMETERS, "params.aik", id="no-aik"),
            pytest.param(("aik_cert",), StatusDetail.AIK_CERT_NOT_PROVIDED, "params.aik_cert", id="no-cert"),
            pytest.param(("aik_pub",), StatusDetail.MISSING_PARAMETERS, "params.mdm_claim", id="no-aik-pub"),
            pytest.param(("aik_claim",), StatusDetail.MISSING_PARAMETERS, "params.mdm_claim", id="no-claim"),
            pytest.param(("mdm_pub",), StatusDetail.MISSING_PARAMETERS, "params.mdm_claim", id="no-mdm-pub"),
            pytest.param(
                ("aad_claim",), StatusDetail.ENTRA_KEY_NOT_ATTESTED, "entra.claim", id="no-aad-claim"
            ),
            pytest.param(("aad_pub",), StatusDetail.ENTRA_KEY_NOT_ATTESTED, "entra.claim", id="no-aad-pub"),
        ],
    )
    def test_missing_items(
        self,
        recorded: RecordedEnrollment,
        missing: tuple[str, ...],
        detail: StatusDetail,
        check: str,
    ) -> None:
        verdict = judge(recorded, tampered(recorded, **dict.fromkeys(missing)))
        assert_refused(verdict, detail, check)


# --- 10. platform ----------------------------------------------------------------------


class TestPlatform:
    @pytest.mark.parametrize(
        "changes",
        [
            pytest.param(
                {"device_manufacturer": "Microsoft Corporation", "device_model": "Virtual Machine"},
                id="hyper-v-model",
            ),
            pytest.param(
                {"device_manufacturer": "Microsoft Corporation", "device_model": "Cloud PC Enterprise 2vCPU"},
                id="cloud-pc",
            ),
            pytest.param({"device_manufacturer": "Amazon EC2", "device_model": "m7i.large"}, id="aws-nitro"),
            pytest.param({"device_manufacturer": "Nutanix", "device_model": "AHV"}, id="nutanix-ahv"),
            pytest.param(
                {"tpm_manufacturer": "id:564D5700", "aik_cert": None}, id="claimed-vmware-vtpm-unverified"
            ),
            pytest.param({"os_version": "10.0.22631.2791"}, id="build-below-minimum"),
            pytest.param({"os_version": "10.0.19044.5000"}, id="unsupported-release"),
        ],
    )
    def test_unsupported_platform(self, recorded: RecordedEnrollment, changes: dict[str, str]) -> None:
        verdict = judge(recorded, tampered(recorded, **changes))
        check = "platform.os_build" if "os_version" in changes else "platform.physical"
        assert_refused(verdict, StatusDetail.FEATURE_NOT_SUPPORTED, check)

    def test_a_claimed_tpm_maker_contradicting_the_verified_one_is_rejected(
        self, recorded: RecordedEnrollment
    ) -> None:
        """A ThinkPad claiming a Microsoft TPM whose AIK certificate names an Infineon: a client
        lying about its TPM, not a virtual machine (MSFT alone is no vTPM: Pluton reports it)."""
        verdict = judge(recorded, tampered(recorded, tpm_manufacturer="id:4D534654"))
        assert_refused(verdict, StatusDetail.CLIENT_REQUEST_REJECTED, "tpm.claims_match_evidence")
        assert verdict.tpm == IDENTITY

    def test_a_physical_pluton_tpm_attests(
        self,
        recorded: RecordedEnrollment,
        aik_ca: CertificateAuthority,
        aik_policy: Policy,
        aik_public: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    ) -> None:
        cert = build_aik_cert(aik_ca, aik_public, recorded.now, identity=PLUTON)
        evidence = tampered(
            recorded,
            aik_cert=cert,
            device_model="ThinkPad Z13 Gen 1",
            tpm_manufacturer=PLUTON.manufacturer,
            tpm_firmware=PLUTON.version,
        )
        verdict = judge(recorded, evidence, policy=aik_policy)
        assert verdict.status == AttestationStatus.ATTESTED, verdict.decision
        assert verdict.tpm == PLUTON

    @pytest.mark.parametrize("claimed", ["id:4D534654", "id:49465800"])
    def test_a_verified_hyper_v_vtpm_is_not_supported_whatever_is_claimed(
        self,
        recorded: RecordedEnrollment,
        aik_ca: CertificateAuthority,
        aik_policy: Policy,
        aik_public: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
        claimed: str,
    ) -> None:
        cert = build_aik_cert(aik_ca, aik_public, recorded.now, identity=HYPER_V_VTPM)
        evidence = tampered(recorded, aik_cert=cert, tpm_manufacturer=claimed)
        verdict = judge(recorded, evidence, policy=aik_policy)
        assert_refused(verdict, StatusDetail.FEATURE_NOT_SUPPORTED, "platform.verified_tpm")
        assert ("the client claimed" in verdict.decision) == (claimed != HYPER_V_VTPM.manufacturer)

    def test_a_pluton_in_a_hyper_v_guest_is_still_a_virtual_machine(
        self,
        recorded: RecordedEnrollment,
        aik_ca: CertificateAuthority,
        aik_policy: Policy,
        aik_public: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    ) -> None:
        cert = build_aik_cert(aik_ca, aik_public, recorded.now, identity=PLUTON)
        evidence = tampered(
            recorded,
            aik_cert=cert,
            device_manufacturer="Microsoft Corporation",
            device_model="Virtual Machine",
        )
        verdict = judge(recorded, evidence, policy=aik_policy)
        assert_refused(verdict, StatusDetail.FEATURE_NOT_SUPPORTED, "platform.physical")

    def test_which_platform_is_virtual_is_the_policys_data(self, recorded: RecordedEnrollment) -> None:
        """With a platform file that names no VM, a Hyper-V model is judged as any other device;
        with one that names ThinkPads, the recorded ThinkPad is a virtual machine."""
        hyper_v = tampered(
            recorded, device_manufacturer="Microsoft Corporation", device_model="Virtual Machine"
        )
        nothing_virtual = replace(recorded.policy, platforms=PlatformRules())
        assert judge(recorded, hyper_v, policy=nothing_virtual).status == AttestationStatus.ATTESTED
        thinkpads = PlatformRules(platforms=(VirtualPlatform("test", "a test", model="ThinkPad*"),))
        verdict = judge(recorded, policy=replace(recorded.policy, platforms=thinkpads))
        assert_refused(verdict, StatusDetail.FEATURE_NOT_SUPPORTED, "platform.physical")


# --- 11. the client's own failure ------------------------------------------------------


class TestClientErrors:
    @pytest.mark.parametrize(
        ("hresult", "detail"),
        [
            (0x80280921, StatusDetail.TPM_NOT_READY),  # TPM_E_LOCKOUT
            (0x8028400F, StatusDetail.TPM_NOT_AVAILABLE),  # TBS_E_TPM_NOT_FOUND
            (0x80290411, StatusDetail.TPM_NOT_AVAILABLE),  # a TPM 1.2
            (0x80094810, StatusDetail.TPM_NOT_TRUSTED),  # CERTSRV_E_INVALID_EK
            (0x8009000F, StatusDetail.MDM_KEY_ALREADY_IN_TPM),  # NTE_EXISTS
            (0x802800A2, StatusDetail.TPM_NOT_READY),  # TPM_E_BAD_AUTH: owner auth unknown
            (0x8028008E, StatusDetail.TPM_NOT_READY),  # TPM_E_AUTH_FAIL
            (0x80280085, StatusDetail.TPM_NOT_READY),  # TPM_E_HIERARCHY: hierarchy disabled
            (0x80280100, StatusDetail.TPM_NOT_READY),  # TPM_E_INITIALIZE: not started
            (0x80090029, StatusDetail.ENTRA_KEY_NOT_ATTESTED),  # NTE_NOT_SUPPORTED
            (0x80004005, StatusDetail.CLIENT_REQUEST_REJECTED),  # E_FAIL: anything else
        ],
        ids=lambda value: f"0x{value:08X}" if isinstance(value, int) else None,
    )
    def test_client_reported_failure_maps_to_detail(
        self, recorded: RecordedEnrollment, hresult: int, detail: StatusDetail
    ) -> None:
        evidence = tampered(recorded, client_status="Failure", client_hresult=hresult)
        assert_refused(judge(recorded, evidence), detail, "client.status")

    @pytest.mark.parametrize(
        ("rc", "hresult"),
        [
            (0x9A2, HResult.TPM_E_BAD_AUTH),  # BAD_AUTH in session 1
            (0x1A2, HResult.TPM_E_BAD_AUTH),  # BAD_AUTH for handle 1
            (0x185, HResult.TPM_E_HIERARCHY),  # HIERARCHY for handle 1
            (0x98E, HResult.TPM_E_AUTH_FAIL),
            (0x921, HResult.TPM_E_LOCKOUT),  # a warning: no position bits to strip
            (0x100, HResult.TPM_E_INITIALIZE),
        ],
        ids=hex,
    )
    def test_tpm_response_code_maps_to_one_hresult_whatever_the_position(self, rc: int, hresult: int) -> None:
        assert from_tpm_rc(rc) == hresult

    @pytest.mark.parametrize("hresult", [0x80072EFD, 0x80072EFE, 0x80072EE2], ids=hex)
    @pytest.mark.parametrize(
        ("drop", "detail"),
        [
            pytest.param(("aik_cert",), StatusDetail.AIK_CERT_NOT_PROVIDED, id="aikpub-without-cert"),
            pytest.param((), StatusDetail.CLIENT_REQUEST_REJECTED, id="with-aik-cert"),
            pytest.param(("aik_cert", "aik_pub"), StatusDetail.CLIENT_REQUEST_REJECTED, id="no-aik-items"),
        ],
    )
    def test_network_error_detail_depends_on_where_it_was_met(
        self, recorded: RecordedEnrollment, hresult: int, drop: tuple[str, ...], detail: StatusDetail
    ) -> None:
        # An AIKPub with no AIKCert means the AIK CA was the service out of reach;
        # with a certificate in hand, it was the MDM service.
        changes: dict[str, object] = {name: None for name in drop}
        evidence = tampered(recorded, client_status="Failure", client_hresult=hresult, **changes)
        assert_refused(judge(recorded, evidence), detail, "client.status")

    @pytest.mark.parametrize(
        ("status", "hresult"),
        [
            pytest.param("Failure", None, id="failure-without-hresult"),
            pytest.param("Success", HResult.TPM_E_LOCKOUT, id="success-with-error-hresult"),
        ],
    )
    def test_inconsistent_client_report_is_a_failure(
        self, recorded: RecordedEnrollment, status: str, hresult: int | None
    ) -> None:
        verdict = judge(recorded, tampered(recorded, client_status=status, client_hresult=hresult))
        assert verdict.status == AttestationStatus.NOT_ATTESTED, verdict.decision
        assert verdict.decision.startswith("client.status:")


# --- 12. not started -------------------------------------------------------------------


class TestNotStarted:
    def test_no_attestation_items_is_not_started(self, recorded: RecordedEnrollment) -> None:
        evidence = tampered(recorded, **dict.fromkeys(ATTESTATION_FIELDS))
        verdict = judge(recorded, evidence)
        assert_refused(
            verdict, StatusDetail.NONE, "attestation.attempted", status=AttestationStatus.NOT_STARTED
        )

    def test_old_build_without_items_is_not_started_not_unsupported(
        self, recorded: RecordedEnrollment
    ) -> None:
        evidence = tampered(recorded, os_version="10.0.19045.3000", **dict.fromkeys(ATTESTATION_FIELDS))
        assert judge(recorded, evidence).status == AttestationStatus.NOT_STARTED


# --- 13. malformed bytes ---------------------------------------------------------------


MALFORMED = [
    pytest.param("aik_claim", b"\x00\x01garbage", "mdm.attest_parses", id="aik_claim-garbage"),
    pytest.param("aik_pub", b"", "aik_pub.parses", id="aik_pub-empty"),
    pytest.param("aik_cert", b"notder", "aik_cert.parses", id="aik_cert-notder"),
    pytest.param("aad_claim", b"", "entra.parses", id="aad_claim-empty"),
    pytest.param("aad_pub", b"\x00", "entra.parses", id="aad_pub-one-byte"),
    pytest.param("mdm_pub", b"\xff" * 300, "mdm.parses", id="mdm_pub-ff"),
]


class TestMalformed:
    @pytest.mark.parametrize(("field", "value", "check"), MALFORMED)
    def test_garbage_is_rejected_without_raising(
        self, recorded: RecordedEnrollment, field: str, value: bytes, check: str
    ) -> None:
        verdict = judge(recorded, tampered(recorded, **{field: value}))
        assert_refused(verdict, StatusDetail.CLIENT_REQUEST_REJECTED, check)

    @pytest.mark.parametrize("field", BINARY_FIELDS)
    @pytest.mark.parametrize(
        "cut",
        [
            pytest.param(lambda b: b[:-1], id="truncated"),
            pytest.param(lambda b: b + b"\x00", id="trailing-byte"),
            pytest.param(lambda b: b[: len(b) // 2], id="half"),
        ],
    )
    def test_truncated_or_extended_field_is_rejected(
        self, recorded: RecordedEnrollment, field: str, cut: Callable[[bytes], bytes]
    ) -> None:
        blob = getattr(recorded.evidence, field)
        assert blob is not None
        verdict = judge(recorded, tampered(recorded, **{field: cut(blob)}))
        assert verdict.status == AttestationStatus.NOT_ATTESTED, verdict.decision
        assert verdict.detail == StatusDetail.CLIENT_REQUEST_REJECTED, verdict.decision
        assert failed_checks(verdict), verdict.checks


# --- the documented decision order: first match wins ----------------------------------


class TestDecisionOrder:
    def test_virtual_machine_beats_the_clients_tpm_error(self, recorded: RecordedEnrollment) -> None:
        evidence = tampered(
            recorded,
            device_manufacturer="Microsoft Corporation",
            device_model="Virtual Machine",
            client_status="Failure",
            client_hresult=0x80280921,
        )
        verdict = judge(recorded, evidence)
        assert_refused(verdict, StatusDetail.FEATURE_NOT_SUPPORTED, "platform.physical")

    def test_authentication_beats_the_platform(self, recorded: RecordedEnrollment) -> None:
        evidence = tampered(
            recorded, token=None, device_manufacturer="Microsoft Corporation", device_model="Virtual Machine"
        )
        assert_refused(judge(recorded, evidence), StatusDetail.AUTHENTICATION_FAILED, "token.present")

    def test_missing_device_identity_beats_the_platform(
        self, recorded: RecordedEnrollment, idp: IdentityProvider
    ) -> None:
        evidence = tampered(
            recorded,
            token=idp.token(drop=(DEVICE_ID_CLAIM,)),
            device_manufacturer="Microsoft Corporation",
            device_model="Virtual Machine",
        )
        verdict = judge(recorded, evidence, policy=idp.policy)
        assert_refused(verdict, StatusDetail.TOKEN_MISSING_DEVICE_ID, "token.device_id")

    def test_client_error_beats_missing_parameters(self, recorded: RecordedEnrollment) -> None:
        evidence = tampered(
            recorded,
            client_status="Failure",
            client_hresult=0x80280921,
            aik_cert=None,
            aik_pub=None,
            aik_claim=None,
        )
        assert_refused(judge(recorded, evidence), StatusDetail.TPM_NOT_READY, "client.status")

    def test_existing_mdm_key_beats_the_missing_aik_certificate(self, recorded: RecordedEnrollment) -> None:
        # Re-enrollment with the AIK CA out of reach: the client reports the key it found.
        evidence = tampered(recorded, client_status="Failure", client_hresult=0x8009000F, aik_cert=None)
        assert_refused(judge(recorded, evidence), StatusDetail.MDM_KEY_ALREADY_IN_TPM, "client.status")

    def test_missing_aik_certificate_beats_a_bad_signature(self, recorded: RecordedEnrollment) -> None:
        claim = recorded.evidence.aik_claim
        assert claim is not None
        evidence = tampered(recorded, aik_cert=None, aik_claim=flip(claim, len(claim) - 1))
        verdict = judge(recorded, evidence)
        assert_refused(verdict, StatusDetail.AIK_CERT_NOT_PROVIDED, "params.aik_cert")

    def test_firmware_advisory_beats_a_bad_mdm_claim(self, recorded: RecordedEnrollment) -> None:
        claim = recorded.evidence.aik_claim
        assert claim is not None
        version = parse_version(IDENTITY.version)
        advisory = FirmwareAdvisory("test advisory", IDENTITY.manufacturer, (VersionRange(version, version),))
        policy = replace(recorded.policy, firmware_advisories=[advisory])
        evidence = tampered(recorded, aik_claim=flip(claim, len(claim) - 1))
        assert_refused(
            judge(recorded, evidence, policy=policy), StatusDetail.TPM_NOT_AVAILABLE, "tpm.firmware"
        )

    def test_bad_mdm_claim_beats_a_missing_entra_claim(self, recorded: RecordedEnrollment) -> None:
        claim = recorded.evidence.aik_claim
        assert claim is not None
        evidence = tampered(recorded, aik_claim=flip(claim, len(claim) - 1), aad_claim=None)
        verdict = judge(recorded, evidence)
        assert_refused(verdict, StatusDetail.CLIENT_REQUEST_REJECTED, "mdm.signature")

    def test_missing_entra_claim_beats_a_token_device_mismatch(self, recorded: RecordedEnrollment) -> None:
        other_key = ec.generate_private_key(ec.SECP256R1()).public_key()
        verdict = judge(
            recorded,
            tampered(recorded, aad_claim=None),
            registered={recorded.device_id: spki(other_key)},
        )
        assert_refused(verdict, StatusDetail.ENTRA_KEY_NOT_ATTESTED, "entra.claim")


# --- known bugs: evidence that makes evaluate raise instead of refusing ---------------

RSA_ENCRYPTION_OID = bytes.fromhex("06092a864886f70d010101")  # 1.2.840.113549.1.1.1
UNKNOWN_KEY_OID = bytes.fromhex("06092a864886f70d010109")  # 1.2.840.113549.1.1.9
X509_V3 = bytes.fromhex("a003020102")  # [0] { INTEGER 2 }
ISSUER_CN = b"\x0c\x10Reference AIK CA"  # UTF8String, the reference AIK CA's common name


def _one_replacement(blob: bytes, old: bytes, new: bytes) -> bytes:
    assert blob.count(old) == 1, f"{old.hex()} occurs {blob.count(old)} times"
    return blob.replace(old, new)


def _cert_with_malformed_eku(recorded: RecordedEnrollment, aik_ca: CertificateAuthority) -> bytes:
    public_key = parse_public(recorded.evidence.aik_pub or b"").crypto_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(aik_ca.certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(recorded.now - dt.timedelta(minutes=5))
        .not_valid_after(recorded.now + dt.timedelta(days=1))
        .add_extension(x509.UnrecognizedExtension(x509.ExtendedKeyUsage.oid, b"\x04\x03not"), critical=False)
        .sign(aik_ca.key, hashes.SHA256())
    )
    return certificate_der(certificate)


class TestMalformedInputRefusedWithoutCrash:
    """Malformed certificates, OS versions and token times are refused, never raised on."""

    def test_aik_cert_with_a_malformed_extension_is_rejected(
        self, recorded: RecordedEnrollment, aik_ca: CertificateAuthority
    ) -> None:
        cert = _cert_with_malformed_eku(recorded, aik_ca)
        verdict = judge(recorded, tampered(recorded, aik_cert=cert))
        assert verdict.status == AttestationStatus.NOT_ATTESTED
        assert verdict.detail == StatusDetail.CLIENT_REQUEST_REJECTED

    def test_aik_cert_with_an_unknown_key_algorithm_is_rejected(self, recorded: RecordedEnrollment) -> None:
        cert = _one_replacement(recorded.evidence.aik_cert or b"", RSA_ENCRYPTION_OID, UNKNOWN_KEY_OID)
        verdict = judge(recorded, tampered(recorded, aik_cert=cert))
        assert verdict.status == AttestationStatus.NOT_ATTESTED
        assert verdict.detail == StatusDetail.CLIENT_REQUEST_REJECTED

    def test_aik_cert_with_an_invalid_version_is_rejected(self, recorded: RecordedEnrollment) -> None:
        cert = _one_replacement(recorded.evidence.aik_cert or b"", X509_V3, bytes.fromhex("a003020107"))
        verdict = judge(recorded, tampered(recorded, aik_cert=cert))
        assert verdict.status == AttestationStatus.NOT_ATTESTED
        assert verdict.detail == StatusDetail.CLIENT_REQUEST_REJECTED

    def test_aik_cert_with_a_malformed_issuer_name_is_rejected(self, recorded: RecordedEnrollment) -> None:
        # The issuer's CN value re-tagged from UTF8String to SEQUENCE.
        cert = _one_replacement(recorded.evidence.aik_cert or b"", ISSUER_CN, b"\x30" + ISSUER_CN[1:])
        verdict = judge(recorded, tampered(recorded, aik_cert=cert))
        assert verdict.status == AttestationStatus.NOT_ATTESTED
        assert verdict.detail == StatusDetail.CLIENT_REQUEST_REJECTED

    def test_os_version_with_a_superscript_digit_is_not_supported(self, recorded: RecordedEnrollment) -> None:
        verdict = judge(recorded, tampered(recorded, os_version="10.0.22631.²"))
        assert_refused(verdict, StatusDetail.FEATURE_NOT_SUPPORTED, "platform.os_build")

    def test_signed_token_with_a_non_numeric_expiry_fails_authentication(
        self, recorded: RecordedEnrollment, idp: IdentityProvider
    ) -> None:
        token = idp.token({"exp": "tomorrow"})
        verdict = judge(recorded, tampered(recorded, token=token), policy=idp.policy)
        assert verdict.detail == StatusDetail.AUTHENTICATION_FAILED
