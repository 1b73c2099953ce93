"""`harness diff` and the history options of `harness run`: what changed since the last run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..errors import HarnessError
from ..history import Change, DeviceView, History, RunDiff, RunView, diff_runs, run_view
from ..report import load_results

HistoryOption = Annotated[
    Path | None,
    typer.Option(
        help="run history (an SQLite file, created if missing; keep it as a CI artifact or cache): "
        "the run is recorded into it and the report shows its trends"
    ),
]
TraceOption = Annotated[
    str,
    typer.Option(
        help="TPM command traces kept: 'failures' (mismatched and errored devices), 'all', or 'off'"
    ),
]


def _load(path: Path) -> RunView:
    try:
        return run_view(load_results(path))
    except (OSError, ValueError) as exc:
        raise HarnessError(f"cannot read {path}: {exc}") from exc


def _runs(results: list[Path], history: History | None) -> tuple[RunView, RunView]:
    """Before and after, from two results.json files, one and the history's run before it, or
    the history's last two runs."""
    if len(results) > 2:
        raise HarnessError("give at most two results.json files")
    if len(results) == 2:
        return _load(results[0]), _load(results[1])
    if history is None:
        raise HarnessError("give two results.json files, or --history with one or none")
    if results:
        after = _load(results[0])
    else:
        last = history.runs(limit=1)
        if not last:
            raise HarnessError(f"{history.path}: the history has no runs")
        after = history.view(last[0])
    before = history.last_before(after.info.fingerprint, suite=after.info.suite)
    if before is None:
        raise HarnessError(f"{history.path}: no earlier run of the same scenarios to compare with")
    return history.view(before), after


def diff(
    results: Annotated[
        list[Path] | None, typer.Argument(help="BEFORE.json AFTER.json, or AFTER.json with --history")
    ] = None,
    history: Annotated[
        Path | None, typer.Option(help="run history: the run before AFTER (or its last two runs); flakiness")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document for machines")] = False,
    fail_on_new_mismatch: Annotated[
        bool, typer.Option(help="exit 1 when a device mismatches that did not before (a CI gate)")
    ] = False,
    fail_on_change: Annotated[
        bool, typer.Option(help="exit 1 when any device's status, detail or outcome changed")
    ] = False,
) -> None:
    """What changed between two runs: devices, new and persistent mismatches, flaky devices, timing.

    Exit 0, or 1 when a --fail-on-* gate trips, 2 when the runs cannot be read.
    """
    console = Console(soft_wrap=True)
    try:
        if history is not None and not history.exists():
            raise HarnessError(f"{history}: no such run history")
        opened = History(history) if history is not None else None
        try:
            before, after = _runs(results or [], opened)
            found = diff_runs(before, after, opened)
        finally:
            if opened is not None:
                opened.close()
    except HarnessError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from exc
    if as_json:
        print(json.dumps(found.to_json(), indent=2))
    else:
        _print(console, found)
    tripped = (fail_on_new_mismatch and found.new_mismatches) or (fail_on_change and found.changed)
    raise typer.Exit(1 if tripped else 0)


def _print(console: Console, found: RunDiff) -> None:
    b, a = found.before, found.after
    console.print(
        f"before {b.started_at} ({b.code or 'code unknown'}): {b.matched}/{b.total} matched\n"
        f"after  {a.started_at} ({a.code or 'code unknown'}): {a.matched}/{a.total} matched"
        + ("" if found.same_code else "   [yellow]different code[/yellow]"),
        highlight=False,
    )
    _table(console, "changed", found.changed, lambda c: (_shown(c.before), _shown(c.after)))
    _table(console, "new mismatches", found.new_mismatches, lambda c: (_shown(c.before), _shown(c.after)))
    _table(console, "persistent mismatches", found.persistent_mismatches, lambda c: ("", _shown(c.after)))
    _table(console, "fixed", found.fixed, lambda c: (_shown(c.before), _shown(c.after)))
    _table(console, "new devices", found.added, lambda c: ("", _shown(c.after)))
    _table(console, "removed devices", found.removed, lambda c: (_shown(c.before), ""))
    _table(
        console,
        "slower beyond noise",
        found.slower,
        lambda c: (
            f"{c.before.seconds:.2f} s" if c.before else "",
            f"{c.after.seconds:.2f} s" if c.after else "",
        ),
    )
    if found.flaky:
        console.print(
            f"[yellow]flaky[/yellow] ({len(found.flaky)}): " + ", ".join(found.flaky), highlight=False
        )
    counts = (
        f"{len(found.changed)} changed, {len(found.new_mismatches)} new mismatches, "
        f"{len(found.persistent_mismatches)} persistent, {len(found.fixed)} fixed, {len(found.added)} new, "
        f"{len(found.removed)} removed, {len(found.slower)} slower, {len(found.flaky)} flaky"
    )
    console.print(counts, highlight=False)


def _shown(view: DeviceView | None) -> str:
    if view is None:
        return ""
    return f"{view.shown}\n{view.checkpoint}" if view.checkpoint else view.shown


def _table(
    console: Console, title: str, changes: list[Change], cells: Callable[[Change], tuple[str, str]]
) -> None:
    if not changes:
        return
    table = Table(title=f"{title} ({len(changes)})", title_justify="left", show_lines=False)
    for column in ("device", "group", "before", "after"):
        table.add_column(column, overflow="fold")
    for change in changes:
        before, after = cells(change)
        name = change.after.name if change.after else change.before.name if change.before else ""
        table.add_row(f"{change.key}\n{name}", change.group, before, after)
    console.print(table)
