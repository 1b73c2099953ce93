"""Which platforms are virtual machines, as data the trust store loads (platforms.yaml).

Two kinds of rule, each citing its source: SMBIOS patterns (system manufacturer, product
name, family; shell-style, case-insensitive) and TPM pairs (TCG manufacturer id plus a
pattern over the TPM's vendor string, the tpmModel of its certificates). A manufacturer
alone does not make a TPM virtual: Microsoft's Hyper-V vTPM and the Pluton in a physical
laptop both report MSFT, and only the vendor string tells them apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import translate
from functools import cached_property, lru_cache


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(translate(pattern.casefold()))


def _pattern(shell: str) -> re.Pattern[str] | None:
    """None for '*' (most fields of most rules): nothing to match."""
    return None if shell == "*" else _compiled(shell)


def _normal(value: str) -> str:
    return value.strip().casefold()


def _fits(normal: str, pattern: re.Pattern[str] | None) -> bool:
    """`normal`: a value already _normal, so that a table of rules normalises it once."""
    return pattern is None or pattern.match(normal) is not None


@dataclass(frozen=True)
class VirtualPlatform:
    """SMBIOS strings a hypervisor or cloud gives its guests; '*' matches anything."""

    name: str
    source: str
    manufacturer: str = "*"
    model: str = "*"
    family: str = "*"

    @cached_property
    def patterns(self) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None, re.Pattern[str] | None]:
        """Manufacturer, model and family, compiled once: every enrollment meets every rule."""
        return _pattern(self.manufacturer), _pattern(self.model), _pattern(self.family)


@dataclass(frozen=True)
class VirtualTPM:
    """A virtual TPM: TCG manufacturer id (upper-case hex) and a vendor-string pattern."""

    name: str
    source: str
    manufacturer: str
    vendor_string: str = "*"

    def matches(self, manufacturer: str, vendor_string: str | None) -> bool:
        """`vendor_string` None: not known (a claim without evidence); only '*' rules match it."""
        if manufacturer.removeprefix("id:").strip().upper() != self.manufacturer:
            return False
        if vendor_string is None:
            return self.vendor_string == "*"
        return _fits(_normal(vendor_string), _pattern(self.vendor_string))


@dataclass(frozen=True)
class PlatformRules:
    """The virtual platforms and TPMs the evaluator recognises (empty: none)."""

    platforms: tuple[VirtualPlatform, ...] = ()
    tpms: tuple[VirtualTPM, ...] = ()
    source: str = ""

    def virtual_platform(self, manufacturer: str, model: str, family: str = "") -> VirtualPlatform | None:
        made, named, kind = _normal(manufacturer), _normal(model), _normal(family)
        for platform in self.platforms:
            # Inline rather than a call per rule: this loop is on every enrollment's path.
            maker, product, line = platform.patterns
            if (
                (maker is None or maker.match(made))
                and (product is None or product.match(named))
                and (line is None or line.match(kind))
            ):
                return platform
        return None

    def virtual_tpm(self, manufacturer: str, vendor_string: str | None) -> VirtualTPM | None:
        return next((t for t in self.tpms if t.matches(manufacturer, vendor_string)), None)
