"""The trust store: what the server, `harness run` and `harness verify` believe, as files.

A directory (or a YAML manifest file) a user can edit:

    trust.yaml           optional manifest (token issuer and audience, advisories, platforms,
                         vendors)
    aik-roots/           AIK CA roots, e.g. Microsoft TPM Root Certificate Authority 2014
    aik-intermediates/   AIK CA intermediates, e.g. Microsoft's regional AIK CAs
    ek-roots/            TPM vendors' EK roots
    ek-intermediates/    TPM vendors' EK intermediates
    ek-bundle/           vendors' EK CAs laid out like Microsoft's TrustedTpm bundle:
                         <Vendor>/RootCA/* are roots, <Vendor>/IntermediateCA/* intermediates
    token-keys/          identity-provider public keys, one PEM per key, named <kid>.pem

Certificate files are PEM (one or more certificates) or DER. A manifest file may list the
same folders or files under aik_roots, aik_intermediates, ek_roots, ek_intermediates and
token_keys, relative to itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .._yamlfile import YamlDocument, parse_mapping, read_text
from ..errors import TrustError
from ..pki import TCG_VENDORS, vendor_hex
from ..verifier import FirmwareAdvisory, PlatformRules, Policy
from ._advisories import default_advisories, load_advisories
from ._platforms import default_platforms, load_platforms, platforms_yaml

DEFAULT_TOKEN_ISSUER = "urn:enrollment-harness:idp"
DEFAULT_TOKEN_AUDIENCE = "urn:enrollment-harness:mdm"
CERTIFICATE_FOLDERS = ("aik-roots", "aik-intermediates", "ek-roots", "ek-intermediates")
MANIFEST = "trust.yaml"
PLATFORMS = "platforms.yaml"
_CERT_SUFFIXES = (".pem", ".crt", ".cer", ".der")
_MANIFEST_FIELDS = {
    "token_issuer",
    "token_audience",
    "advisories",
    "platforms",
    "vendors",
    "aik_roots",
    "aik_intermediates",
    "ek_roots",
    "ek_intermediates",
    "ek_bundle",
    "token_keys",
}

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True)
class TrustStore:
    """Trust anchors and facts, loaded from files; the shipped defaults when empty."""

    aik_roots: tuple[x509.Certificate, ...] = ()
    aik_intermediates: tuple[x509.Certificate, ...] = ()
    ek_roots: tuple[x509.Certificate, ...] = ()
    ek_intermediates: tuple[x509.Certificate, ...] = ()
    token_keys: Mapping[str, PublicKey] = field(default_factory=dict)
    token_issuer: str = DEFAULT_TOKEN_ISSUER
    token_audience: str = DEFAULT_TOKEN_AUDIENCE
    vendors: Mapping[str, str] = field(default_factory=lambda: dict(TCG_VENDORS))
    advisories: tuple[FirmwareAdvisory, ...] = field(default_factory=default_advisories)
    platforms: PlatformRules = field(default_factory=default_platforms)
    source: str = "shipped defaults"

    def policy(
        self,
        *,
        own_aik_roots: tuple[x509.Certificate, ...] = (),
        own_token_keys: Mapping[str, Any] | None = None,
        advisories: tuple[FirmwareAdvisory, ...] | None = None,
    ) -> Policy:
        """The evaluator's policy: this store, plus a server's own AIK CA and token key."""
        return Policy(
            aik_roots=[*own_aik_roots, *self.aik_roots],
            aik_intermediates=list(self.aik_intermediates),
            token_keys={**dict(self.token_keys), **dict(own_token_keys or {})},
            token_issuer=self.token_issuer,
            token_audience=self.token_audience,
            firmware_advisories=self.advisories if advisories is None else advisories,
            platforms=self.platforms,
        )

    def write(self, directory: Path) -> None:
        """Write the certificates and token keys in the directory layout (the manifest too)."""
        folders = {
            "aik-roots": self.aik_roots,
            "aik-intermediates": self.aik_intermediates,
            "ek-roots": self.ek_roots,
            "ek-intermediates": self.ek_intermediates,
        }
        for folder, certificates in folders.items():
            if not certificates:
                continue
            (directory / folder).mkdir(parents=True, exist_ok=True)
            for certificate in certificates:
                pem = certificate.public_bytes(serialization.Encoding.PEM)
                (directory / folder / f"{certificate.serial_number:x}.pem").write_bytes(pem)
        if self.token_keys:
            (directory / "token-keys").mkdir(parents=True, exist_ok=True)
            for kid, key in self.token_keys.items():
                pem = key.public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                (directory / "token-keys" / f"{kid}.pem").write_bytes(pem)
        (directory / PLATFORMS).write_text(platforms_yaml(self.platforms), encoding="utf-8")
        manifest = (
            f"token_issuer: {self.token_issuer}\ntoken_audience: {self.token_audience}\n"
            f"platforms: {PLATFORMS}\n"
        )
        (directory / MANIFEST).write_text(manifest, encoding="utf-8")


def load_trust(path: str | Path, *, advisories: str | Path | None = None) -> TrustStore:
    """A trust store from a directory or a YAML manifest; `advisories` replaces its list."""
    root = Path(path)
    if root.is_dir():
        manifest_path = root / MANIFEST
        doc = _manifest(manifest_path) if manifest_path.exists() else None
        base = root
    elif root.is_file():
        doc, base = _manifest(root), root.parent
    else:
        raise TrustError(str(root), None, "", "no such trust store (a directory or a YAML file)")
    data = doc.data if doc else {}

    def entries(key: str, folder: str) -> list[Path]:
        # Listed in the manifest, else the conventional folder of a directory store.
        if doc is not None and key in data:
            return _paths(doc, key, base)
        return [base / folder] if root.is_dir() else []

    lists = {
        folder.replace("-", "_"): tuple(
            c for entry in entries(folder.replace("-", "_"), folder) for c in _certificates(entry)
        )
        for folder in CERTIFICATE_FOLDERS
    }
    for entry in entries("ek_bundle", "ek-bundle"):
        roots, intermediates = _vendor_bundle(entry)
        lists["ek_roots"] += roots
        lists["ek_intermediates"] += intermediates
    token_keys = {
        kid: key for entry in entries("token_keys", "token-keys") for kid, key in _token_keys(entry).items()
    }
    chosen = (
        load_advisories(advisories)
        if advisories is not None
        else load_advisories(base / str(data["advisories"]))
        if "advisories" in data
        else default_advisories()
    )
    platforms = load_platforms(base / str(data["platforms"])) if "platforms" in data else default_platforms()
    return TrustStore(
        aik_roots=lists["aik_roots"],
        aik_intermediates=lists["aik_intermediates"],
        ek_roots=lists["ek_roots"],
        ek_intermediates=lists["ek_intermediates"],
        token_keys=token_keys,
        token_issuer=str(data.get("token_issuer", DEFAULT_TOKEN_ISSUER)),
        token_audience=str(data.get("token_audience", DEFAULT_TOKEN_AUDIENCE)),
        vendors=_vendors(doc) if doc and "vendors" in data else dict(TCG_VENDORS),
        advisories=chosen,
        platforms=platforms,
        source=str(root),
    )


def _manifest(path: Path) -> YamlDocument:
    doc = parse_mapping(read_text(path, TrustError), str(path), TrustError, "a trust manifest is a mapping")
    unknown = sorted(set(doc.data) - _MANIFEST_FIELDS)
    if unknown:
        raise doc.error((unknown[0],), "unknown field")
    return doc


def _paths(doc: YamlDocument, key: str, base: Path) -> list[Path]:
    value = doc.data[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise doc.error((key,), "must be a list of files or folders")
    paths = [base / v for v in value]
    for index, entry in enumerate(paths):
        if not entry.exists():
            raise doc.error((key, index), f"'{value[index]}' does not exist")
    return paths


def _files(entry: Path, suffixes: tuple[str, ...]) -> list[Path]:
    if entry.is_dir():
        return sorted(p for p in entry.iterdir() if p.suffix.lower() in suffixes)
    return [entry] if entry.is_file() else []


def _certificates(entry: Path) -> list[x509.Certificate]:
    found: list[x509.Certificate] = []
    for file in _files(entry, _CERT_SUFFIXES):
        data = file.read_bytes()
        try:
            if b"-----BEGIN CERTIFICATE-----" in data:
                found.extend(x509.load_pem_x509_certificates(data))
            else:
                found.append(x509.load_der_x509_certificate(data))
        except ValueError as exc:
            raise TrustError(str(file), None, "", f"not a PEM or DER certificate: {exc}") from exc
    return found


def _vendor_bundle(entry: Path) -> tuple[tuple[x509.Certificate, ...], tuple[x509.Certificate, ...]]:
    """Microsoft's published TPM root and intermediate bundle, unpacked: one folder per vendor."""
    roots: list[x509.Certificate] = []
    intermediates: list[x509.Certificate] = []
    vendors = sorted(p for p in entry.iterdir() if p.is_dir()) if entry.is_dir() else []
    for vendor in vendors:
        for folder in sorted(p for p in vendor.iterdir() if p.is_dir()):
            if folder.name.lower() == "rootca":
                roots.extend(_certificates(folder))
            elif folder.name.lower() == "intermediateca":
                intermediates.extend(_certificates(folder))
    return tuple(roots), tuple(intermediates)


def _token_keys(entry: Path) -> dict[str, PublicKey]:
    keys: dict[str, PublicKey] = {}
    for file in _files(entry, (".pem",)):
        try:
            key = serialization.load_pem_public_key(file.read_bytes())
        except ValueError as exc:
            raise TrustError(str(file), None, "", f"not a PEM public key: {exc}") from exc
        if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
            raise TrustError(str(file), None, "", "token keys are RSA or ECC public keys")
        keys[file.stem] = key
    return keys


def _vendors(doc: YamlDocument) -> dict[str, str]:
    value = doc.data["vendors"]
    if not isinstance(value, dict):
        raise doc.error(("vendors",), "must map TCG vendor ids to names")
    vendors: dict[str, str] = {}
    for vendor_id, name in value.items():
        try:
            vendors[vendor_hex(str(vendor_id))] = str(name)
        except ValueError as exc:
            raise doc.error(("vendors", str(vendor_id)), str(exc)) from exc
    return vendors
