"""The simulated Windows client, in three parts: the flow and Windows' rules (WindowsClient),
the TPM provider it asks for TPM work (TPMProvider; PytssTPM for any TCTI), and the service
client for the HTTP protocol (ServiceClient). TPM and service errors reach the flow as
ClientFailure, with the HRESULT Windows would report."""

from . import _templates as key_templates
from ._base import ClientReport
from ._config import ClientBehaviour, ClientConfig, Endpoints, Inventory
from ._entra import DeviceKey, SoftwareDeviceKey, TPMDeviceKey
from ._failure import ClientFailure
from ._provider import EndorsementKey, KeyBlob, LoadedKey, TPMProvider
from ._push import PushChannel, PushNote
from ._pytss import PytssTPM, probe_family, tpm_hresult
from ._schedule import Trigger, next_checkin, sync_delay
from ._service import AikChallenge, ServiceClient
from ._windows import WindowsClient

__all__ = [
    "AikChallenge",
    "ClientBehaviour",
    "ClientConfig",
    "ClientFailure",
    "ClientReport",
    "DeviceKey",
    "EndorsementKey",
    "Endpoints",
    "Inventory",
    "KeyBlob",
    "LoadedKey",
    "PushChannel",
    "PushNote",
    "PytssTPM",
    "ServiceClient",
    "SoftwareDeviceKey",
    "TPMDeviceKey",
    "TPMProvider",
    "Trigger",
    "WindowsClient",
    "key_templates",
    "next_checkin",
    "probe_family",
    "sync_delay",
    "tpm_hresult",
]
