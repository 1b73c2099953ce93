"""How a step of the Windows client fails: the HRESULT Windows would report for it."""

from __future__ import annotations


class ClientFailure(Exception):
    """A step failed; `hresult` is what Windows would report for it.

    The TPM provider and the service client raise it with the HRESULT of what they
    met (a TPM response code, a refused connection, a service's answer); the flow
    decides what Windows does next.
    """

    def __init__(self, hresult: int, reason: str) -> None:
        super().__init__(reason)
        self.hresult = hresult
        self.reason = reason
