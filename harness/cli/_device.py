"""`harness device run`: one device's life in a task, and `harness k8s manifests`."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..cluster import EXIT_BAD_INPUT, EXIT_DONE, EXIT_HARNESS_ERROR, RUN_MARKER, run_task_device, slot_index
from ..errors import HarnessError
from ..fleet import run_to_json, task_from_json
from ..tpm import DEFAULT_DEVICE_IMAGE

device_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="one device's life as a task (a Swarm task, a Kubernetes pod), against a server URL",
)
_err = Console(stderr=True, soft_wrap=True)


@device_app.command("run")
def device_run(
    plan: Annotated[Path | None, typer.Option(help="the device task: a JSON file (plans, services)")] = None,
    plan_env: Annotated[
        str | None, typer.Option(help="name of an environment variable holding the device task's JSON")
    ] = None,
    index: Annotated[int | None, typer.Option(min=0, help="which of the task's plans is this device")] = None,
    index_env: Annotated[
        str,
        typer.Option(help="environment variable with the index when --index is not given"),
    ] = "HARNESS_DEVICE_INDEX",
    server: Annotated[
        str | None, typer.Option(help="the reference server's URL (default: the task's)")
    ] = None,
    vendor_cas: Annotated[
        Path | None, typer.Option(help="the vendor CAs (a JSON secret) for manufacturing the TPM")
    ] = None,
) -> None:
    """Run one device from its plan; print its run on one line; exit 0 when its life ran to its
    end (its status is the server's), 3 on a harness error, 2 on bad input."""
    try:
        if (plan is None) == (plan_env is None):
            raise HarnessError("give the device task with exactly one of --plan FILE or --plan-env VAR")
        if plan is not None:
            task = task_from_json(plan.read_bytes(), str(plan))
        else:
            assert plan_env is not None
            text = os.environ.get(plan_env)
            if not text:
                raise HarnessError(f"the environment variable {plan_env} holds no device task")
            task = task_from_json(text, f"${plan_env}")
        if index is None:
            if len(task.plans) != 1 and not os.environ.get(index_env):
                raise HarnessError(
                    f"the task has {len(task.plans)} plans: say which with --index or ${index_env}"
                )
            index = slot_index(os.environ.get(index_env) or "0")
        cas = vendor_cas.read_text(encoding="ascii") if vendor_cas is not None else None
    except (HarnessError, OSError) as exc:
        _err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT) from exc
    try:
        run = run_task_device(task, index, vendor_cas=cas, server_url=server)
    except HarnessError as exc:
        _err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT) from exc
    sys.stdout.write(RUN_MARKER + run_to_json(run) + "\n")
    sys.stdout.flush()
    if run.error:
        _err.print(f"[red]harness error:[/red] {run.error}", highlight=False)
    raise typer.Exit(EXIT_HARNESS_ERROR if run.error else EXIT_DONE)


k8s_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Kubernetes: a scenario's devices as an Indexed Job of the device image",
)


@k8s_app.command("manifests")
def k8s_manifests_command(
    scenarios: Annotated[list[Path], typer.Argument(help="scenario YAML files", show_default=False)],
    server_url: Annotated[str, typer.Option(help="the reference server's URL as the pods reach it")],
    pki_dir: Annotated[
        Path, typer.Option(help="the vendor CAs the server trusts (harness serve --pki-dir DIR)")
    ],
    image: Annotated[str, typer.Option(help="the device image in your registry")] = DEFAULT_DEVICE_IMAGE,
    namespace: Annotated[str, typer.Option(help="the namespace of every object")] = "enrollment-harness",
    parallelism: Annotated[int, typer.Option(min=1, help="pods at once per Job")] = 4,
    restarts: Annotated[int, typer.Option(min=0, help="retries of a failed device (per index)")] = 2,
    lagging_replica_url: Annotated[
        str, typer.Option(help="a lagging replica's URL, if a world needs it")
    ] = "",
    foreign_identity_url: Annotated[
        str, typer.Option(help="another tenant's identity provider, if a world needs it")
    ] = "",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="file to write (default: stdout)")] = None,
) -> None:
    """Write the Kubernetes objects that run the scenarios' devices as Indexed Jobs (YAML)."""
    import yaml

    from ..cluster import k8s_manifests
    from ..fleet import plan_fleet
    from ..scenario import load_scenario

    try:
        loaded = [load_scenario(path) for path in scenarios]
        for scenario in loaded:
            if scenario.steps:
                raise HarnessError(
                    f"{scenario.path}: scenario '{scenario.name}' has steps, which a Job cannot run"
                )
        plans, _ = plan_fleet(loaded)  # the expectations stay here
        objects = k8s_manifests(
            plans,
            pki_dir=pki_dir,
            image=image,
            server_url=server_url,
            namespace=namespace,
            lagging_replica_url=lagging_replica_url,
            foreign_identity_url=foreign_identity_url,
            parallelism=parallelism,
            restarts=restarts,
            run_id=secrets.token_hex(4),  # names this run's objects apart from another's
        )
    except (HarnessError, OSError) as exc:
        _err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT) from exc
    text = yaml.safe_dump_all(objects, sort_keys=False)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        out.chmod(0o600)  # it holds the vendor CAs' keys
