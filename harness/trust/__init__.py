"""Trust as data: AIK and EK roots and intermediates, token keys, the TCG vendor registry
and firmware advisories, loaded from files a user can edit (see _store for the layout)."""

from ._advisories import default_advisories, load_advisories, parse_advisories
from ._bundles import BundleError, BundleVerdict, trust_for, trust_from_options, verify_bundle
from ._platforms import default_platforms, load_platforms, parse_platforms
from ._store import (
    DEFAULT_TOKEN_AUDIENCE,
    DEFAULT_TOKEN_ISSUER,
    MANIFEST,
    TrustStore,
    load_trust,
)

__all__ = [
    "DEFAULT_TOKEN_AUDIENCE",
    "DEFAULT_TOKEN_ISSUER",
    "MANIFEST",
    "BundleError",
    "BundleVerdict",
    "TrustStore",
    "default_advisories",
    "default_platforms",
    "load_advisories",
    "load_platforms",
    "load_trust",
    "parse_advisories",
    "parse_platforms",
    "trust_for",
    "trust_from_options",
    "verify_bundle",
]
