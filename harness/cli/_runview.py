"""What `harness run` prints when it ends: the summary, the reports, the mismatches, the bundles."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from ..report import failed_step, write_reports
from ..results import RunResult


def report_run(console: Console, result: RunResult, out: Path, history: Path | None = None) -> None:
    """Write the three reports and list what did not match (a partial run's too)."""
    paths = write_reports(result, out, history=history)
    _print_summary(console, result.summary.total, result.summary.matched, result.summary.wall_seconds)
    print_paths(console, paths)
    for device in result.devices:
        if not device.matched:
            console.print(
                f"  [red]mismatch[/red] {device.group}/{device.name}: {failed_step(device)}"
                f"{' — ' + device.evidence.decision if device.evidence.decision else ''}"
                f"{' — ' + device.error if device.error else ''}",
                highlight=False,
            )


def _print_summary(console: Console, total: int, matched: int, wall: float) -> None:
    colour = "green" if matched == total else "red"
    per_device = wall / total if total else 0.0
    console.print(
        f"[{colour}]{matched}/{total} devices matched[/{colour}] "
        f"in {wall:.1f}s ({per_device:.2f}s per device)",
        highlight=False,
    )


def print_paths(console: Console, paths: dict[str, Path]) -> None:
    for kind, path in paths.items():
        console.print(f"  {kind:5} {path}", highlight=False)


def print_bundles(console: Console, out: Path, server: str | None) -> None:
    """Where the run's evidence bundles are, and whether a trust store lies beside them."""
    bundles = out / "bundles"
    count = len(list(bundles.glob("*.json"))) if bundles.is_dir() else 0
    console.print(
        f"  bundles {bundles} ({count}; re-judge with: harness verify {bundles}/*.json)", highlight=False
    )
    if server:
        console.print(
            "  the bundles have no trust store beside them: the harness does not know the trust of "
            "--server; give 'harness verify' the server's with --trust",
            highlight=False,
        )
