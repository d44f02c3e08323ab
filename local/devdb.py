"""The local database: an embedded PostgreSQL set up like a Supabase project.

``DATABASE_URL`` may point at any PostgreSQL instead; otherwise the ``pgserver`` wheel runs a
real PostgreSQL 16 from a data folder. Either way the database gets the Supabase look-alike
bootstrap (roles, ``auth`` schema, ``supabase_realtime``), then the migrations in
``supabase/migrations/`` in order, each once, then the dev users.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP_SQL = Path(__file__).resolve().parent / "supabase_bootstrap.sql"
MIGRATIONS_DIR = ROOT / "supabase" / "migrations"

DEV_PASSWORD = "password"  # noqa: S105 - the documented password of the local dev users
DEV_EMAILS = ("alice@example.com", "bob@example.com")


@dataclass(frozen=True)
class DevUser:
    id: str
    email: str


def dev_user_id(email: str) -> str:
    """A stable id per dev email, so a user keeps their id across stack restarts."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"dev-user:{email}"))


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL in ``data_dir``; return its URL.

    The server keeps running after this process exits, so the next start reuses it.
    """
    import pgserver  # a dev-only dependency, imported only when the embedded server is wanted

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode=None)
    return str(server.get_uri())


def stop_embedded(data_dir: Path) -> None:
    """Stop the embedded PostgreSQL in ``data_dir`` (fast shutdown), if it runs."""
    import subprocess

    import pgserver
    from pgserver._commands import create_command_function

    pg_ctl = create_command_function("pg_ctl")

    if not (data_dir / "postmaster.pid").exists():
        return
    server = pgserver.get_server(data_dir, cleanup_mode=None)
    with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)


def migration_files() -> list[Path]:
    return sorted(MIGRATIONS_DIR.glob("*.sql"))


def prepare(dsn: str) -> None:
    """Bootstrap, migrate and seed the database at ``dsn``; safe to run again."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(BOOTSTRAP_SQL.read_text())
        applied: dict[str, str | None] = dict(
            conn.execute(
                "select version, checksum from supabase_migrations.schema_migrations"
            ).fetchall()
        )
        for path in migration_files():
            version, _, name = path.stem.partition("_")
            text = path.read_text()
            checksum = hashlib.sha256(text.encode()).hexdigest()
            if version in applied:
                if applied[version] not in (None, checksum):
                    raise RuntimeError(
                        f"{path.name} changed after this database applied it: start from a"
                        " fresh local database (make clean, or a new DATABASE_URL)"
                    )
                continue
            with conn.transaction():
                conn.execute(text)
                conn.execute(
                    "insert into supabase_migrations.schema_migrations (version, name, checksum)"
                    " values (%s, %s, %s)",
                    (version, name, checksum),
                )
    for email in DEV_EMAILS:
        create_user(dsn, email, DEV_PASSWORD, user_id=dev_user_id(email))


def create_user(dsn: str, email: str, password: str, *, user_id: str | None = None) -> DevUser:
    """Insert a user into ``auth.users`` (as Supabase Auth would on sign-up); idempotent."""
    import bcrypt

    uid = user_id or str(uuid.uuid4())
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "insert into auth.users (id, email, encrypted_password) values (%s, %s, %s) "
            "on conflict (email) do update set email = excluded.email returning id",
            (uid, email, hashed),
        ).fetchone()
    assert row is not None
    return DevUser(id=str(row[0]), email=email)


def check_password(dsn: str, email: str, password: str) -> DevUser | None:
    """The user with this email and password, or None."""
    import bcrypt

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "select id, encrypted_password from auth.users where email = %s", (email,)
        ).fetchone()
    if row is None or not row[1]:
        return None
    if not bcrypt.checkpw(password.encode(), str(row[1]).encode()):
        return None
    return DevUser(id=str(row[0]), email=email)
