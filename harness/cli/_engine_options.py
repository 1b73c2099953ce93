"""The options of `harness run` that spread a fleet over Docker engines and expose its server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import HarnessError
from ..tpm import BackendSpec, engine_backend, load_engine_file, parse_engine

EngineOption = Annotated[
    list[str] | None,
    typer.Option(
        "--engine",
        help="a Docker engine for the devices' TPMs (repeatable; implies --backend docker): "
        "URL[,bind=ADDR][,publish-host=HOST][,weight=N][,tls=CERT_DIR], e.g. unix:///run/docker.sock, "
        "tcp://farm:2376,bind=10.0.0.7,tls=certs, ssh://ci@builder,bind=10.0.0.8. Weight: its CPUs",
    ),
]
EnginesFileOption = Annotated[
    Path | None,
    typer.Option("--engines", help="YAML file with an 'engines:' list, each as --engine takes it"),
]
ServerBindOption = Annotated[
    str,
    typer.Option(
        "--server-bind",
        help="address the embedded reference server listens on (other machines reach it there)",
    ),
]


SwarmOption = Annotated[
    bool,
    typer.Option(
        "--swarm",
        help="run each device (its TPM and its client) as a task of a Docker Swarm replicated job on "
        "the swarm DOCKER_HOST names (the same as --backend swarm)",
    ),
]


def backend_option(
    backend: str | None, engines: list[str] | None, engines_file: Path | None, swarm: bool = False
) -> BackendSpec | None:
    """--backend with the engines of --engine and --engines; HarnessError names what is wrong."""
    if swarm:
        if engines or engines_file is not None or (backend and backend != "swarm"):
            raise HarnessError("--swarm runs devices as Swarm tasks: give it without --backend or --engine")
        return BackendSpec("swarm")
    named = [parse_engine(text) for text in engines or []]
    if engines_file is not None:
        named += load_engine_file(engines_file)
    return engine_backend(BackendSpec.parse(backend) if backend else None, named)
