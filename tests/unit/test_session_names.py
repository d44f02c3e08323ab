"""Host session names: short enough that the host's bcrypt token covers the whole secret."""

from __future__ import annotations

import re
import uuid

import pytest

from wa_gateway.needs import MIN_HOST_SECRET_BYTES
from wa_gateway.sessions.accounts import session_name_for
from wa_gateway.validation import DEFAULT_ACCOUNT, parse_account

BCRYPT_READS = 72
LONGEST_LABEL = "z" * 32
SECRET = "s" * MIN_HOST_SECRET_BYTES


@pytest.mark.parametrize("account", [DEFAULT_ACCOUNT, "work", LONGEST_LABEL, "9-" * 16])
def test_bcrypt_reads_the_whole_secret_after_any_session_name(account: str) -> None:
    assert parse_account(account) == account  # a label the API accepts
    name = session_name_for(str(uuid.uuid4()), account)
    read = (name + SECRET).encode()[:BCRYPT_READS]
    assert read.endswith(SECRET.encode())


def test_names_are_what_the_host_and_the_table_accept() -> None:
    user_id = str(uuid.uuid4())
    for account in (DEFAULT_ACCOUNT, "work", LONGEST_LABEL):
        name = session_name_for(user_id, account)
        assert re.fullmatch(r"[A-Za-z0-9_-]+", name) and len(name.encode()) <= 40


def test_each_user_and_account_has_its_own_name() -> None:
    users = [str(uuid.uuid4()) for _ in range(50)]
    labels = [DEFAULT_ACCOUNT, "work", "home", "a", "b", LONGEST_LABEL]
    names = {session_name_for(user, label) for user in users for label in labels}
    assert len(names) == len(users) * len(labels)
    assert session_name_for(users[0], "work") == session_name_for(users[0].upper(), "work")
