"""Firmware advisories: which TPM firmware has a published flaw, matched numerically.

Versions are tuples of integers, never strings: '4.43' is above '4.33' and '133.32'
is above '7.61', which a string prefix cannot tell. The advisory data lives in the
trust store (a YAML file a user can edit); this module only matches against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..pki import TPMIdentity

Version = tuple[int, ...]


def parse_version(text: str) -> Version:
    """'4.43' -> (4, 43); '11.8.65' -> (11, 8, 65); 'id:0004002B' -> (4, 43).

    The 'id:' form is the tpmVersion attribute of EK and AIK certificates: the
    firmware's major and minor version, 16 bits each.
    """
    value = text.strip()
    if value.lower().startswith("id:"):
        digits = value[3:]
        if len(digits) != 8 or any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise ValueError(f"version '{text}' is not id: and 8 hex digits")
        number = int(digits, 16)
        return (number >> 16, number & 0xFFFF)
    parts = value.split(".")
    if not parts or not all(p.isdigit() for p in parts):
        raise ValueError(f"version '{text}' is not dotted decimal numbers or id:XXXXXXXX")
    return tuple(int(p) for p in parts)


def format_version(version: Version) -> str:
    return ".".join(str(p) for p in version)


@dataclass(frozen=True)
class VersionRange:
    """Inclusive bounds; `low == high` names one version."""

    low: Version
    high: Version

    def contains(self, version: Version) -> bool:
        # A certificate carries major.minor only; a bound with a build number is compared
        # on the parts the certificate has, so a line whose fixed build cannot be seen
        # counts as affected (the evidence cannot prove the fix).
        size = len(version)
        return self.low[:size] <= version <= self.high[:size]

    def __str__(self) -> str:
        if self.low == self.high:
            return format_version(self.low)
        return f"{format_version(self.low)}–{format_version(self.high)}"


@dataclass(frozen=True)
class FirmwareAdvisory:
    """A published flaw in TPM firmware: who makes it, which models, which versions, and where
    it was published."""

    name: str  # "ROCA (CVE-2017-15361)"
    manufacturer: str  # TCG vendor id, "id:49465800"
    affected: tuple[VersionRange, ...]
    models: tuple[str, ...] = ()  # empty: every model of the manufacturer
    source: str = ""  # the advisory the ranges come from

    def applies_to(self, identity: TPMIdentity) -> bool:
        if _vendor(self.manufacturer) != _vendor(identity.manufacturer):
            return False
        if self.models and identity.model.strip().upper() not in {m.strip().upper() for m in self.models}:
            return False
        try:
            version = parse_version(identity.version)
        except ValueError:
            return False
        return any(r.contains(version) for r in self.affected)


def matching_advisory(
    identity: TPMIdentity, advisories: Sequence[FirmwareAdvisory]
) -> FirmwareAdvisory | None:
    """The first advisory that covers this TPM's manufacturer, model and firmware version."""
    return next((a for a in advisories if a.applies_to(identity)), None)


def _vendor(manufacturer: str) -> str:
    return manufacturer.strip().removeprefix("id:").upper()
