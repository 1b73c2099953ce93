"""Reading platform files (YAML, see platforms.yaml) into the verifier's PlatformRules."""

from __future__ import annotations

from dataclasses import asdict
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .._yamlfile import Location, YamlDocument, parse_mapping, read_text
from ..errors import TrustError
from ..pki import vendor_hex
from ..verifier import PlatformRules, VirtualPlatform, VirtualTPM

_PLATFORM_FIELDS = {"name", "source", "manufacturer", "model", "family"}
_TPM_FIELDS = {"name", "source", "manufacturer", "vendor_string"}


def load_platforms(path: str | Path) -> PlatformRules:
    """The rules of a YAML file; a TrustError names file, line and field."""
    return parse_platforms(read_text(path, TrustError), str(path))


@cache
def default_platforms() -> PlatformRules:
    """The shipped rules (harness/trust/platforms.yaml), each entry citing its source."""
    text = resources.files(__package__).joinpath("platforms.yaml").read_text(encoding="utf-8")
    return parse_platforms(text, "platforms.yaml (shipped)")


def parse_platforms(text: str, source: str) -> PlatformRules:
    doc = parse_mapping(
        text, source, TrustError, "a platform file is a mapping with 'platforms:' and 'tpms:'"
    )
    unknown = sorted(set(doc.data) - {"platforms", "tpms"})
    if unknown:
        raise doc.error((unknown[0],), "unknown field")
    platforms = _entries(doc, "platforms")
    tpms = _entries(doc, "tpms")
    return PlatformRules(
        platforms=tuple(_platform(doc, ("platforms", i), e) for i, e in enumerate(platforms)),
        tpms=tuple(_tpm(doc, ("tpms", i), e) for i, e in enumerate(tpms)),
        source=source,
    )


def _entries(doc: YamlDocument, key: str) -> list[Any]:
    value = doc.data.get(key, [])
    if not isinstance(value, list):
        raise doc.error((key,), "must be a list")
    return value


def _strings(doc: YamlDocument, at: Location, entry: Any, fields: set[str]) -> dict[str, str]:
    if not isinstance(entry, dict):
        raise doc.error(at, "an entry is a mapping")
    unknown = sorted(set(entry) - fields)
    if unknown:
        raise doc.error((*at, unknown[0]), "unknown field")
    for required in ("name", "source"):
        if not entry.get(required):
            raise doc.error((*at, required), "is required (every entry cites its source)")
    for key, value in entry.items():
        if not isinstance(value, str) or not value.strip():
            raise doc.error((*at, key), "must be a non-empty string")
    return {str(k): str(v) for k, v in entry.items()}


def _platform(doc: YamlDocument, at: Location, entry: Any) -> VirtualPlatform:
    fields = _strings(doc, at, entry, _PLATFORM_FIELDS)
    if not any(k in fields for k in ("manufacturer", "model", "family")):
        raise doc.error(at, "name at least one of manufacturer, model, family (else every device matches)")
    return VirtualPlatform(**fields)


def _tpm(doc: YamlDocument, at: Location, entry: Any) -> VirtualTPM:
    fields = _strings(doc, at, entry, _TPM_FIELDS)
    if "manufacturer" not in fields:
        raise doc.error((*at, "manufacturer"), "is required (a TCG id such as id:4D534654)")
    try:
        fields["manufacturer"] = vendor_hex(fields["manufacturer"])
    except ValueError as exc:
        raise doc.error((*at, "manufacturer"), str(exc)) from exc
    return VirtualTPM(**fields)


def platforms_yaml(rules: PlatformRules) -> str:
    """A platform file holding `rules` (what parse_platforms reads back)."""

    def entry(rule: VirtualPlatform | VirtualTPM) -> dict[str, str]:
        fields = {k: v for k, v in asdict(rule).items() if v != "*" or k == "vendor_string"}
        if isinstance(rule, VirtualTPM):
            fields["manufacturer"] = "id:" + rule.manufacturer
        return fields

    document = {"platforms": [entry(p) for p in rules.platforms], "tpms": [entry(t) for t in rules.tpms]}
    header = f"# Virtual platforms, written from {rules.source or 'a trust store'}; see platforms.yaml.\n"
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
