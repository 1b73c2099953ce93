"""Settings an external TPM cannot take: the harness would have to write to the TPM to make them.

A TPM the harness did not make (a group's `tpm.tcti`, or the `device:` backend for the
whole fleet) is used as it is. Its EK, its certificates, its state and its vendor strings
are the vendor's; setting them in a scenario would silently mean nothing, so it is refused.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ScenarioError
from ..tpm import BackendSpec
from ._model import ResolvedGroup, Scenario, TPMSettings


def manufacturing_settings(tpm: TPMSettings) -> list[str]:
    """The settings (other than tcti) that differ from a default TPM: each one is made by
    writing the TPM's NV, objects or hierarchy authorisation, which an external TPM forbids."""
    return [
        name
        for name, info in type(tpm).model_fields.items()
        if name != "tcti" and getattr(tpm, name) != info.default
    ]


def external_tpm_conflict(group: ResolvedGroup, source: str, why: str) -> ScenarioError | None:
    """The error for the first tpm setting of `group` that an external TPM cannot take."""
    for name in manufacturing_settings(group.tpm):
        field, line = group.tpm_settings_at.get(name, (f"tpm.{name}", group.line))
        return ScenarioError(
            source,
            line,
            field,
            f"{why} runs as it is: the harness would have to write its NV, objects or hierarchy "
            f"authorisation to give it tpm.{name}, and never does (remove the setting)",
        )
    return None


def refuse_settings_for_backend(scenarios: Sequence[Scenario], backend: BackendSpec) -> None:
    """Raise ScenarioError when the `device:` backend would silently ignore a group's tpm settings."""
    if not BackendSpec.parse(str(backend)).tcti:
        return
    for scenario in scenarios:
        for group in scenario.groups:
            if group.tpm.tcti is not None:
                continue  # the group's own external TPM, checked when the file was read
            error = external_tpm_conflict(group, scenario.path, f"the external TPM of backend '{backend}'")
            if error is not None:
                raise error
