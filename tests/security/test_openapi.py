"""The functions' OpenAPI description (``openapi.yaml``) against the functions themselves.

* Every route a function's resolver declares is in the description, and nothing else is.
  (Powertools can generate a description from a resolver, but not of these handlers: they
  parse their bodies by hand and answer ``Response`` objects, so the description is written
  from the contract and this test keeps the two together.)
* Schemathesis fuzzes the description through the local gateway, signed in as a linked user
  and with the webhook's proof: valid and invalid bodies, parameters and headers. No 5xx, every
  status and body as described, every error in the contract's shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from local.gateway import FUNCTIONS, handlers_in_process
from tests.conftest import Gateway, Simulator
from tests.e2e.flows import connected_user
from tests.security.inprocess import assert_error_shape

ROOT = Path(__file__).resolve().parents[2]
DESCRIPTION = ROOT / "openapi.yaml"
# What the local gateway hands to the functions (see local/gateway.py).
GATEWAY_METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def declared_routes(resolver: Any) -> set[tuple[str, str]]:
    """(method, path) of every route a Powertools resolver has."""
    routes = [*resolver._static_routes, *resolver._dynamic_routes]
    # Powertools names a path parameter <name>; OpenAPI, {name}.
    return {
        (route.method.upper(), route.path.replace("<", "{").replace(">", "}")) for route in routes
    }


def test_the_description_has_every_route_of_every_function(gateway: Gateway) -> None:
    described = yaml.safe_load(DESCRIPTION.read_text())["paths"]
    documented = {(method.upper(), path) for path, item in described.items() for method in item}
    expected: set[tuple[str, str]] = set()
    with handlers_in_process(gateway.env) as handlers:
        for prefix in FUNCTIONS:
            app = handlers[prefix].__globals__["app"]
            for method, path in declared_routes(app.resolver):
                expected.add((method, f"/{prefix}{path}"))
    assert documented == expected


@pytest.fixture(scope="module")
def linked(gateway: Gateway, simulator: Simulator) -> tuple[str, str]:
    _, token, session = connected_user(gateway, simulator, "schemathesis")
    return token, session


@pytest.fixture(scope="module")
def unlinked(gateway: Gateway) -> str:
    """The keys and endpoints are fuzzed by a user with no WhatsApp: no event of theirs ever
    goes to the URLs the fuzzer makes up."""
    return gateway.token_for(gateway.new_user("schemathesis-keys"))


described = schemathesis.openapi.from_path(str(DESCRIPTION))


@described.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_gateway_keeps_the_described_contract(
    case: Any, gateway: Gateway, linked: tuple[str, str], unlinked: str
) -> None:
    if case.method.upper() not in GATEWAY_METHODS:
        return  # the local gateway's HTTP server answers these itself (501), not a function
    token, session = linked
    if case.path == "/qr-webhook/":
        headers = {"x-verify": gateway.local_secrets.verify_token}
        if isinstance(case.body, dict) and "session" in case.body:
            case.body["session"] = session  # events for the linked user's session only
    elif case.path.startswith("/api-keys/"):
        headers = {"Authorization": f"Bearer {unlinked}"}
    else:
        headers = {"Authorization": f"Bearer {token}"}
    response = case.call(base_url=gateway.url, headers=headers, timeout=30)
    case.validate_response(response, checks=CHECKS, headers=headers)
    assert "Traceback" not in response.text
    if response.status_code >= 300:
        assert_error_shape(response.json())
