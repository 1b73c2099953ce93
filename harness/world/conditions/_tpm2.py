"""The rule several TPM conditions share: what they do needs a TPM 2.0."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import Setting

if TYPE_CHECKING:
    from ...scenario import ResolvedGroup


def needs_tpm2(group: ResolvedGroup, setting: Setting[Any]) -> str | None:
    family = group.tpm.family
    if family != "2.0" and setting.of(group) != setting.default:
        return f"{setting.path} needs a TPM 2.0 (this group's tpm.family is {family})"
    return None
