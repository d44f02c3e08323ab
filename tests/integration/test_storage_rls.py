"""The whatsapp-media bucket and its policies on storage.objects, acting directly as each
database role, as Supabase Storage does for each request.

alice has an upload (``<alice>/outgoing/``) and a received file (``<alice>/<session>/``); bob
has an upload; anon is signed out. Every case runs in a transaction that is rolled back.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import errors
from psycopg.types.json import Jsonb

from tests.conftest import as_role
from tests.integration.store_helpers import new_user
from tests.rows import one

BUCKET = "whatsapp-media"


@dataclass(frozen=True)
class World:
    alice: str
    bob: str
    alice_upload: str
    alice_received: str
    bob_upload: str


@pytest.fixture(scope="module")
def world(database: str) -> Iterator[World]:
    alice, bob = new_user(database, "st-alice").id, new_user(database, "st-bob").id
    made = World(
        alice=alice,
        bob=bob,
        alice_upload=f"{alice}/outgoing/photo.jpg",
        alice_received=f"{alice}/{uuid.uuid4()}/voice.ogg",
        bob_upload=f"{bob}/outgoing/doc.pdf",
    )
    names = (made.alice_upload, made.alice_received, made.bob_upload)
    with psycopg.connect(database, autocommit=True) as conn:
        for name in names:
            conn.execute(
                "insert into storage.objects (bucket_id, name, metadata) values (%s, %s, '{}')",
                (BUCKET, name),
            )
    yield made
    with psycopg.connect(database) as conn:
        delete_as_the_storage_api(conn, list(names))


@pytest.fixture()
def tx(database: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database) as conn, conn.transaction(force_rollback=True):
        yield conn


def visible(conn: psycopg.Connection[Any], world: World) -> set[str]:
    rows = conn.execute(
        "select name from storage.objects where name = any(%s)",
        ([world.alice_upload, world.alice_received, world.bob_upload],),
    ).fetchall()
    return {r[0] for r in rows}


def set_metadata(
    conn: psycopg.Connection[Any], names: list[str], metadata: dict[str, Any]
) -> list[str]:
    """Replace the objects' metadata, as an upload with ``upsert`` does; the names updated."""
    rows = conn.execute(
        "update storage.objects set metadata = %s where name = any(%s) returning name",
        (Jsonb(metadata), names),
    ).fetchall()
    return [r[0] for r in rows]


def delete_as_the_storage_api(conn: psycopg.Connection[Any], names: list[str]) -> list[str]:
    """Delete objects by name in a transaction that says it is the Storage API's; the names
    deleted."""
    conn.execute("select set_config('storage.allow_delete_query', 'true', true)")
    rows = conn.execute(
        "delete from storage.objects where name = any(%s) returning name", (names,)
    ).fetchall()
    return [r[0] for r in rows]


def insert(conn: psycopg.Connection[Any], name: str, bucket: str = BUCKET) -> None:
    conn.execute("insert into storage.objects (bucket_id, name) values (%s, %s)", (bucket, name))


def test_the_bucket_is_private_with_whatsapps_size_and_types(database: str) -> None:
    public, size_limit, types = one(
        database,
        "select public, file_size_limit, allowed_mime_types from storage.buckets where id = %s",
        (BUCKET,),
    )
    assert public is False
    assert size_limit == 16 * 1024 * 1024
    assert {"image/jpeg", "video/mp4", "audio/ogg", "application/pdf", "text/plain"} <= set(types)
    assert "text/html" not in types and "image/svg+xml" not in types


def test_a_user_reads_everything_under_their_own_id_and_nothing_else(
    tx: psycopg.Connection[Any], world: World
) -> None:
    as_role(tx, "authenticated", world.alice)

    assert visible(tx, world) == {world.alice_upload, world.alice_received}


def test_another_user_reads_only_their_own(tx: psycopg.Connection[Any], world: World) -> None:
    as_role(tx, "authenticated", world.bob)

    assert visible(tx, world) == {world.bob_upload}


def test_anon_reads_nothing(tx: psycopg.Connection[Any], world: World) -> None:
    as_role(tx, "anon")

    assert visible(tx, world) == set()


def test_service_role_reads_everything(tx: psycopg.Connection[Any], world: World) -> None:
    as_role(tx, "service_role")

    assert visible(tx, world) == {world.alice_upload, world.alice_received, world.bob_upload}


def test_a_user_uploads_under_their_outgoing_folder(
    tx: psycopg.Connection[Any], world: World
) -> None:
    as_role(tx, "authenticated", world.alice)

    insert(tx, f"{world.alice}/outgoing/new.png")
    insert(tx, f"{world.alice}/outgoing/album/nested.png")

    count = tx.execute(
        "select count(*) from storage.objects where name like %s", (f"{world.alice}/outgoing/%",)
    ).fetchone()
    assert count == (3,)


@pytest.mark.parametrize(
    "where",
    [
        "{alice}/{session}/x.jpg",  # the received-media folders are the functions' to write
        "{alice}/x.jpg",
        "{alice}/Outgoing/x.jpg",
        "{bob}/outgoing/x.jpg",
        "outgoing/{alice}/x.jpg",
        "{alice}",
    ],
)
def test_a_user_cannot_upload_anywhere_else(
    tx: psycopg.Connection[Any], world: World, where: str
) -> None:
    as_role(tx, "authenticated", world.alice)
    name = where.format(alice=world.alice, bob=world.bob, session=uuid.uuid4())

    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        insert(tx, name)


def test_a_user_cannot_write_their_folder_in_another_bucket(
    tx: psycopg.Connection[Any], world: World
) -> None:
    other = f"other-{uuid.uuid4().hex[:8]}"
    tx.execute("insert into storage.buckets (id, name) values (%s, %s)", (other, other))
    as_role(tx, "authenticated", world.alice)

    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        insert(tx, f"{world.alice}/outgoing/x.jpg", bucket=other)


def test_anon_cannot_upload(tx: psycopg.Connection[Any], world: World) -> None:
    as_role(tx, "anon")

    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        insert(tx, f"{world.alice}/outgoing/x.jpg")


def test_a_user_replaces_their_upload_but_cannot_move_it_out_of_the_folder(
    tx: psycopg.Connection[Any], world: World
) -> None:
    as_role(tx, "authenticated", world.alice)

    replaced = set_metadata(tx, [world.alice_upload], {"size": 1})
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        tx.execute(
            "update storage.objects set name = %s where name = %s",
            (f"{world.alice}/elsewhere/photo.jpg", world.alice_upload),
        )

    assert replaced == [world.alice_upload]


def test_a_user_changes_no_received_media_and_nothing_of_another_user(
    tx: psycopg.Connection[Any], world: World
) -> None:
    as_role(tx, "authenticated", world.alice)

    updated = set_metadata(tx, [world.alice_received, world.bob_upload], {})
    deleted = delete_as_the_storage_api(tx, [world.alice_received, world.bob_upload])

    assert updated == [] and deleted == []


def test_a_user_deletes_their_own_upload(tx: psycopg.Connection[Any], world: World) -> None:
    as_role(tx, "authenticated", world.alice)

    deleted = delete_as_the_storage_api(tx, [world.alice_upload, world.alice_received])

    assert deleted == [world.alice_upload]


def test_rows_are_deleted_only_through_the_storage_api(
    tx: psycopg.Connection[Any], world: World
) -> None:
    """As on Supabase: a direct delete, even by the service role, is refused unless the
    transaction says it is the Storage API's (which also removes the bytes)."""
    as_role(tx, "service_role")

    with pytest.raises(errors.InsufficientPrivilege, match="Storage API"):
        tx.execute("delete from storage.objects where name = %s", (world.alice_upload,))


def test_storage_tables_belong_to_storage_and_postgres_may_manage_their_policies(
    database: str,
) -> None:
    """As on a Supabase project: the tables are supabase_storage_admin's and postgres is a
    member of that role, which is what lets a migration run as postgres create policies."""
    with psycopg.connect(database) as conn:
        owners = conn.execute(
            "select relname::text, pg_get_userbyid(relowner)::text, relrowsecurity"
            " from pg_class where relnamespace = 'storage'::regnamespace"
            " and relname in ('buckets', 'objects') order by 1"
        ).fetchall()
        member = conn.execute(
            "select pg_has_role('postgres', 'supabase_storage_admin', 'USAGE')"
        ).fetchone()
        policies = conn.execute(
            "select cmd, roles::text[] from pg_policies"
            " where schemaname = 'storage' and tablename = 'objects' order by cmd"
        ).fetchall()

    assert owners == [
        ("buckets", "supabase_storage_admin", True),
        ("objects", "supabase_storage_admin", True),
    ]
    assert member == (True,)
    assert policies == [
        ("DELETE", ["authenticated"]),
        ("INSERT", ["authenticated"]),
        ("SELECT", ["authenticated"]),
        ("UPDATE", ["authenticated"]),
    ]


def test_the_path_helpers_split_names_as_supabase_does(database: str) -> None:
    row = one(
        database,
        "select storage.foldername('u/outgoing/a.b.jpg'), storage.filename('u/outgoing/a.jpg'),"
        " storage.extension('u/outgoing/a.b.jpg'), storage.foldername('a.jpg')",
    )

    assert row == (["u", "outgoing"], "a.jpg", "jpg", [])
