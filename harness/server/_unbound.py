"""Records that no identity owns: made by enrollments that proved nothing, for ids nobody bound.

The server keeps them so that an admin sees the device that failed to authenticate ("Authentication
failed"), but a caller needs nothing to make one, so their number is bounded and stale ones go.
Functions over an open connection, called by the Store inside its transactions.
"""

from __future__ import annotations

import datetime as dt
import sqlite3

from ..errors import UnboundLimitError as UnboundLimitError
from ._schema import iso

_UNOWNED = "bound=0 AND claimed_by=''"


def make_room(
    db: sqlite3.Connection, emm_device_id: str, now: dt.datetime, stale_after: dt.timedelta, cap: int
) -> None:
    """Before an unowned record is created for a new id: drop stale unowned records, then
    refuse when `cap` remain. An id the server knows already needs no room."""
    if db.execute("SELECT 1 FROM devices WHERE emm_device_id=?", (emm_device_id,)).fetchone():
        return
    cutoff = iso(now - stale_after)
    stale = [
        row[0]
        for row in db.execute(
            f"SELECT emm_device_id FROM devices WHERE {_UNOWNED} AND last_checkin < ?", (cutoff,)
        )
    ]
    for device_id in stale:
        db.execute("DELETE FROM attempts WHERE emm_device_id=?", (device_id,))
        db.execute("DELETE FROM nonces WHERE emm_device_id=?", (device_id,))
        db.execute("DELETE FROM action_devices WHERE emm_device_id=?", (device_id,))
        db.execute("DELETE FROM devices WHERE emm_device_id=?", (device_id,))
    (count,) = db.execute(f"SELECT COUNT(*) FROM devices WHERE {_UNOWNED}").fetchone()
    if count >= cap:
        raise UnboundLimitError(
            f"the server holds {count} device records no credential or token proved, its limit"
        )
