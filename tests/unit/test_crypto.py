"""Keyring: AES-256-GCM for secrets stored in the database."""

from __future__ import annotations

import base64

import pytest

from wa_gateway.crypto import DecryptionError, Keyring

KEY_A = "a1" * 32
KEY_B = "b2" * 32
KEY_C = "0123456789abcdef" * 4


def _flip_byte(ciphertext: str, index: int) -> str:
    prefix, body = ciphertext.rsplit(".", 1)
    blob = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    blob[index] ^= 0x01
    return f"{prefix}.{base64.urlsafe_b64encode(bytes(blob)).rstrip(b'=').decode()}"


def test_round_trip_with_single_key_setting() -> None:
    ring = Keyring.from_setting(KEY_A)
    assert ring.active_key_id == "k1"
    secret = "host-token: ünïcode ✓"
    ciphertext = ring.encrypt(secret, context="session-1")
    assert ciphertext.startswith("v1.k1.")
    assert secret not in ciphertext
    assert ring.decrypt(ciphertext, context="session-1") == secret


def test_round_trip_empty_plaintext() -> None:
    ring = Keyring.from_setting(KEY_A)
    assert ring.decrypt(ring.encrypt("", context="s"), context="s") == ""


def test_format_is_version_key_id_and_nonce_plus_tagged_ciphertext() -> None:
    ring = Keyring.from_setting(KEY_A)
    version, key_id, body = ring.encrypt("abc", context="s").split(".")
    assert (version, key_id) == ("v1", "k1")
    assert "=" not in body
    blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    assert len(blob) == 12 + 3 + 16  # nonce, plaintext, tag


def test_fresh_nonce_each_encryption() -> None:
    ring = Keyring.from_setting(KEY_A)
    first = ring.encrypt("same", context="s")
    second = ring.encrypt("same", context="s")
    assert first != second
    nonce = lambda c: base64.urlsafe_b64decode(c.split(".")[2] + "==")[:12]  # noqa: E731
    assert nonce(first) != nonce(second)
    assert ring.decrypt(first, context="s") == ring.decrypt(second, context="s") == "same"


def test_wrong_context_fails() -> None:
    ring = Keyring.from_setting(KEY_A)
    ciphertext = ring.encrypt("token", context="session-1")
    with pytest.raises(DecryptionError):
        ring.decrypt(ciphertext, context="session-2")


@pytest.mark.parametrize("index", [0, 11, 12, -1])
def test_tampered_byte_fails(index: int) -> None:
    ring = Keyring.from_setting(KEY_A)
    ciphertext = ring.encrypt("token", context="s")
    with pytest.raises(DecryptionError) as excinfo:
        ring.decrypt(_flip_byte(ciphertext, index), context="s")
    assert "token" not in str(excinfo.value)


def test_other_key_cannot_decrypt() -> None:
    ciphertext = Keyring.from_setting(f"k1:{KEY_A}").encrypt("token", context="s")
    with pytest.raises(DecryptionError):
        Keyring.from_setting(f"k1:{KEY_B}").decrypt(ciphertext, context="s")


def test_rotation() -> None:
    old_ring = Keyring.from_setting(f"old:{KEY_A}")
    old_ciphertext = old_ring.encrypt("token", context="s")
    assert not old_ring.needs_reencryption(old_ciphertext)

    ring = Keyring.from_setting(f"new:{KEY_B}, old:{KEY_A}")
    assert ring.active_key_id == "new"
    assert ring.key_ids == ("new", "old")
    assert ring.decrypt(old_ciphertext, context="s") == "token"
    assert ring.needs_reencryption(old_ciphertext)

    new_ciphertext = ring.encrypt("token", context="s")
    assert new_ciphertext.startswith("v1.new.")
    assert not ring.needs_reencryption(new_ciphertext)
    with pytest.raises(DecryptionError):
        old_ring.decrypt(new_ciphertext, context="s")


def test_unknown_key_id() -> None:
    ciphertext = Keyring.from_setting(f"gone:{KEY_A}").encrypt("token", context="s")
    ring = Keyring.from_setting(f"k2:{KEY_B}")
    with pytest.raises(DecryptionError) as excinfo:
        ring.decrypt(ciphertext, context="s")
    assert "gone" in str(excinfo.value)
    assert KEY_A not in str(excinfo.value) and KEY_B not in str(excinfo.value)
    assert ring.needs_reencryption(ciphertext)


def test_swapped_key_id_fails() -> None:
    ring = Keyring.from_setting(f"a:{KEY_A},b:{KEY_B}")
    ciphertext = ring.encrypt("token", context="s")
    with pytest.raises(DecryptionError):
        ring.decrypt(ciphertext.replace("v1.a.", "v1.b.", 1), context="s")


@pytest.mark.parametrize(
    "ciphertext",
    [
        "",
        "token",
        "v1",
        "v1.k1",
        "v1.k1.",
        "v2.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.k1.AAAA.AAAA",
        "v1.bad id.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.k1.not+base64/url=",
        "v1.k1.A",
        "v1.k1.AAAAAAAA",  # shorter than nonce + tag
        "v1.k1.ÄÖÜ",
    ],
)
def test_bad_format(ciphertext: str) -> None:
    ring = Keyring.from_setting(KEY_A)
    with pytest.raises(DecryptionError):
        ring.decrypt(ciphertext, context="s")


def test_needs_reencryption_rejects_bad_format() -> None:
    with pytest.raises(DecryptionError):
        Keyring.from_setting(KEY_A).needs_reencryption("plain text")


def test_empty_context_rejected() -> None:
    ring = Keyring.from_setting(KEY_A)
    with pytest.raises(ValueError):
        ring.encrypt("token", context="")
    with pytest.raises(ValueError):
        ring.decrypt(ring.encrypt("token", context="s"), context="")


def test_setting_accepts_upper_case_hex_and_whitespace() -> None:
    ring = Keyring.from_setting(f"  a:{KEY_C.upper()} ,\tb:{KEY_A}  ")
    assert ring.key_ids == ("a", "b")
    lower = Keyring.from_setting(f"a:{KEY_C}")
    assert lower.decrypt(ring.encrypt("x", context="s"), context="s") == "x"


@pytest.mark.parametrize(
    ("setting", "secret", "problem"),
    [
        (KEY_A[:-2], KEY_A[:-2], "64 hex"),  # short
        (KEY_A + "ab", KEY_A, "64 hex"),  # long
        ("zz" + KEY_A[2:], KEY_A[2:], "hex"),  # non-hex
        (f"k1:{KEY_A[:-1]}g", KEY_A[:-1], "hex"),  # non-hex with id
        (f"k1:{KEY_A},k1:{KEY_B}", KEY_B, "twice"),  # duplicate ids
        (f"{KEY_A}:{KEY_B}", KEY_A, "key id"),  # key where the id goes
        (f"k1:{KEY_A},{KEY_B}", KEY_B, "entry 2"),  # missing id
        (f"k1:{KEY_A},", KEY_A, "entry 2"),  # trailing comma
        (f"bad id:{KEY_A}", KEY_A, "key id"),
        (f"{'x' * 33}:{KEY_A}", KEY_A, "key id"),
        ("", "", "empty"),
        ("   ", "", "empty"),
    ],
)
def test_bad_setting_message_names_problem_without_key_material(
    setting: str, secret: str, problem: str
) -> None:
    with pytest.raises(ValueError) as excinfo:
        Keyring.from_setting(setting)
    message = str(excinfo.value)
    assert problem in message
    for material in (secret, KEY_A, KEY_B, KEY_A[:16], KEY_B[:16]):
        if material:
            assert material not in message
    assert excinfo.value.__cause__ is None


def test_constructor_validates_raw_keys() -> None:
    with pytest.raises(ValueError):
        Keyring([])
    with pytest.raises(ValueError):
        Keyring([("k1", b"\x00" * 16)])
    ring = Keyring([("raw", bytes.fromhex(KEY_A))])
    assert (
        Keyring.from_setting(f"raw:{KEY_A}").decrypt(ring.encrypt("x", context="s"), context="s")
        == "x"
    )


def test_repr_and_str_hide_keys() -> None:
    ring = Keyring.from_setting(f"new:{KEY_B},old:{KEY_A}")
    raw_a = bytes.fromhex(KEY_A)
    for text in (repr(ring), str(ring), f"{ring}", repr([ring])):
        assert KEY_A not in text and KEY_B not in text
        assert KEY_A.upper() not in text
        assert repr(raw_a)[2:20] not in text
        assert "new" in text and "old" in text
