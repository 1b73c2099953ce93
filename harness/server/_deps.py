"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from fastapi import Request

from ._context import ServerContext


def context(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.context
    return ctx
