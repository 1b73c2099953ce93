"""Reading advisory files (YAML, see advisories.yaml) into the verifier's FirmwareAdvisory."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from .._yamlfile import Location, YamlDocument, parse_mapping, read_text
from ..errors import TrustError
from ..pki import vendor_hex
from ..verifier import FirmwareAdvisory, VersionRange, parse_version

_FIELDS = {"name", "source", "manufacturer", "models", "affected"}


def load_advisories(path: str | Path) -> tuple[FirmwareAdvisory, ...]:
    """The advisories of a YAML file; a TrustError names file, line and field."""
    return parse_advisories(read_text(path, TrustError), str(path))


@cache
def default_advisories() -> tuple[FirmwareAdvisory, ...]:
    """The shipped list (harness/trust/advisories.yaml), each entry citing its source."""
    text = resources.files(__package__).joinpath("advisories.yaml").read_text(encoding="utf-8")
    return parse_advisories(text, "advisories.yaml (shipped)")


def parse_advisories(text: str, source: str) -> tuple[FirmwareAdvisory, ...]:
    doc = parse_mapping(text, source, TrustError, "an advisory file is a mapping with 'advisories:'")
    entries = doc.data.get("advisories")
    if not isinstance(entries, list):
        raise doc.error(("advisories",), "must be a list of advisories")
    unknown = sorted(set(doc.data) - {"advisories"})
    if unknown:
        raise doc.error((unknown[0],), "unknown field")
    return tuple(_advisory(doc, ("advisories", i), entry) for i, entry in enumerate(entries))


def _advisory(doc: YamlDocument, at: Location, entry: Any) -> FirmwareAdvisory:
    if not isinstance(entry, dict):
        raise doc.error(at, "an advisory is a mapping")
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        raise doc.error((*at, unknown[0]), "unknown field")
    for required in ("name", "source", "manufacturer", "affected"):
        if not entry.get(required):
            raise doc.error((*at, required), "is required (every advisory cites its source)")
    try:
        manufacturer = "id:" + vendor_hex(str(entry["manufacturer"]))
    except ValueError as exc:
        raise doc.error((*at, "manufacturer"), str(exc)) from exc
    models = entry.get("models") or []
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise doc.error((*at, "models"), "must be a list of model names")
    affected = entry["affected"]
    if not isinstance(affected, list):
        raise doc.error((*at, "affected"), "must be a list of versions or LOW..HIGH ranges")
    ranges = tuple(_range(doc, (*at, "affected", i), item) for i, item in enumerate(affected))
    return FirmwareAdvisory(
        name=str(entry["name"]),
        manufacturer=manufacturer,
        affected=ranges,
        models=tuple(models),
        source=str(entry["source"]),
    )


def _range(doc: YamlDocument, at: Location, item: Any) -> VersionRange:
    text = str(item)
    low_text, dots, high_text = text.partition("..")
    try:
        low = parse_version(low_text)
        high = parse_version(high_text) if dots else low
    except ValueError as exc:
        raise doc.error(at, str(exc)) from exc
    if high < low:
        raise doc.error(at, f"range '{text}' ends below where it starts")
    return VersionRange(low, high)
