"""A container loads the CA bundle of its PostgREST client and of event delivery once."""

from __future__ import annotations

import ssl
from typing import Any

import pytest

from wa_gateway.store import PostgrestTransport


def test_store_transports_share_one_tls_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each load of a CA bundle costs tens of milliseconds of a cold start: a second transport
    (a second Supabase client of the same container) loads none."""
    loads: list[Any] = []
    load = ssl.SSLContext.load_verify_locations

    def counted(context: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args or kwargs)
        load(context, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    first = PostgrestTransport("https://project.supabase.co", "service-key")
    loaded_by_the_first = len(loads)
    second = PostgrestTransport("https://project.supabase.co", "service-key")
    first.close()
    second.close()
    assert loaded_by_the_first <= 1
    assert len(loads) == loaded_by_the_first, "the second transport loaded a CA bundle again"


def test_the_public_context_verifies_certificates_and_names() -> None:
    from wa_gateway.tls import public_context

    context = public_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.get_ca_certs() or context.cert_store_stats()["x509_ca"] > 0
