"""The lagging replica, a helper of several conditions: a second instance of the reference
server on the same storage and keys whose clock is two hours behind (failed time sync), as a
load balancer may pick. Its nonces and tokens were stale when issued."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from .. import HelperContext, helper_service

LAGGING_REPLICA = "lagging-replica"
REPLICA_LAG = dt.timedelta(hours=2)


class LaggingClock:
    """The system clock, behind by a fixed amount."""

    def __init__(self, lag: dt.timedelta) -> None:
        self.lag = lag

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) - self.lag


@helper_service(LAGGING_REPLICA, "a lagging replica")
@contextmanager
def _lagging_replica(context: HelperContext) -> Iterator[Mapping[str, str]]:
    if context.primary_data_dir is None:  # the primary is not ours: its storage is out of reach
        yield {}
        return
    from ...server import EmbeddedServer, ServerConfig

    config = ServerConfig(data_dir=context.primary_data_dir, manufacturer_roots=context.roots)
    with EmbeddedServer(config, clock=LaggingClock(REPLICA_LAG), host=context.host) as server:
        yield {"url": server.url}
