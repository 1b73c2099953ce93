"""Rows across the units of one run: each TPM must be an individual."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ._model import EK_PROFILE, Row, Unit, judged, skipped

AREA = "Across units"
EK_CLAUSE = f"{EK_PROFILE} §2.1 (the EK is unique per TPM: its seed is generated per device)"
RNG_CLAUSE = "TCG TPM 2.0 Library Part 1 §11.4.10 (RNG seeded per device); NIST SP 800-90A"


def _shared(values: Mapping[str, str]) -> list[list[str]]:
    by_value: dict[str, list[str]] = {}
    for unit, value in values.items():
        by_value.setdefault(value, []).append(unit)
    return [units for units in by_value.values() if len(units) > 1]


def unit_rows(units: Sequence[Unit], samples: Mapping[str, bytes]) -> list[Row]:
    rows = []
    fingerprints = {u.name: u.ek_fingerprint for u in units if u.ek_fingerprint}
    if len(fingerprints) < 2:
        rows.append(skipped("units.ek_unique", AREA, "fewer than two units with an RSA EK", EK_CLAUSE))
    else:
        shared = _shared(fingerprints)
        listing = "; ".join(f"{u}: {fp[:16]}" for u, fp in fingerprints.items())
        evidence = (
            "SHARED EK: " + "; ".join(f"{' and '.join(g)} have the same EK" for g in shared) + f" ({listing})"
            if shared
            else f"{len(fingerprints)} distinct EKs ({listing})"
        )
        rows.append(judged(not shared, "units.ek_unique", AREA, evidence, EK_CLAUSE))
    hexed = {u: s.hex() for u, s in samples.items()}
    if len(hexed) < 2:
        rows.append(skipped("units.rng_unique", AREA, "fewer than two units answered GetRandom", RNG_CLAUSE))
    else:
        shared = _shared(hexed)
        evidence = (
            "SAME RANDOM OUTPUT: " + "; ".join(" and ".join(g) for g in shared)
            if shared
            else f"the first GetRandom(32) of {len(hexed)} units all differ"
        )
        rows.append(judged(not shared, "units.rng_unique", AREA, evidence, RNG_CLAUSE))
    return rows
