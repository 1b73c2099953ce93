"""Certificate authorities and the TCG certificate profiles they issue.

The harness's manufacturer CAs issue EK certificates; the reference server's
AIK CA issues AIK certificates. Both follow the TCG credential profiles:
empty subject, critical SAN with the TPM's identity, the profile's EKU, CA=false.

The manufacturer CAs live in a directory (create_vendor_cas) that both the
server, which trusts their roots, and the fleet's factories, which sign EK
certificates with them, read.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ..catalog import ODM_CA, VENDORS, unlisted_ca_key
from ._tcg import OID_AIK_CERTIFICATE, OID_EK_CERTIFICATE, TPMIdentity, tpm_san

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
CA_LIFETIME = dt.timedelta(days=3650)
LEAF_LIFETIME = dt.timedelta(days=3650)


def write_private(path: Path, data: bytes) -> None:
    """Write a secret (a private key) readable by this user only, never briefly wider."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    # An existing file keeps its mode through O_CREAT: narrow it too.
    path.chmod(0o600)


def _key_usage(
    *,
    digital_signature: bool = False,
    key_encipherment: bool = False,
    key_agreement: bool = False,
    key_cert_sign: bool = False,
) -> x509.KeyUsage:
    """A keyUsage with only the given bits; a CA's keyCertSign comes with cRLSign."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=key_agreement,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _ca_subject(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


@dataclass(frozen=True)
class CertificateAuthority:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def name(self) -> str:
        attrs = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(attrs[0].value) if attrs else self.certificate.subject.rfc4514_string()

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @classmethod
    def create(cls, common_name: str, organization: str, *, now: dt.datetime) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _ca_subject(common_name, organization)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(key_cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key=key, certificate=certificate)

    def save(self, directory: Path, stem: str) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key_pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_private(directory / f"{stem}.key.pem", key_pem)
        (directory / f"{stem}.cert.pem").write_bytes(
            self.certificate.public_bytes(serialization.Encoding.PEM)
        )

    @classmethod
    def load(cls, directory: Path, stem: str) -> CertificateAuthority:
        key = serialization.load_pem_private_key((directory / f"{stem}.key.pem").read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{directory / stem}: CA key is not an EC key")
        certificate = x509.load_pem_x509_certificate((directory / f"{stem}.cert.pem").read_bytes())
        return cls(key=key, certificate=certificate)

    def issue_intermediate(
        self,
        common_name: str,
        organization: str,
        *,
        now: dt.datetime,
        ca: bool = True,
        key_cert_sign: bool = True,
        path_length: int | None = 0,
    ) -> CertificateAuthority:
        """A CA below this one (a regional AIK CA under a root); `ca`/`key_cert_sign` off make
        the broken intermediates a verifier must refuse."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _ca_subject(common_name, organization)
        usage = _key_usage(digital_signature=True, key_cert_sign=key_cert_sign)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + CA_LIFETIME)
            .add_extension(
                x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True
            )
            .add_extension(usage, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        return CertificateAuthority(key=key, certificate=certificate)

    def _leaf(
        self,
        public_key: PublicKey,
        identity: TPMIdentity,
        *,
        now: dt.datetime,
        one_rdn: bool = True,
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + LEAF_LIFETIME)
            .add_extension(tpm_san(identity, one_rdn=one_rdn), critical=True)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )

    def issue_ek_certificate(
        self, ek_public: PublicKey, identity: TPMIdentity, *, now: dt.datetime, one_rdn: bool = True
    ) -> x509.Certificate:
        """An EK certificate per the TCG EK Credential Profile for TPM 2.0."""
        builder = self._leaf(ek_public, identity, now=now, one_rdn=one_rdn)
        is_rsa = isinstance(ek_public, rsa.RSAPublicKey)
        builder = builder.add_extension(
            _key_usage(key_encipherment=is_rsa, key_agreement=not is_rsa), critical=True
        ).add_extension(x509.ExtendedKeyUsage([OID_EK_CERTIFICATE]), critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def issue_aik_certificate(
        self, aik_public: PublicKey, identity: TPMIdentity, *, now: dt.datetime
    ) -> x509.Certificate:
        """An AIK certificate per the TCG profile: EKU 2.23.133.8.3, CA=false, empty subject."""
        builder = (
            self._leaf(aik_public, identity, now=now)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([OID_AIK_CERTIFICATE]), critical=False)
        )
        return builder.sign(self.key, hashes.SHA256())


def certificate_der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


# --- the harness's manufacturer CAs, one per vendor ----------------------------------


def _vendor_ca(
    directory: Path, key: str, name: str, organization: str, now: dt.datetime
) -> CertificateAuthority:
    if (directory / f"{key}.cert.pem").exists():
        return CertificateAuthority.load(directory, key)
    ca = CertificateAuthority.create(name, organization, now=now)
    ca.save(directory, key)
    return ca


def create_vendor_cas(directory: Path, *, now: dt.datetime) -> list[x509.Certificate]:
    """Create (or reuse) the manufacturer CAs in `directory`; returns the roots an AIK CA should trust.

    Each vendor also gets a second CA that is not among the roots: a newer EK CA
    of the same vendor that the AIK CA has not imported yet.
    """
    roots = []
    makers = [(v.key, v.ca_name, v.organization) for v in VENDORS.values()] + [ODM_CA]
    for key, name, organization in makers:
        roots.append(_vendor_ca(directory, key, name, organization, now).certificate)
        _vendor_ca(directory, unlisted_ca_key(key), f"{name} (2026)", organization, now)
    return roots


@lru_cache(maxsize=64)
def vendor_ca(directory: Path, vendor: str) -> CertificateAuthority:
    """One manufacturer CA of `directory` by its key (a vendor's, or its unlisted twin's)."""
    return CertificateAuthority.load(directory, vendor)
