"""Helper services some worlds need next to the reference server, started only when used.

A helper is registered by name with `@helper_service`; a condition names the helpers a
device needs (WorldCondition.helpers), and a run starts each wanted helper once, before
its devices, and stops it after them. A helper says what it offers as plain strings
('url', 'dir'), which travel to worker processes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import HarnessError
from ._registry import REGISTRY, WorldValues

if TYPE_CHECKING:
    from cryptography import x509


@dataclass(frozen=True)
class HelperContext:
    """What a helper may use: the run's work directory and vendor roots, and the primary
    server's storage (None when the primary is not the harness's own)."""

    workdir: Path
    roots: list[x509.Certificate]
    primary_data_dir: Path | None
    # Where a helper that is a server listens: the primary's bind address, so that devices
    # running elsewhere (Swarm tasks) reach it where they reach the primary.
    host: str = "127.0.0.1"


# Starts the helper; yields what it offers, or an empty mapping when it cannot run here.
HelperStart = Callable[[HelperContext], AbstractContextManager[Mapping[str, str]]]


@dataclass(frozen=True)
class HelperService:
    name: str
    what: str  # for errors: 'a lagging replica'
    start: HelperStart


HELPERS: dict[str, HelperService] = {}


def helper_service(name: str, what: str) -> Callable[[HelperStart], HelperStart]:
    """Register a helper service's start function under `name`."""

    def register(start: HelperStart) -> HelperStart:
        if name in HELPERS:
            raise HarnessError(f"the helper service {name!r} is registered twice")
        HELPERS[name] = HelperService(name, what, start)
        return start

    return register


def wanted_helpers(worlds: Iterable[WorldValues]) -> list[str]:
    """The helpers these devices need, in registration order."""
    wanted = {name for world in worlds for c in REGISTRY.conditions() for name in c.helpers(world)}
    unknown = sorted(wanted - HELPERS.keys())
    if unknown:
        raise HarnessError(f"no helper service named {', '.join(unknown)} is registered")
    return [name for name in HELPERS if name in wanted]


@contextmanager
def start_helpers(
    worlds: Iterable[WorldValues], context: HelperContext
) -> Iterator[dict[str, dict[str, str]]]:
    """Start what the devices need; yields what each running helper offers, by name."""
    with ExitStack() as stack:
        running: dict[str, dict[str, str]] = {}
        for name in wanted_helpers(worlds):
            offered = stack.enter_context(HELPERS[name].start(context))
            if offered:
                running[name] = dict(offered)
        yield running


def require_helper(running: Mapping[str, Mapping[str, str]], name: str) -> Mapping[str, str]:
    offered = running.get(name)
    if not offered:
        what = HELPERS[name].what if name in HELPERS else name
        raise HarnessError(f"this world needs {what}; the harness runs one only with its own server")
    return offered
