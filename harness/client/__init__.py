"""The simulated Windows client."""

from . import _templates as key_templates
from ._config import ClientBehaviour, ClientConfig, Endpoints, Inventory
from ._windows import ClientFailure, ClientReport, WindowsClient, tpm_hresult

__all__ = [
    "ClientBehaviour",
    "ClientConfig",
    "ClientFailure",
    "ClientReport",
    "Endpoints",
    "Inventory",
    "WindowsClient",
    "key_templates",
    "tpm_hresult",
]
