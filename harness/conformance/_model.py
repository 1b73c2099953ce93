"""The vendor check's result: one row per requirement, and the report that holds them."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ..errors import HarnessError

RowStatus = Literal["pass", "fail", "warning", "skipped"]
STATUSES: tuple[RowStatus, ...] = ("pass", "fail", "warning", "skipped")

# Where each requirement comes from. Section numbers are those of the published versions named.
EK_PROFILE = "TCG EK Credential Profile for TPM Family 2.0, v2.4 r3"
TPM_PART2 = "TCG TPM 2.0 Library Part 2 (Structures), r1.59"
TPM_PART3 = "TCG TPM 2.0 Library Part 3 (Commands), r1.59"
ROCA_PAPER = 'Nemec et al., "The Return of Coppersmith\'s Attack", CCS 2017, §2.3 (fingerprint)'
VENDOR_REGISTRY = "TCG TPM Vendor ID Registry v1.06 (TPM_PT_MANUFACTURER)"
WINDOWS_ATTESTATION = "Windows enrollment attestation: AIK enrollment and key attestation"


class VendorCheckError(HarnessError):
    """vendor-check cannot run: a bad option, an unreadable CA file, an unreachable TPM."""


@dataclass(frozen=True)
class Latency:
    """Milliseconds per run of one TPM operation."""

    runs: int
    min_ms: float
    median_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> Latency:
        ms = [s * 1000 for s in seconds]
        return cls(len(ms), round(min(ms), 2), round(statistics.median(ms), 2), round(max(ms), 2))

    def __str__(self) -> str:
        return f"{self.min_ms:.1f}/{self.median_ms:.1f}/{self.max_ms:.1f} ms min/median/max over {self.runs}"


@dataclass(frozen=True)
class Row:
    """One requirement: its outcome, what was seen, and the clause it comes from."""

    id: str
    area: str
    status: RowStatus
    evidence: str
    clause: str
    latency: Latency | None = None


def passed(id: str, area: str, evidence: str, clause: str, latency: Latency | None = None) -> Row:
    return Row(id, area, "pass", evidence, clause, latency)


def failed(id: str, area: str, evidence: str, clause: str, latency: Latency | None = None) -> Row:
    return Row(id, area, "fail", evidence, clause, latency)


def warned(id: str, area: str, evidence: str, clause: str) -> Row:
    return Row(id, area, "warning", evidence, clause)


def skipped(id: str, area: str, evidence: str, clause: str) -> Row:
    return Row(id, area, "skipped", evidence, clause)


@dataclass
class VendorReport:
    tcti: str
    started: str  # ISO 8601, UTC
    seconds: float = 0.0
    runs: int = 3
    rows: list[Row] = field(default_factory=list)

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

    def row(self, id: str) -> Row:
        found = next((r for r in self.rows if r.id == id), None)
        if found is None:
            raise KeyError(id)
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "harness-vendor-check/1",
            "tcti": self.tcti,
            "started": self.started,
            "seconds": round(self.seconds, 3),
            "runs": self.runs,
            "ok": self.ok,
            "counts": self.counts,
            "rows": [asdict(r) for r in self.rows],
        }
