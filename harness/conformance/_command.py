"""`harness vendor-check` behind the CLI's options: check units, or compare two reports."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from ..report import write_json_document
from ..trust import TrustStore
from ._check import Target, run_vendor_check
from ._compare import Comparison, compare_reports, load_report
from ._made import made_units
from ._model import VendorCheckError, VendorReport
from ._report import write_vendor_reports


def check_command(
    console: Console,
    *,
    tctis: Sequence[str],
    swtpm: int,
    swtpm_ecc: bool,
    out: Path,
    ek_ca: Sequence[Path],
    runs: int,
    trust: TrustStore | None,
    advisories: Path | None,
    destructive: bool,
) -> tuple[VendorReport, dict[str, Path]]:
    """Run the check over the given TCTIs and `swtpm` units made for it; write the reports."""
    if not tctis and swtpm < 1:
        raise VendorCheckError("no TPM to check: give --tcti (repeatable) or --swtpm N")
    with contextlib.ExitStack() as stack:
        targets = [Target(t) for t in tctis]
        anchors = []
        if swtpm > 0:
            made = stack.enter_context(made_units(swtpm, ecc=swtpm_ecc))
            targets += [Target(u.spec, made=True, reissue=u.reissue) for u in made.units]
            anchors = made.anchors
        result = run_vendor_check(
            targets,
            ek_ca,
            runs=runs,
            advisories=advisories,
            trust=trust,
            destructive=destructive,
            anchors=anchors,
        )
    paths = write_vendor_reports(result, out)
    for row in result.failures:
        console.print(f"  [red]fail   [/red] {row.key}: {row.evidence}", highlight=False)
    for row in (r for r in result.rows if r.status == "warning"):
        console.print(f"  [yellow]warning[/yellow] {row.key}: {row.evidence}", highlight=False)
    colour = "green" if result.ok else "red"
    console.print(f"[{colour}]{result.summary()}[/{colour}]", highlight=False)
    return result, paths


def compare_command(console: Console, old: Path, new: Path, out: Path | None) -> Comparison:
    comparison = compare_reports(load_report(old), load_report(new), old_name=str(old), new_name=str(new))
    if out is not None:
        write_json_document(comparison.to_dict(), out / "comparison.json")
    console.print(f"{len(comparison.rows)} requirement(s) changed from {old} to {new}", highlight=False)
    for change in comparison.rows:
        console.print(f"  {change.key}: {change.old} -> {change.new}  ({change.evidence})", highlight=False)
    if comparison.latencies:
        console.print(f"{len(comparison.latencies)} latency change(s) beyond noise:", highlight=False)
    for moved in comparison.latencies:
        console.print(
            f"  {moved.key}: {moved.old_ms:.2f} -> {moved.new_ms:.2f} ms ({moved.percent:+.0f}%, "
            f"noise {moved.noise_ms:.2f} ms)",
            highlight=False,
        )
    console.print(comparison.latency_note, highlight=False)
    return comparison
