"""The `harness` command: run scenarios, validate them, re-render reports."""

from __future__ import annotations

import contextlib
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from .. import __version__
from ..errors import HarnessError, RbacError, ScenarioError
from ..fleet import (
    DeviceRun,
    FleetRun,
    RunInterrupted,
    RunOptions,
    RunStopped,
    choose_backend,
    inapplicable_groups,
)
from ..report import load_results, write_reports
from ..scenario import Scenario, load_scenario
from ..tpm import describe_backends
from ..trust import TrustStore, trust_from_options
from ._diff import HistoryOption, TraceOption, diff
from ._engine_options import EngineOption, EnginesFileOption, ServerBindOption, SwarmOption, backend_option
from ._runview import print_bundles, print_paths, report_run
from ._token_option import AdminTokenFileOption, AdminTokenOption, read_admin_token

EXIT_MATCHED, EXIT_MISMATCH, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Windows enrollment attestation harness: real emulated TPMs, a simulated Windows "
    "client and a reference MDM server, with reports of expected versus actual status.",
)
app.command()(diff)  # defined beside the history options of `run`
# soft_wrap: a "file:line: field" message must stay on one line in CI logs too.
console = Console(stderr=True, soft_wrap=True)


def _terminate(signum: int, frame: FrameType | None) -> NoReturn:
    # SIGTERM unwinds like Ctrl-C, so every swtpm and temporary directory is removed.
    raise KeyboardInterrupt


def _load_all(paths: list[Path]) -> list[Scenario]:
    scenarios = []
    for path in paths:
        scenarios.append(load_scenario(path))
    names = [s.name for s in scenarios]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise ScenarioError(
            str(paths[names.index(duplicate)]),
            None,
            "name",
            f"scenario '{duplicate}' is given twice",
        )
    return scenarios


TrustOption = Annotated[
    Path | None,
    typer.Option(help="trust store: a directory or YAML manifest (see README, 'Trust store')"),
]
AdvisoriesOption = Annotated[
    Path | None, typer.Option(help="firmware advisory YAML file replacing the shipped list")
]


class _Reporter:
    """A progress bar on a terminal, one plain line per device elsewhere (CI logs)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.tty = sys.stderr.isatty()
        self._progress = None
        if self.tty:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            self._progress = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            self._task = self._progress.add_task("devices", total=total)
            self._progress.start()

    def __call__(self, run: DeviceRun) -> None:
        self.done += 1
        if self._progress is not None:
            self._progress.advance(self._task)
        else:
            state = "error" if run.error else "done"
            print(
                f"[{self.done:>{len(str(self.total))}}/{self.total}] {run.key} {state} {run.seconds:.2f}s",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


@app.command()
def run(
    scenarios: Annotated[list[Path], typer.Argument(help="scenario YAML files", show_default=False)],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="directory for results.json, junit.xml, index.html")
    ] = Path("reports/latest"),
    workers: Annotated[
        int, typer.Option("--workers", "-w", min=1, help="devices run in parallel (processes)")
    ] = 1,
    server: Annotated[
        str | None, typer.Option(help="URL of a running reference server (default: embedded)")
    ] = None,
    admin_token: AdminTokenOption = None,
    admin_token_file: AdminTokenFileOption = None,
    pki_dir: Annotated[
        Path | None,
        typer.Option(help="vendor CA directory shared with --server (see 'harness serve')"),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            help=f"where each device's TPM runs: {describe_backends()}. Default: the scenario's, else process"
        ),
    ] = None,
    trust: TrustOption = None,
    advisories: AdvisoriesOption = None,
    engine: EngineOption = None,
    engines: EnginesFileOption = None,
    server_bind: ServerBindOption = "127.0.0.1",
    swarm: SwarmOption = False,
    history: HistoryOption = None,
    trace: TraceOption = "failures",
) -> None:
    """Run scenario fleets end to end and write reports; exit 1 if any device mismatched."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        loaded = _load_all(scenarios)
    except ScenarioError as exc:
        console.print(f"[red]scenario error:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from exc
    try:
        chosen = choose_backend(backend_option(backend, engine, engines, swarm), loaded)
        trust_store = trust_from_options(trust, advisories)
        admin_token = read_admin_token(admin_token, admin_token_file)
    except HarnessError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from exc
    total = sum(s.device_count for s in loaded)
    skipped = inapplicable_groups(loaded) if server else []
    for group in skipped:
        console.print(f"[yellow]not applicable:[/yellow] {group.describe()}", highlight=False)
    total -= sum(group.devices for group in skipped)
    console.print(
        f"running {total} devices from {len(loaded)} scenario(s) with {workers} worker(s), "
        f"TPMs: {chosen.label}"
    )
    reporter = _Reporter(total)
    try:
        result = FleetRun(
            loaded,
            RunOptions(
                workers=workers,
                server_url=server,
                admin_token=admin_token,
                pki_dir=pki_dir,
                backend=chosen,
                trust=trust_store,
                bundle_dir=out / "bundles",
                server_bind=server_bind,
                history=history,
                trace=trace,
            ),
            progress=reporter,
        ).run()
    except RunInterrupted as stop:
        reporter.close()
        report_run(console, stop.result, out)
        print_bundles(console, out, server)
        console.print("[yellow]interrupted: every TPM and temporary directory was removed[/yellow]")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except KeyboardInterrupt:
        reporter.close()
        console.print("[yellow]interrupted: every TPM and temporary directory was removed[/yellow]")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except RunStopped as stop:
        reporter.close()
        report_run(console, stop.result, out)
        print_bundles(console, out, server)
        console.print(f"[red]error: the run stopped:[/red] {stop}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from stop
    except HarnessError as exc:
        reporter.close()
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from exc
    reporter.close()
    report_run(console, result, out, history)
    print_bundles(console, out, server)
    raise typer.Exit(EXIT_MATCHED if result.all_matched else EXIT_MISMATCH)


@app.command()
def validate(
    scenarios: Annotated[list[Path], typer.Argument(help="scenario YAML files", show_default=False)],
) -> None:
    """Check scenario files without running them."""
    try:
        loaded = _load_all(scenarios)
    except ScenarioError as exc:
        console.print(f"[red]scenario error:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from exc
    for scenario in loaded:
        console.print(
            f"{scenario.path}: {len(scenario.groups)} groups, {scenario.device_count} devices",
            highlight=False,
        )
    for group in inapplicable_groups(loaded):
        console.print(f"  not applicable with --server: {group.describe()}", highlight=False)


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="a results.json written by 'harness run'")],
    out: Annotated[Path, typer.Option("--out", "-o", help="directory for the re-rendered reports")],
    history: Annotated[Path | None, typer.Option(help="run history for the trends and flakiness")] = None,
) -> None:
    """Re-render junit.xml and index.html (and a copy of results.json) from a results.json."""
    try:
        loaded = load_results(results)
    except (OSError, ValueError) as exc:
        console.print(f"[red]cannot read {results}:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from exc
    print_paths(console, write_reports(loaded, out, history=history))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="port to listen on (0: any free port)")] = 8080,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="server keys, database and admin token", show_default="$XDG_STATE_HOME/harness/server"
        ),
    ] = None,
    db: Annotated[
        Path | None, typer.Option(help="SQLite file", show_default="DATA_DIR/server.sqlite3")
    ] = None,
    rbac: Annotated[
        Path | None, typer.Option(help="YAML file of admin principals, tokens and permissions")
    ] = None,
    pki_dir: Annotated[
        Path | None,
        typer.Option(
            help="vendor CA directory to trust and share with 'harness run --pki-dir'",
            show_default="DATA_DIR/pki",
        ),
    ] = None,
    manual_clock: Annotated[
        bool, typer.Option(help="run on a clock that POST /admin/clock/advance moves, not the real one")
    ] = False,
    trust: TrustOption = None,
    advisories: AdvisoriesOption = None,
) -> None:
    """Run the reference server in the foreground until Ctrl-C or SIGTERM (for a lab or a nightly job)."""
    from ..server import prepare_standalone

    signal.signal(signal.SIGTERM, _terminate)
    try:
        server = prepare_standalone(
            host=host,
            port=port,
            data_dir=data_dir,
            db=db,
            rbac=rbac,
            pki_dir=pki_dir,
            manual_clock=manual_clock,
            trust=trust_from_options(trust, advisories) or TrustStore(),
        )
    except RbacError as exc:
        console.print(f"[red]rbac error:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from exc
    except HarnessError as exc:
        console.print(f"[red]cannot start the server:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from exc
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None
    print("\n".join(server.banner()), flush=True)
    # Stopping is how a server ends, so Ctrl-C and SIGTERM exit 0 once requests in flight are done.
    with contextlib.suppress(KeyboardInterrupt):
        server.serve()
    print("server stopped", flush=True)


@app.command()
def version() -> None:
    """Print the harness version."""
    print(__version__)


def main() -> None:
    from ._device import device_app, k8s_app

    app.add_typer(device_app, name="device")
    app.add_typer(k8s_app, name="k8s")
    app(prog_name="harness")
