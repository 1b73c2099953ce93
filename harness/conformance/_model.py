"""The vendor check's result: one row per requirement, and the report that holds them."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from ..errors import VendorCheckError as VendorCheckError

RowStatus = Literal["pass", "fail", "warning", "skipped"]
STATUSES: tuple[RowStatus, ...] = ("pass", "fail", "warning", "skipped")

# Where each requirement comes from. Section numbers are those of the published versions named.
EK_PROFILE = "TCG EK Credential Profile for TPM Family 2.0, v2.4 r3"
TPM_PART2 = "TCG TPM 2.0 Library Part 2 (Structures), r1.59"
TPM_PART3 = "TCG TPM 2.0 Library Part 3 (Commands), r1.59"
ROCA_PAPER = 'Nemec et al., "The Return of Coppersmith\'s Attack", CCS 2017, §2.3 (fingerprint)'
VENDOR_REGISTRY = "TCG TPM Vendor ID Registry v1.06 (TPM_PT_MANUFACTURER)"
WINDOWS_ATTESTATION = "Windows enrollment attestation: AIK enrollment and key attestation"
TPM_PART1 = "TCG TPM 2.0 Library Part 1 (Architecture), r1.59"
PTP = "TCG PC Client Platform TPM Profile (PTP) for TPM 2.0, v1.05 r14"


@dataclass(frozen=True)
class Latency:
    """Milliseconds per run of one TPM operation, and the median net of the transport.

    `net_median_ms` is the median less the unit's round-trip baseline (the cheapest
    command's median over the same TCTI), so a TCP simulator's ~88 ms is not read as TPM time.
    """

    runs: int
    min_ms: float
    median_ms: float
    max_ms: float
    net_median_ms: float | None = None

    @classmethod
    def of(cls, seconds: list[float]) -> Latency:
        ms = [s * 1000 for s in seconds]
        return cls(len(ms), round(min(ms), 2), round(statistics.median(ms), 2), round(max(ms), 2))

    @property
    def spread_ms(self) -> float:
        return round(self.max_ms - self.min_ms, 2)

    def net_of(self, baseline: Latency) -> Latency:
        return replace(self, net_median_ms=round(max(self.median_ms - baseline.median_ms, 0.0), 2))

    def __str__(self) -> str:
        net = f"; {self.net_median_ms:.2f} ms net of round trip" if self.net_median_ms is not None else ""
        return (
            f"median {self.median_ms:.2f} ms (min {self.min_ms:.2f}, max {self.max_ms:.2f}, "
            f"spread {self.spread_ms:.2f}) over {self.runs}{net}"
        )


@dataclass(frozen=True)
class Row:
    """One requirement: its outcome, what was seen, and the clause it comes from."""

    id: str
    area: str
    status: RowStatus
    evidence: str
    clause: str
    latency: Latency | None = None
    unit: str = ""  # which unit of a many-unit run; "" for a row about all units together

    @property
    def key(self) -> str:
        """Unique within a report, and the same for the same requirement in another report."""
        return f"{self.unit}/{self.id}" if self.unit else self.id

    @property
    def anchor(self) -> str:
        return "row-" + "".join(c if c.isalnum() else "-" for c in self.key)


def passed(id: str, area: str, evidence: str, clause: str, latency: Latency | None = None) -> Row:
    return Row(id, area, "pass", evidence, clause, latency)


def failed(id: str, area: str, evidence: str, clause: str, latency: Latency | None = None) -> Row:
    return Row(id, area, "fail", evidence, clause, latency)


def judged(good: bool, id: str, area: str, evidence: str, clause: str, latency: Latency | None = None) -> Row:
    return Row(id, area, "pass" if good else "fail", evidence, clause, latency)


def warned(id: str, area: str, evidence: str, clause: str) -> Row:
    return Row(id, area, "warning", evidence, clause)


def skipped(id: str, area: str, evidence: str, clause: str) -> Row:
    return Row(id, area, "skipped", evidence, clause)


@dataclass(frozen=True)
class Unit:
    """One TPM of a run: its name in the report, its TCTI, and whether vendor-check made it."""

    name: str  # unit1, unit2, ... in a many-unit run; "" when the run checks one TPM
    tcti: str
    made: bool = False
    ek_fingerprint: str = ""  # SHA-256 of the RSA EK's SubjectPublicKeyInfo, hex


@dataclass
class VendorReport:
    started: str  # ISO 8601, UTC
    units: list[Unit] = field(default_factory=list)
    seconds: float = 0.0
    runs: int = 3
    destructive: bool = False
    rows: list[Row] = field(default_factory=list)

    @property
    def tcti(self) -> str:
        return ", ".join(u.tcti for u in self.units)

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.status == "fail"]

    @property
    def counts(self) -> dict[str, int]:
        return {s: sum(1 for r in self.rows if r.status == s) for s in STATUSES}

    @property
    def ok(self) -> bool:
        return all(r.status != "fail" for r in self.rows)

    def summary(self) -> str:
        c = self.counts
        return (
            f"{len(self.rows)} requirements: {c['pass']} pass, {c['fail']} fail, "
            f"{c['warning']} warning, {c['skipped']} skipped in {self.seconds:.1f}s"
        )

    def row(self, id: str, unit: str | None = None) -> Row:
        """The row `id` (of `unit`, when several units hold one)."""
        found = [r for r in self.rows if r.id == id and (unit is None or r.unit == unit)]
        if len(found) != 1:
            raise KeyError(f"{id} ({len(found)} rows)")
        return found[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "tcti": self.tcti,
            "units": [asdict(u) for u in self.units],
            "started": self.started,
            "seconds": round(self.seconds, 3),
            "runs": self.runs,
            "destructive": self.destructive,
            "ok": self.ok,
            "counts": self.counts,
            "failures": [r.key for r in self.failures],
            "rows": [_row_dict(r) for r in self.rows],
        }


REPORT_FORMAT = "harness-vendor-check/2"


def _row_dict(row: Row) -> dict[str, Any]:
    document = {**asdict(row), "key": row.key}
    if row.latency is not None:
        document["latency"]["spread_ms"] = row.latency.spread_ms
    return document
