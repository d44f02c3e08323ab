"""The store's calls for received files: the media pass's claims, and the files of deleted
messages the purge deletes from the bucket."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from wa_gateway.store.sql_records import sql_record
from wa_gateway.store.transport import Transport

if TYPE_CHECKING:  # the media pass's records: imported by the call that makes them
    from wa_gateway.pass_records import MediaClaim, MediaFetch


class MediaCalls:
    """The part of :class:`wa_gateway.store.Store` for received files."""

    transport: Transport

    def claim_media(self, claim: MediaClaim) -> list[MediaFetch]:
        """Due files leased to this pass (each try counted); files tried too often are given
        up as unavailable on the way."""
        from wa_gateway.pass_records import MediaFetch

        rows = self.transport.rpc("gateway_claim_media", {"p_claim": sql_record(claim)})
        return [MediaFetch.from_json(row) for row in rows or ()]

    def media_trash(self, limit: int) -> list[str]:
        """The next files of deleted messages to delete from the bucket."""
        return [str(path) for path in self.transport.rpc("gateway_media_trash", {"p_limit": limit})]

    def forget_media_trash(self, paths: Sequence[str]) -> int:
        """Forget these files of deleted messages, once Storage has deleted them."""
        if not paths:
            return 0
        return int(self.transport.rpc("gateway_forget_media_trash", {"p_paths": list(paths)}))
