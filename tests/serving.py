"""The reference server's app in a test client, for tests of what the server answers.

Server errors come back as 500 responses rather than exceptions, so that "never a 500" is
something a test can see; the store is closed when the client is done.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient

from harness.server import Clock, ServerConfig, create_app


@contextmanager
def served(config: ServerConfig, clock: Clock | None = None) -> Iterator[TestClient]:
    app = create_app(config, clock)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client
    finally:
        app.state.context.store.close()
