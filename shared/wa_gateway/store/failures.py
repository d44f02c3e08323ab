"""The one map from a failed database call to what the gateway does about it, for both
transports: which failures mean the store is unavailable (``StoreUnavailable``, 503
``store_unavailable``), and which of those may be tried once more at once.

The psycopg transport looks up the SQLSTATE of its exception; the PostgREST transport the
``code`` of PostgREST's JSON error (the SQLSTATE, or PostgREST's own ``PGRST...``), or, for an
answer that is not PostgREST's (the API gateway's error page, a bare 5xx), the HTTP status.
Anything not in the map is not the store being unavailable (a refused grant, a bug in a SQL
function): it is raised as it is and answers 500.
"""

from __future__ import annotations

import json
from enum import Enum


class Retry(Enum):
    """Whether a failed call may be sent once more, on a fresh connection."""

    SAFE = "safe"
    """The database certainly did not apply the call (it rolled the transaction back, or was
    never reached) and a second try may well succeed: repeat any call."""
    IF_REPEATABLE = "if_repeatable"
    """The connection broke under the call, so it may have committed: repeat only a call whose
    repetition changes nothing (the transports do so only for a kept connection found dead)."""
    NEVER = "never"
    """Repeating would not help or is not known to be harmless: the time is spent (a
    timeout), or the database may have applied the call (the gateway answered in its place)."""


UNAVAILABLE_SQLSTATES: dict[str, Retry] = {
    "40001": Retry.SAFE,  # serialization failure: rolled back; Postgres asks for a retry
    "40P01": Retry.SAFE,  # deadlock detected: rolled back; the other transaction went on
    "40003": Retry.NEVER,  # statement completion unknown
    "57014": Retry.NEVER,  # statement timeout: rolled back, but the call's time is spent
    "55P03": Retry.NEVER,  # lock timeout: likewise
    "57P01": Retry.NEVER,  # the server is shutting down (admin, crash, cannot connect now)
    "57P02": Retry.NEVER,
    "57P03": Retry.NEVER,
    "PGRST000": Retry.SAFE,  # PostgREST could not connect to the database: nothing was sent
    "PGRST001": Retry.NEVER,  # PostgREST's connection failed under the call
    "PGRST002": Retry.NEVER,  # PostgREST has no schema cache yet (the database is starting)
    "PGRST003": Retry.NEVER,  # no pool connection within PostgREST's wait: the time is spent
}
UNAVAILABLE_SQLSTATE_CLASSES: dict[str, Retry] = {
    "08": Retry.NEVER,  # connection exception
    "53": Retry.NEVER,  # insufficient resources (too many connections, out of memory)
    "58": Retry.NEVER,  # system error (I/O)
}
CONNECTION_LOST = Retry.IF_REPEATABLE
"""A connection that broke with no SQLSTATE (closed by the server, a reset, a freeze)."""


def may_send_again(retry: Retry, *, repeatable: bool) -> bool:
    """Whether a call that failed so may be sent once more; ``repeatable``: running it twice
    changes nothing more than running it once."""
    return retry is Retry.SAFE or (retry is Retry.IF_REPEATABLE and repeatable)


def failure_of_sqlstate(code: str | None) -> Retry | None:
    """How to handle the SQLSTATE (or PostgREST code) ``code`` as an unavailable store; None
    when it is not one."""
    if not code:
        return None
    return UNAVAILABLE_SQLSTATES.get(code) or UNAVAILABLE_SQLSTATE_CLASSES.get(code[:2])


def failure_of_answer(status: int, body: bytes) -> Retry | None:
    """How to handle an HTTP error answer from Supabase's REST API as an unavailable store; None
    when it is not one. PostgREST's own errors are JSON with a ``code``; anything else came
    from the API gateway in front of it (or a proxy): a 5xx, or any answer that is not JSON,
    means the database was not reachable through it, and whether the call ran is unknown."""
    try:
        error = json.loads(body)
    except ValueError:
        return Retry.NEVER
    code = error.get("code") if isinstance(error, dict) else None
    if isinstance(code, str) and code:
        return failure_of_sqlstate(code)
    return Retry.NEVER if status >= 500 else None
