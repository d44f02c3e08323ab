"""Operator command for the pool of WPPConnect hosts.

    python -m wa_gateway.host.cli list
    python -m wa_gateway.host.cli add NAME URL --capacity N     # secret: $WPP_HOST_SECRET_KEY
    python -m wa_gateway.host.cli set NAME [--capacity N] [--state active|draining|down]
    python -m wa_gateway.host.cli remove NAME
    python -m wa_gateway.host.cli webhook NAME                   # what to configure on the host

It uses the functions' own settings from the environment (``DATABASE_URL``, or
``SUPABASE_URL`` with ``SUPABASE_SERVICE_ROLE_KEY``; ``ENCRYPTION_KEY`` to encrypt a host's
secret key; ``QR_WEBHOOK_VERIFY_TOKEN`` and ``WEBHOOK_PUBLIC_URL`` for ``webhook``). A host's
secret key is read from ``WPP_HOST_SECRET_KEY`` or asked for, never taken as an argument (it
would stay in the shell's history), and is stored encrypted. ``add`` checks the host first:
it must answer ``/healthz`` and accept the secret key.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from urllib.parse import urlsplit

from wa_gateway.auth.webhook_proof import host_verify_token
from wa_gateway.errors import HostError, HostTimeout, SettingsError
from wa_gateway.host.client import HostClient
from wa_gateway.host.directory import host_secret_context
from wa_gateway.needs import check_host_secret_key, require
from wa_gateway.settings import Settings
from wa_gateway.store import Store, create_store

STATES = ("active", "draining", "down")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hosts", description="Manage the WPPConnect host pool.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the hosts, their state, load and last health check")
    add = commands.add_parser("add", help="add a host (or replace one of the same name)")
    add.add_argument("name")
    add.add_argument("url")
    add.add_argument("--capacity", type=int, required=True)
    add.add_argument("--no-check", action="store_true", help="do not call the host first")
    change = commands.add_parser("set", help="change a host's capacity or state")
    change.add_argument("name")
    change.add_argument("--capacity", type=int)
    change.add_argument("--state", choices=STATES)
    remove = commands.add_parser("remove", help="remove a host that holds no session")
    remove.add_argument("name")
    hook = commands.add_parser("webhook", help="the x-verify token and URL of a host")
    hook.add_argument("name")
    args = parser.parse_args(argv)

    try:
        settings = require(Settings.load(), ["store"])
        store = create_store(settings)
        return _run(args, settings, store)
    except (SettingsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    if args.command == "list":
        hosts = store.hosts()
        if not hosts:
            print("No hosts: sessions go to WPP_SERVER_URL.")
        for h in hosts:
            health = "never checked"
            if h.last_health_at:
                health = ("ok" if h.last_health_ok else f"failed ({h.last_error})") + (
                    f" at {h.last_health_at}"
                )
            print(f"{h.name:20} {h.state:9} {h.sessions:>5}/{h.capacity:<5} {h.url}  {health}")
        return 0
    if args.command == "add":
        url = args.url.rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("URL must be http(s)://host[:port]")
        if args.capacity < 1:
            raise ValueError("--capacity must be at least 1")
        secret = os.environ.get("WPP_HOST_SECRET_KEY") or getpass.getpass("Host SECRET_KEY: ")
        if not secret:
            raise ValueError("the host's secret key is empty")
        check_host_secret_key("the host's secret key", secret)
        if not args.no_check:
            _check(url, secret)
        ciphertext = require(settings, ["crypto"]).keyring.encrypt(
            secret, context=host_secret_context(url)
        )
        added = store.put_host(
            args.name, url=url, secret_key=ciphertext, capacity=args.capacity, state="active"
        )
        print(f"added {added.name} ({added.id}): {added.url}, capacity {added.capacity}")
        return 0
    if args.command == "set":
        if args.capacity is None and args.state is None:
            raise ValueError("give --capacity and/or --state")
        changed = store.put_host(args.name, capacity=args.capacity, state=args.state)
        print(f"{changed.name}: {changed.state}, capacity {changed.capacity}")
        return 0
    if args.command == "remove":
        if not store.remove_host(args.name):
            print(f"no host named {args.name}", file=sys.stderr)
            return 1
        print(f"removed {args.name}")
        return 0
    # webhook
    host = next((h for h in store.hosts() if h.name == args.name), None)
    if host is None:
        print(f"no host named {args.name}", file=sys.stderr)
        return 1
    require(settings, ["webhook"])
    base = settings.webhook_public_url or "<the QrWebhookUrl output>"
    print("Sessions started on this host register their own webhook URL; nothing to set for")
    print("a stock server. A host or proxy that sends a header instead can use:")
    print(f"  URL:      {base}?host={host.id}")
    print(f"  x-verify: {host_verify_token(settings.webhook_verify_tokens[0], host.id)}")
    return 0


def _check(url: str, secret: str) -> None:
    client = HostClient(url, secret, connect_timeout_s=3, read_timeout_s=5)
    try:
        client.health()
    except (HostError, HostTimeout):
        raise ValueError(f"{url} does not answer /healthz") from None
    try:
        client.list_sessions()
    except (HostError, HostTimeout):
        raise ValueError(f"{url} refused the secret key") from None


if __name__ == "__main__":
    sys.exit(main())
