"""The helper services a run's worlds need next to the reference server, started only when used.

Which helpers exist, and which device needs which, the world conditions say (harness.world):
a lagging replica of the server, another tenant's identity provider, the TPM vendors'
online EK-certificate service.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography import x509

from ..world import HelperContext, start_helpers
from ._plan import DevicePlan


@contextmanager
def auxiliary_services(
    plans: list[DevicePlan],
    workdir: Path,
    *,
    primary_data_dir: Path | None,
    roots: list[x509.Certificate],
    host: str = "127.0.0.1",
) -> Iterator[dict[str, dict[str, str]]]:
    """Start what the plans need; `primary_data_dir` is None when the primary is not ours.

    Yields what each running helper offers, by name (FleetEnvironment.helpers). `host`: where
    helpers that are servers listen, the primary's bind address."""
    context = HelperContext(workdir=workdir, roots=roots, primary_data_dir=primary_data_dir, host=host)
    with start_helpers((plan.world for plan in plans), context) as helpers:
        yield helpers
