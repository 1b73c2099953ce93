"""One rule set for TPM structures: what the AIK CA refuses, the evaluator refuses too, and a
structure no TPM can hold is refused at the AIK CA rather than challenged."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from tpm2_pytss import TPM2_ALG, TPM2B_PUBLIC, TPMA_OBJECT

from harness.pki import CertificateAuthority, TPMIdentity
from harness.server import ServerConfig
from harness.verifier import check_ek_structure, check_signing_key_structure, parse_public
from tests.serving import served

from .test_server_api import assert_error

BORN_IN_TPM = TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.FIXEDPARENT | TPMA_OBJECT.SENSITIVEDATAORIGIN
EK = BORN_IN_TPM | TPMA_OBJECT.RESTRICTED | TPMA_OBJECT.DECRYPT
AIK = BORN_IN_TPM | TPMA_OBJECT.RESTRICTED | TPMA_OBJECT.SIGN_ENCRYPT
SM3_256, SM4 = 0x0012, 0x0013
EK_KEY = rsa.generate_private_key(65537, 2048)
AIK_KEY = rsa.generate_private_key(65537, 2048)


def public(
    key: rsa.RSAPrivateKey,
    attributes: TPMA_OBJECT,
    *,
    name_alg: int = int(TPM2_ALG.SHA256),
    symmetric: int = int(TPM2_ALG.NULL),
    scheme: int = int(TPM2_ALG.RSASSA),
) -> bytes:
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    blob = TPM2B_PUBLIC.from_pem(pem, objectAttributes=attributes)
    area = blob.publicArea
    area.nameAlg = name_alg
    area.parameters.rsaDetail.symmetric.algorithm = symmetric
    if symmetric != int(TPM2_ALG.NULL):
        area.parameters.rsaDetail.symmetric.keyBits.aes = 128
        area.parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG.CFB
    area.parameters.rsaDetail.scheme.scheme = scheme
    if scheme != int(TPM2_ALG.NULL):
        area.parameters.rsaDetail.scheme.details.anySig.hashAlg = TPM2_ALG.SHA256
    return bytes(blob.marshal())


def good_ek() -> bytes:
    return public(EK_KEY, EK, symmetric=int(TPM2_ALG.AES), scheme=int(TPM2_ALG.NULL))


CRAFTED_AIKS = {
    "aik-name-alg-sm3": public(AIK_KEY, AIK, name_alg=SM3_256),
    "aik-aes-symmetric": public(AIK_KEY, AIK, symmetric=int(TPM2_ALG.AES)),
    "aik-null-scheme": public(AIK_KEY, AIK, scheme=int(TPM2_ALG.NULL)),
}
CRAFTED_EKS = {
    "ek-sm4-symmetric": public(EK_KEY, EK, symmetric=SM4, scheme=int(TPM2_ALG.NULL)),
    "ek-null-symmetric": public(EK_KEY, EK, scheme=int(TPM2_ALG.NULL)),
    "ek-name-alg-sm3": public(
        EK_KEY, EK, name_alg=SM3_256, symmetric=int(TPM2_ALG.AES), scheme=int(TPM2_ALG.NULL)
    ),
    "ek-that-signs": public(EK_KEY, EK | TPMA_OBJECT.SIGN_ENCRYPT, symmetric=int(TPM2_ALG.AES)),
}


def test_the_keys_a_tpm_makes_pass_the_rules() -> None:
    assert check_ek_structure("ek", parse_public(good_ek())).passed
    assert check_signing_key_structure("aik", parse_public(public(AIK_KEY, AIK)), restricted=True).passed
    mdm = public(AIK_KEY, BORN_IN_TPM | TPMA_OBJECT.SIGN_ENCRYPT, scheme=int(TPM2_ALG.NULL))
    assert check_signing_key_structure("mdm", parse_public(mdm), restricted=False).passed


@pytest.mark.parametrize("name", sorted(CRAFTED_AIKS))
def test_a_crafted_aik_breaks_the_rule(name: str) -> None:
    check = check_signing_key_structure(
        "aik_pub.structure", parse_public(CRAFTED_AIKS[name]), restricted=True
    )
    assert not check.passed and check.detail


@pytest.mark.parametrize("name", sorted(CRAFTED_EKS))
def test_a_crafted_ek_breaks_the_rule(name: str) -> None:
    check = check_ek_structure("ek_pub.structure", parse_public(CRAFTED_EKS[name]))
    assert not check.passed and check.detail


@pytest.fixture(scope="module")
def vendor() -> CertificateAuthority:
    return CertificateAuthority.create("Vendor", "Vendor", now=dt.datetime.now(dt.UTC))


def challenge(tmp_path: Path, vendor: CertificateAuthority, ek_pub: bytes, aik_pub: bytes) -> object:
    ek_cert = vendor.issue_ek_certificate(
        EK_KEY.public_key(), TPMIdentity("id:49465800", "SLB9672", "id:001A000D"), now=dt.datetime.now(dt.UTC)
    )
    body = {
        "ekCert": base64.b64encode(ek_cert.public_bytes(serialization.Encoding.DER)).decode(),
        "ekPub": base64.b64encode(ek_pub).decode(),
        "aikPub": base64.b64encode(aik_pub).decode(),
    }
    with served(ServerConfig(data_dir=tmp_path, manufacturer_roots=[vendor.certificate])) as http:
        return http.post("/aik/challenge", json=body)


def test_the_aik_ca_challenges_a_well_formed_pair(tmp_path: Path, vendor: CertificateAuthority) -> None:
    response = challenge(tmp_path, vendor, good_ek(), public(AIK_KEY, AIK))
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(CRAFTED_AIKS))
def test_the_aik_ca_refuses_a_crafted_aik(tmp_path: Path, vendor: CertificateAuthority, name: str) -> None:
    response = challenge(tmp_path, vendor, good_ek(), CRAFTED_AIKS[name])
    assert_error(response, 400, error="malformed_key", names="aik_pub.structure")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(CRAFTED_EKS))
def test_the_aik_ca_refuses_a_crafted_ek(tmp_path: Path, vendor: CertificateAuthority, name: str) -> None:
    response = challenge(tmp_path, vendor, CRAFTED_EKS[name], public(AIK_KEY, AIK))
    assert_error(response, 400, error="malformed_key", names="ek_pub.structure")  # type: ignore[arg-type]
