"""The purge's part for received files: a message's files go with it, whatever deleted it (the
retention, ``MESSAGE_RETENTION``, or a user's account deleted). Storage deletes an object only
through its API, so the database keeps the names of a deleted message's files
(``whatsapp_media_trash``, a trigger) and the purge deletes them through Storage, then the
names. A session purged keeps its messages, and so their files.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from wa_gateway.errors import StoreUnavailable
from wa_gateway.observability import logger
from wa_gateway.store import Store

if TYPE_CHECKING:
    from wa_gateway.media.storage import MediaStore

FILES_PER_CALL = 100  # object names per Storage delete


class FilesDeleted(NamedTuple):
    deleted: int
    storage_errors: int
    complete: bool  # False: some wait for a later run


def delete_files_of_deleted_messages(
    store: Store,
    media_store: Callable[[], MediaStore],
    paths: list[str],
    time_left: Callable[[], bool],
) -> FilesDeleted:
    """Delete the files of deleted messages through Storage (``paths``, the first page, then
    more while pages come back full and ``time_left()``), then forget their names; when
    Storage fails they wait for a later run."""
    from wa_gateway.media.storage import StorageRefused

    deleted = 0
    while paths:
        try:
            deleted += len(media_store().delete(paths))
        except (StoreUnavailable, StorageRefused):
            logger.warning("purge could not delete files of deleted messages")
            return FilesDeleted(deleted, 1, False)
        store.forget_media_trash(paths)
        if len(paths) < FILES_PER_CALL:
            break
        if not time_left():
            return FilesDeleted(deleted, 0, False)
        paths = store.media_trash(FILES_PER_CALL)
    return FilesDeleted(deleted, 0, True)
