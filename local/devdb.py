"""The local database: an embedded PostgreSQL set up like a Supabase project.

``DATABASE_URL`` may point at any PostgreSQL instead; otherwise the ``pgserver`` wheel runs a
real PostgreSQL 16 from a data folder. Either way the server gets Supabase's roles (the
superuser is ``supabase_admin``; ``postgres`` is not a superuser), the database gets the
Supabase look-alike bootstrap (``auth`` schema, ``supabase_realtime``, default privileges),
then the Supabase CLI applies ``supabase/migrations/`` as ``postgres`` (``supabase db push``,
recording them in its own ``supabase_migrations.schema_migrations``), then the dev users.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP_SQL = Path(__file__).resolve().parent / "supabase_bootstrap.sql"
MIGRATIONS_DIR = ROOT / "supabase" / "migrations"
# The pinned Supabase CLI (package.json), installed by `make supabase-cli` (npm ci).
SUPABASE_CLI = ROOT / "node_modules" / ".bin" / "supabase"

ADMIN_ROLE = "supabase_admin"  # the superuser, as on Supabase
OWNER_ROLE = "postgres"  # owns the database and applies the migrations, as on Supabase
_HANDOVER_ROLE = "wa_bootstrap_handover"  # exists only while the superuser is being renamed

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
    """Shape the server like Supabase, bootstrap and migrate the database at ``dsn`` and seed
    it; safe to run again.

    ``dsn`` names the server's ``postgres`` role (or, the first time, any superuser); the
    password in it, if any, becomes ``supabase_admin``'s and ``postgres``'s.
    """
    _ensure_admin(dsn)
    with psycopg.connect(as_role(dsn, ADMIN_ROLE), autocommit=True) as conn:
        conn.execute(BOOTSTRAP_SQL.read_text())
        foreign = conn.execute(
            "select string_agg(tablename || ' (' || tableowner || ')', ', ') from pg_tables"
            " where schemaname in ('public', 'supabase_migrations') and tableowner <> %s",
            (OWNER_ROLE,),
        ).fetchone()
    if foreign and foreign[0]:
        raise RuntimeError(
            f"tables not owned by {OWNER_ROLE}: {foreign[0]}. This database was migrated before"
            " the migrations ran as postgres: start from a fresh local database (make clean, or"
            " a new DATABASE_URL)"
        )
    push_migrations(dsn)
    for email in DEV_EMAILS:
        create_user(dsn, email, DEV_PASSWORD, user_id=dev_user_id(email))


def as_role(dsn: str, role: str) -> str:
    """``dsn`` with another user name (same server, database and password)."""
    return make_conninfo(dsn, user=role)


def _ensure_admin(dsn: str) -> None:
    """Make ``supabase_admin`` the server's superuser and ``postgres`` an ordinary role.

    On Supabase the superuser made by initdb is ``supabase_admin``. A server made by
    ``initdb -U postgres`` (pgserver's) has ``postgres`` as that superuser, which PostgreSQL
    refuses to demote: so it is renamed ``supabase_admin``, from a short-lived second
    superuser, and a new ``postgres`` is created (the bootstrap gives it its attributes).
    """
    password = str(conninfo_to_dict(dsn).get("password") or "") or None
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "select (select rolname from pg_roles where oid = 10),"
            " exists (select from pg_roles where rolname = %s),"
            " (select rolsuper from pg_roles where rolname = current_user)",
            (ADMIN_ROLE,),
        ).fetchone()
        assert row is not None
        initdb_user, admin_exists, is_super = row
        if admin_exists:
            return
        if not is_super:
            raise RuntimeError(
                f"{ADMIN_ROLE} does not exist and the database URL's role is not a superuser"
            )
        if initdb_user != OWNER_ROLE:
            conn.execute(_create_role(ADMIN_ROLE, password, superuser=True))
            return
        conn.execute(_create_role(_HANDOVER_ROLE, password, superuser=True))
    with psycopg.connect(as_role(dsn, _HANDOVER_ROLE), autocommit=True) as conn:
        conn.execute(
            sql.SQL("alter role {} rename to {}").format(
                sql.Identifier(OWNER_ROLE), sql.Identifier(ADMIN_ROLE)
            )
        )
        if password:  # renaming clears an MD5 password
            conn.execute(
                sql.SQL("alter role {} password {}").format(
                    sql.Identifier(ADMIN_ROLE), sql.Literal(password)
                )
            )
        conn.execute(_create_role(OWNER_ROLE, password, superuser=False))
    with psycopg.connect(as_role(dsn, ADMIN_ROLE), autocommit=True) as conn:
        conn.execute(sql.SQL("drop role {}").format(sql.Identifier(_HANDOVER_ROLE)))


def _create_role(name: str, password: str | None, *, superuser: bool) -> sql.Composed:
    statement = sql.SQL("create role {} login {}").format(
        sql.Identifier(name), sql.SQL("superuser" if superuser else "nosuperuser")
    )
    if password:
        statement += sql.SQL(" password {}").format(sql.Literal(password))
    return statement


def cli_db_url(dsn: str, role: str = OWNER_ROLE) -> str:
    """``dsn`` as the URL the Supabase CLI takes (``--db-url``), for ``role``.

    The CLI's parser wants a host name, so a Unix socket directory goes in ``?host=``.
    """
    params = conninfo_to_dict(dsn)
    host = str(params.get("host") or "localhost")
    query: dict[str, str] = {}
    if host.startswith("/"):
        query["host"] = host
        host = "localhost"
    for key in ("sslmode", "sslrootcert", "connect_timeout"):
        if params.get(key):
            query[key] = str(params[key])
    user = quote(role, safe="")
    password = params.get("password")
    if password:
        user += ":" + quote(str(password), safe="")
    port = f":{params['port']}" if params.get("port") else ""
    dbname = quote(str(params.get("dbname") or "postgres"), safe="")
    url = f"postgresql://{user}@{host}{port}/{dbname}"
    return f"{url}?{urlencode(query)}" if query else url


def push_migrations(dsn: str) -> None:
    """Apply the migrations not yet applied, as ``postgres``, with the pinned Supabase CLI:
    ``supabase db push``, exactly as for a Supabase project, with no network needed."""
    if not SUPABASE_CLI.exists():
        raise RuntimeError(
            "the Supabase CLI is not installed: run `make supabase-cli` (npm ci) first"
        )
    env = {**os.environ, "SUPABASE_TELEMETRY_DISABLED": "1", "DO_NOT_TRACK": "1"}
    command = [str(SUPABASE_CLI), "db", "push", "--db-url", cli_db_url(dsn), "--yes"]
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"supabase db push failed:\n{done.stdout}{done.stderr}")


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
