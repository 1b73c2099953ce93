"""The harness's manufacturer CAs, one per vendor, kept in a directory workers can read."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path

from cryptography import x509

from ..catalog import ODM_CA, VENDORS, unlisted_ca_key
from ..pki import CertificateAuthority


def _ca(directory: Path, key: str, name: str, organization: str, now: dt.datetime) -> CertificateAuthority:
    if (directory / f"{key}.cert.pem").exists():
        return CertificateAuthority.load(directory, key)
    ca = CertificateAuthority.create(name, organization, now=now)
    ca.save(directory, key)
    return ca


def create_vendor_cas(directory: Path, *, now: dt.datetime) -> list[x509.Certificate]:
    """Create (or reuse) the manufacturer CAs; returns the roots an AIK CA should trust.

    Each vendor also gets a second CA that is not among the roots: a newer EK CA
    of the same vendor that the AIK CA has not imported yet.
    """
    roots = []
    makers = [(v.key, v.ca_name, v.organization) for v in VENDORS.values()] + [ODM_CA]
    for key, name, organization in makers:
        roots.append(_ca(directory, key, name, organization, now).certificate)
        _ca(directory, unlisted_ca_key(key), f"{name} (2026)", organization, now)
    return roots


@lru_cache(maxsize=64)
def vendor_ca(directory: Path, vendor: str) -> CertificateAuthority:
    return CertificateAuthority.load(directory, vendor)
