"""The harness's manufacturer CAs, one per vendor, kept in a directory workers can read."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path

from cryptography import x509

from ..catalog import VENDORS
from ..pki import CertificateAuthority


def create_vendor_cas(directory: Path, *, now: dt.datetime) -> list[x509.Certificate]:
    """Create (or reuse) a CA per catalogue vendor; returns their root certificates."""
    roots = []
    for vendor in VENDORS.values():
        if (directory / f"{vendor.key}.cert.pem").exists():
            ca = CertificateAuthority.load(directory, vendor.key)
        else:
            ca = CertificateAuthority.create(vendor.ca_name, vendor.organization, now=now)
            ca.save(directory, vendor.key)
        roots.append(ca.certificate)
    return roots


@lru_cache(maxsize=64)
def vendor_ca(directory: Path, vendor: str) -> CertificateAuthority:
    return CertificateAuthority.load(directory, vendor)
