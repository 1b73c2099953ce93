"""The commands that judge evidence: `harness vendor-check` (a TPM and its EK credentials)
and `harness verify` (recorded enrollment evidence, offline)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from ..errors import HarnessError, TrustError
from ..status import AttestationStatus
from ..trust import load_trust, trust_from_options
from ._commands import (
    EXIT_INTERRUPTED,
    EXIT_MATCHED,
    EXIT_MISMATCH,
    EXIT_USAGE,
    AdvisoriesOption,
    TrustOption,
    _terminate,
    app,
    console,
)
from ._runview import print_paths


@app.command("vendor-check")
def vendor_check(
    tcti: Annotated[
        list[str] | None,
        typer.Option(
            help="a TPM, as TCTILdr takes it (repeatable: several units): 'device:/dev/tpmrm0', "
            "'mssim:host=127.0.0.1,port=2321', 'swtpm:path=/run/tpm.sock'"
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="directory for report.json, junit.xml, index.html")
    ] = None,
    ek_ca: Annotated[
        list[Path] | None,
        typer.Option(
            "--ek-ca", help="PEM file of the vendor's EK CA certificates (repeatable); each is trusted"
        ),
    ] = None,
    runs: Annotated[int, typer.Option(min=1, help="runs of each timed TPM operation")] = 3,
    trust: TrustOption = None,
    advisories: AdvisoriesOption = None,
    swtpm: Annotated[int, typer.Option(min=0, help="also check N swtpm units vendor-check makes")] = 0,
    swtpm_ecc: Annotated[bool, typer.Option(help="give the swtpm units an ECC P-256 EK too")] = True,
    destructive: Annotated[bool, typer.Option(help="lock out, Clear and ChangeEPS --tcti TPMs too")] = False,
    compare: Annotated[
        tuple[Path, Path] | None,
        typer.Option(help="OLD.json NEW.json: list the requirements that changed between two reports"),
    ] = None,
) -> None:
    """Validate TPMs and their EK credentials for Windows enrollment attestation (exit 0: none
    failed, or with --compare none changed; 1: some did; 2: the check cannot run)."""
    from ..conformance import VendorCheckError, check_command, compare_command

    signal.signal(signal.SIGTERM, _terminate)
    try:
        if compare is not None:
            changed = compare_command(console, compare[0], compare[1], out).changed
            raise typer.Exit(EXIT_MISMATCH if changed else EXIT_MATCHED)
        if out is None:
            raise VendorCheckError("--out DIR is needed for the reports")
        store = load_trust(trust) if trust else None
        result, paths = check_command(
            console, tctis=tcti or [], swtpm=swtpm, swtpm_ecc=swtpm_ecc, out=out, ek_ca=ek_ca or [],
            runs=runs, trust=store, advisories=advisories, destructive=destructive,
        )  # fmt: skip
    except (VendorCheckError, TrustError) as exc:
        console.print(f"[red]vendor-check:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from exc
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None
    print_paths(console, paths)
    raise typer.Exit(EXIT_MATCHED if result.ok else EXIT_MISMATCH)


@app.command()
def verify(
    bundles: Annotated[list[Path], typer.Argument(help="evidence bundle JSON files", show_default=False)],
    trust: TrustOption = None,
    advisories: AdvisoriesOption = None,
    at: Annotated[
        str | None, typer.Option(help="judge at this ISO 8601 time instead of the bundle's check time")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON document for machines")] = False,
) -> None:
    """Judge recorded evidence offline; exit 0 when every bundle attests, 1 when one does not."""
    import datetime as dt
    import json

    from ..trust import trust_for, verify_bundle
    from ..verifier import BundleFormatError, parse_time

    try:
        when = parse_time(at, "--at") if at else None
        given = trust_from_options(trust, advisories)
        results = [
            verify_bundle(b, trust_for(b, given), at=when, now=dt.datetime.now(dt.UTC)) for b in bundles
        ]
    except (HarnessError, BundleFormatError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from exc
    if as_json:
        print(json.dumps([r.to_json() for r in results], indent=2))
    else:
        for result in results:
            verdict = result.verdict
            detail = f" / {verdict.detail}" if verdict.detail else ""
            print(f"{result.path}: {verdict.status}{detail}")
            print(f"  decision  {verdict.decision}")
            print(f"  judged at {result.check_time.isoformat()} against {result.trust}")
            for fact in verdict.not_judged:
                print(f"  cannot judge offline: {fact}")
            for check in verdict.checks:
                mark = "pass" if check.passed else "FAIL"
                print(f"  {mark} {check.name}{': ' + check.detail if check.detail else ''}")
    attested = all(r.verdict.status == AttestationStatus.ATTESTED for r in results)
    raise typer.Exit(EXIT_MATCHED if attested else EXIT_MISMATCH)
