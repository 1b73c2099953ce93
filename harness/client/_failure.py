"""How a step of the Windows client fails: the HRESULT Windows would report for it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
E = TypeVar("E", bound=Exception)


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


class AuthenticationRefused(ClientFailure):
    """The service answered 401: it did not accept the device's token or credential."""


def reported(
    error: type[E], failure: Callable[[E], ClientFailure]
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A decorator: an `error` raised in the method becomes the ClientFailure `failure` makes of it."""

    def decorate(method: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(method)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return method(*args, **kwargs)
            except error as exc:
                raise failure(exc) from exc

        return call

    return decorate
