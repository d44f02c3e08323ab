"""The direct transport's statement: names are checked before anything reaches the database."""

from __future__ import annotations

import pytest

from wa_gateway.store import PostgresTransport

# Nothing listens here: a name that passed the checks would fail on connecting instead.
UNREACHABLE = "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1"


@pytest.mark.parametrize("function", ["", "Gateway", "gateway;drop", "public.gateway_x", "a b"])
def test_a_bad_function_name_is_refused(function: str) -> None:
    with pytest.raises(ValueError, match="not a function name"):
        PostgresTransport(UNREACHABLE).rpc(function, {})


@pytest.mark.parametrize("name", ["_role", "_claims", "x", "p_", "p_A", "p_a%b", 'p_a"'])
def test_a_bad_parameter_name_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not a parameter name"):
        PostgresTransport(UNREACHABLE).rpc("gateway_get_session", {name: "x"})
