"""A small YAML file listing the Docker engines of a fleet (`harness run --engines FILE`).

    engines:
      - unix:///run/docker.sock                 # as --engine takes it, options after commas
      - url: tcp://tpm-farm.example:2376        # or spelled out
        bind: 10.0.0.7
        publish_host: tpm-farm.example
        weight: 8
        tls: certs/farm                         # relative to this file

Every error names the file, line and field.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._yamlfile import more_errors, parse_mapping, read_text
from ..errors import EngineFileError, HarnessError
from ._engines import Engine, parse_engine


class EngineEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    url: str = Field(min_length=1)
    bind: str | None = None
    publish_host: str | None = None
    weight: int | None = Field(default=None, ge=1)
    tls: str | None = None

    def spec(self, base: Path) -> str:
        parts = [self.url]
        if self.bind:
            parts.append(f"bind={self.bind}")
        if self.publish_host:
            parts.append(f"publish-host={self.publish_host}")
        if self.weight is not None:
            parts.append(f"weight={self.weight}")
        if self.tls:
            parts.append(f"tls={base / self.tls}")
        return ",".join(parts)


class EngineFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    engines: list[str | EngineEntry] = Field(min_length=1)


def _message(error: Any) -> str:
    return "unknown field" if error["type"] == "extra_forbidden" else str(error["msg"])


def parse_engine_file(text: str, source: str = "<engines>", base: Path = Path(".")) -> list[Engine]:
    """The engines of the file, in order; EngineFileError names the file, line and field."""
    document = parse_mapping(
        text, source, EngineFileError, "an engines file is a mapping with an 'engines' list"
    )
    try:
        parsed = EngineFile.model_validate(document.data)
    except ValidationError as exc:
        first = exc.errors()[0]
        # A union reports its member's name in the location; the entry's index is what a user needs.
        location = tuple(p for p in first["loc"] if p not in ("str", "EngineEntry"))
        raise document.error(location, _message(first) + more_errors(len(exc.errors()) - 1)) from exc
    engines: list[Engine] = []
    for index, entry in enumerate(parsed.engines):
        spec = entry if isinstance(entry, str) else entry.spec(base)
        try:
            engines.append(parse_engine(spec))
        except HarnessError as exc:
            raise document.error(("engines", index), str(exc)) from exc
    _check_distinct(engines, document.error)
    return engines


def _check_distinct(engines: Sequence[Engine], error: Any) -> None:
    seen: dict[str, int] = {}
    for index, engine in enumerate(engines):
        if engine.url in seen:
            raise error(("engines", index), f"engine {engine.url} is listed twice")
        seen[engine.url] = index


def load_engine_file(path: Path) -> list[Engine]:
    return parse_engine_file(read_text(path, EngineFileError), str(path), base=path.parent)
