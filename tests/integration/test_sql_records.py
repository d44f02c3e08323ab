"""Records into SQL: what the store sends is what the SQL functions read.

A SQL function reads a record through its composite type (``jsonb_populate_record``), which
passes over, without a word, a key the type has no attribute for. So the fields of each record
the store sends (``sql_records.SQL_TYPES``) are compared with the attributes of its type, both
ways: a field the Python side sends that the SQL would not read fails here, and so does an
attribute no record sends. A nested record (a message's file, a finding's messages) is compared
with the type of its attribute the same way, and every record type in the schema is one the
store sends.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from typing import Any, NamedTuple

import psycopg
import pytest

from wa_gateway.event_records import InboundMessage, IncomingFile
from wa_gateway.store.sql_records import record_classes, sql_record

SQL_TYPES = record_classes()


class Attribute(NamedTuple):
    name: str
    type: str
    record_type: str | None  # the composite type it is, or holds an array of


@pytest.fixture(scope="module")
def conn(database: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database) as connection:
        yield connection


def attributes(conn: psycopg.Connection[Any], type_name: str) -> list[Attribute]:
    rows = conn.execute(
        "select a.attname, t.typname,"
        "       case when t.typtype = 'c' then t.typname when e.typtype = 'c' then e.typname end"
        " from pg_type c"
        " join pg_attribute a on a.attrelid = c.typrelid and a.attnum > 0 and not a.attisdropped"
        " join pg_type t on t.oid = a.atttypid"
        " left join pg_type e on e.oid = t.typelem"
        " where c.typname = %s and c.typnamespace = 'public'::regnamespace",
        (type_name,),
    ).fetchall()
    return [Attribute(*row) for row in rows]


def records_in(hint: Any) -> set[type[Any]]:
    """The record classes a field's type names: itself, in an optional, or in a tuple."""
    if isinstance(hint, type) and issubclass(hint, tuple) and hasattr(hint, "_fields"):
        return {hint}
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) in (typing.Union, tuple):
        return {found for arg in typing.get_args(hint) for found in records_in(arg)}
    return set()


@pytest.mark.parametrize(
    "record", sorted(SQL_TYPES, key=lambda r: r.__name__), ids=lambda r: r.__name__
)
def test_every_field_a_record_sends_is_an_attribute_of_its_sql_type(
    conn: psycopg.Connection[Any], record: type[Any]
) -> None:
    found = attributes(conn, SQL_TYPES[record])
    hints = typing.get_type_hints(record)

    assert found, f"no composite type {SQL_TYPES[record]} in public"
    assert sorted(record._fields) == sorted(a.name for a in found)
    for attribute in found:
        nested = records_in(hints[attribute.name])
        if attribute.record_type is not None:
            # Read through its own type: the field must hold the record of that type.
            assert {SQL_TYPES.get(r) for r in nested} == {attribute.record_type}, attribute
        else:
            # Sent whole inside jsonb (an event's args): read by its own type further on.
            assert nested <= set(SQL_TYPES), attribute


def test_every_record_type_in_the_schema_is_one_the_store_sends(
    conn: psycopg.Connection[Any],
) -> None:
    composite = {
        name
        for (name,) in conn.execute(
            "select t.typname from pg_type t join pg_class c on c.oid = t.typrelid"
            " where t.typnamespace = 'public'::regnamespace and c.relkind = 'c'"
        )
    }
    assert composite == set(SQL_TYPES.values())


def test_a_record_is_read_back_whole_through_its_type(conn: psycopg.Connection[Any]) -> None:
    """What the functions read is what was sent, nested record included."""
    message = InboundMessage(
        "u_x",
        "false_1@c.us_3A",
        "5511987654321",
        "see",
        "Ana",
        "document",
        False,
        "5511912345678",
        "123456789012345",
        IncomingFile("application/pdf", "menu.pdf", 1234, "pdf", "pending"),
    )
    sent = sql_record(message)
    row = conn.execute(
        "select to_jsonb(jsonb_populate_record(null::public.gateway_inbound_message, %s::jsonb))",
        (psycopg.types.json.Jsonb(sent),),
    ).fetchone()
    assert row is not None and row[0] == sent


def test_a_record_the_sql_functions_do_not_read_is_refused() -> None:
    with pytest.raises(TypeError):
        sql_record(Attribute("a", "text", None))
