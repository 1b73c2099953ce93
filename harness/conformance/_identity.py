"""The TPM's identity from TPM2_GetCapability, against the vendor registry and advisories."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..pki import TCG_VENDORS, TPMIdentity, vendor_id_from_int
from ..verifier import FirmwareAdvisory, matching_advisory
from ._model import TPM_PART2, VENDOR_REGISTRY, WINDOWS_ATTESTATION, Row, failed, passed, warned

AREA = "TPM identity"
_PROPERTIES = f"{TPM_PART2} §6.13 (TPM_PT fixed properties)"


@dataclass(frozen=True)
class TPMProperties:
    """The fixed TPM_PT_* properties (PT_FIXED group) a TPM 2.0 reports."""

    family: int  # TPM_PT_FAMILY_INDICATOR, "2.0" as four ASCII octets
    level: int
    revision: int  # e.g. 159 for 1.59
    day_of_year: int
    year: int
    manufacturer: int
    vendor_strings: tuple[int, int, int, int]
    firmware1: int
    firmware2: int

    @property
    def manufacturer_id(self) -> str:
        return f"id:{vendor_id_from_int(self.manufacturer)}"

    @property
    def firmware_id(self) -> str:
        """The firmware as the EK certificate's tpmVersion carries it."""
        return f"id:{self.firmware1:08X}"

    @property
    def vendor_text(self) -> str:
        raw = b"".join(v.to_bytes(4, "big") for v in self.vendor_strings)
        return raw.rstrip(b"\0").decode("ascii", errors="replace").replace("\0", " ").strip()


def ascii4(value: int) -> str:
    return value.to_bytes(4, "big").rstrip(b"\0").decode("ascii", errors="replace")


def family_row(family: str) -> Row:
    clause = f"{WINDOWS_ATTESTATION}: TPM 2.0 only; a TPM 1.2 answers with tag 0x00C4"
    if family == "2.0":
        return passed("tpm.family", AREA, "answers TPM2_GetCapability with a TPM 2.0 response tag", clause)
    return failed("tpm.family", AREA, "answers with TPM 1.2 tag 0x00C4 (TPM_TAG_RSP_COMMAND)", clause)


def identity_rows(props: TPMProperties, registry: Mapping[str, str] = TCG_VENDORS) -> list[Row]:
    rows: list[Row] = []
    vendor_id = vendor_id_from_int(props.manufacturer)
    text = ascii4(props.manufacturer)
    listed = registry.get(vendor_id)
    seen = f"manufacturer {props.manufacturer_id} ('{text}')"
    if listed is not None:
        rows.append(passed("tpm.manufacturer.registry", AREA, f"{seen}: {listed}", VENDOR_REGISTRY))
    else:
        rows.append(
            failed("tpm.manufacturer.registry", AREA, f"{seen} is not in the registry", VENDOR_REGISTRY)
        )
    vendor = props.vendor_text
    if vendor:
        rows.append(passed("tpm.vendor_strings", AREA, f"'{vendor}'", _PROPERTIES))
    else:
        rows.append(warned("tpm.vendor_strings", AREA, "TPM_PT_VENDOR_STRING_1..4 are empty", _PROPERTIES))
    major, minor = props.firmware1 >> 16, props.firmware1 & 0xFFFF
    rows.append(
        passed(
            "tpm.firmware",
            AREA,
            f"{major}.{minor} ({props.firmware_id}, FIRMWARE_VERSION_2 0x{props.firmware2:08X})",
            _PROPERTIES,
        )
    )
    spec = f"family '{ascii4(props.family)}', level {props.level}, revision {props.revision / 100:.2f}"
    spec += f", spec date day {props.day_of_year} of {props.year}"
    if ascii4(props.family) == "2.0":
        rows.append(passed("tpm.spec", AREA, spec, _PROPERTIES))
    else:
        rows.append(failed("tpm.spec", AREA, spec, _PROPERTIES))
    return rows


def advisory_row(props: TPMProperties, advisories: Sequence[FirmwareAdvisory], source: str) -> Row:
    """Firmware against published advisories; a match makes Windows report the TPM unavailable.

    Advisories that name models are matched against the vendor strings, the only model
    name a TPM reports about itself.
    """
    major, minor = props.firmware1 >> 16, props.firmware1 & 0xFFFF
    identity = TPMIdentity(props.manufacturer_id, props.vendor_text, f"{major}.{minor}")
    match = matching_advisory(identity, advisories)
    seen = f"{props.manufacturer_id} firmware {major}.{minor} against {len(advisories)} advisories"
    if match is not None:
        cited = f" ({match.source})" if match.source else ""
        return failed("tpm.firmware.advisory", "Firmware", f"{seen}: affected by {match.name}{cited}", source)
    return passed("tpm.firmware.advisory", "Firmware", f"{seen}: none applies", source)
