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
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._yamlfile import more_errors, parse_mapping, read_text
from ..errors import EngineFileError, HarnessError
from ._engines import Engine, parse_engine

_Model = TypeVar("_Model", bound=BaseModel)


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

    engines: list[Any] = Field(min_length=1)  # each checked on its own, for a precise message


def _message(error: Any) -> str:
    return "unknown field" if error["type"] == "extra_forbidden" else str(error["msg"])


def parse_engine_file(text: str, source: str = "<engines>", base: Path = Path(".")) -> list[Engine]:
    """The engines of the file, in order; EngineFileError names the file, line and field."""
    document = parse_mapping(
        text, source, EngineFileError, "an engines file is a mapping with an 'engines' list"
    )
    parsed = _validated(EngineFile, document.data, (), document.error)
    engines: list[Engine] = []
    for index, item in enumerate(parsed.engines):
        if isinstance(item, str):
            spec = item
        elif isinstance(item, dict):
            spec = _validated(EngineEntry, item, ("engines", index), document.error).spec(base)
        else:
            raise document.error(("engines", index), "an engine is a URL or a mapping with 'url'")
        try:
            engines.append(parse_engine(spec))
        except HarnessError as exc:
            raise document.error(("engines", index), str(exc)) from exc
    _check_distinct(engines, document.error)
    return engines


def _validated(model: type[_Model], data: Any, where: tuple[str | int, ...], error: Any) -> _Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise error((*where, *first["loc"]), _message(first) + more_errors(len(exc.errors()) - 1)) from exc


def _check_distinct(engines: Sequence[Engine], error: Any) -> None:
    seen: dict[str, int] = {}
    for index, engine in enumerate(engines):
        if engine.url in seen:
            raise error(("engines", index), f"engine {engine.url} is listed twice")
        seen[engine.url] = index


def load_engine_file(path: Path) -> list[Engine]:
    return parse_engine_file(read_text(path, EngineFileError), str(path), base=path.parent)
