"""The store's housekeeping calls: the purge job's batches and the pool of hosts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from wa_gateway.records import HostEntry, HostRecord
from wa_gateway.store.sql_records import sql_record
from wa_gateway.store.transport import Transport

if TYPE_CHECKING:  # the purge's records: imported by the calls that make them
    from wa_gateway.pass_records import (
        PurgeBatch,
        PurgedSession,
        PurgeLimits,
        PurgePass,
        StoredToken,
    )


class HousekeepingCalls:
    """The part of :class:`wa_gateway.store.Store` the purge job and the operator's host
    command use."""

    transport: Transport

    def purge_batch(self, *, qr_ttl_s: int, stale_after_s: int, batch_size: int) -> PurgeBatch:
        result = self.transport.rpc(
            "gateway_purge_batch",
            {
                "p_qr_ttl_s": qr_ttl_s,
                "p_stale_after_s": stale_after_s,
                "p_batch_size": batch_size,
            },
        )
        return _purge_batch(result)

    def purge_first_pass(self, limits: PurgeLimits) -> PurgePass:
        """The host pool and the first batch of every housekeeping task, in one round trip;
        no tokens to re-encrypt when ``limits.active_key_id`` is None."""
        from wa_gateway.pass_records import PurgePass

        result = self.transport.rpc("gateway_purge_first_pass", {"p_limits": sql_record(limits)})
        return PurgePass(
            hosts=_host_records(result["hosts"]),
            batch=_purge_batch(result["batch"]),
            events_deleted=int(result["events_deleted"]),
            tokens=_stored_tokens(result["tokens"]),
            messages_deleted=int(result["messages_deleted"]),
            trash=[str(path) for path in result["trash"]],
        )

    def tokens_to_reencrypt(
        self, *, active_key_id: str, after: str | None, limit: int
    ) -> list[StoredToken]:
        """Stored host tokens not under the active key, ordered by session row id."""
        rows = self.transport.rpc(
            "gateway_tokens_to_reencrypt",
            {"p_active_key_id": active_key_id, "p_after": after, "p_limit": limit},
        )
        return _stored_tokens(rows)

    def replace_tokens(self, replacements: list[dict[str, str]]) -> int:
        """Store re-encrypted tokens: ``{session_id, old_token, host_token}``, compare-and-swap."""
        return int(self.transport.rpc("gateway_replace_tokens", {"p_tokens": replacements}))

    def purge_older(
        self, rows: Literal["events", "messages"], *, retention_s: int, batch_size: int
    ) -> int:
        """Delete a batch of the events or messages older than ``retention_s`` (a message's
        files go to the trash the purge empties); 0 when ``retention_s`` is 0 (they are kept)."""
        return int(
            self.transport.rpc(
                "gateway_purge_older",
                {"p_rows": rows, "p_retention_s": retention_s, "p_batch_size": batch_size},
            )
        )

    # --- the host pool ----------------------------------------------------------------------

    def hosts(self) -> list[HostRecord]:
        return _host_records(self.transport.rpc("gateway_hosts", {}))

    def put_host(
        self,
        name: str,
        *,
        url: str | None = None,
        secret_key: str | None = None,
        capacity: int | None = None,
        state: str | None = None,
    ) -> HostEntry:
        """Add a host (``url`` given) or change one (only what is given)."""
        result = self.transport.rpc(
            "gateway_put_host",
            {
                "p_name": name,
                "p_url": url,
                "p_secret_key": secret_key,
                "p_capacity": capacity,
                "p_state": state,
            },
        )
        return HostEntry.from_row(result)

    def remove_host(self, name: str) -> bool:
        return bool(self.transport.rpc("gateway_remove_host", {"p_name": name}))

    def host_sessions(self, host_id: str, *, idle_before: str | None = None) -> list[PurgedSession]:
        """The sessions holding a browser on a host (only those idle since, if given)."""
        from wa_gateway.pass_records import PurgedSession

        rows = self.transport.rpc(
            "gateway_host_sessions", {"p_host_id": host_id, "p_idle_before": idle_before}
        )
        return [PurgedSession(r["session_id"], host_id, r.get("host_token")) for r in rows]

    def mark_host(self, host_id: str, *, ok: bool, error: str | None, mark_down: bool) -> int:
        """Record a health check; marking a host down disconnects its sessions (returned)."""
        result = self.transport.rpc(
            "gateway_mark_host",
            {"p_host_id": host_id, "p_ok": ok, "p_error": error, "p_mark_down": mark_down},
        )
        return int(result["sessions_disconnected"])


def _purge_batch(result: Mapping[str, Any]) -> PurgeBatch:
    from wa_gateway.pass_records import PurgeBatch, PurgedSession

    return PurgeBatch(
        qr_cleared=int(result["qr_cleared"]),
        deleted=[
            PurgedSession(d["session_id"], d.get("host_id"), d.get("host_token"))
            for d in result["deleted"]
        ],
        scheduled_failed=int(result["scheduled_failed"]),
    )


def _stored_tokens(rows: list[Mapping[str, Any]]) -> list[StoredToken]:
    from wa_gateway.pass_records import StoredToken

    return [StoredToken(r["session_id"], r["name"], r["host_token"]) for r in rows]


def _host_records(rows: list[Mapping[str, Any]]) -> list[HostRecord]:
    return [HostRecord.from_row(r) for r in rows]
