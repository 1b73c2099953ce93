"""How a step of the Windows client fails: the HRESULT Windows would report for it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from ..errors import AuthenticationRefused as AuthenticationRefused
from ..errors import ClientFailure as ClientFailure

P = ParamSpec("P")
R = TypeVar("R")
E = TypeVar("E", bound=Exception)


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
