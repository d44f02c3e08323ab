"""Request bodies as Express sees them (``express.json``, ``urlencoded``, multer).

JSON bodies keep their types; urlencoded and multipart fields arrive as strings, so a form
field ``isGroup=false`` is the string ``"false"``, which JavaScript treats as true.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl


class BodyError(ValueError):
    """The body could not be parsed (Express answers 400)."""


@dataclass
class UploadedFile:
    field: str
    filename: str
    mimetype: str
    data: bytes


def js_truthy(value: Any) -> bool:
    """JavaScript truthiness: ``"false"``, ``[]`` and ``{}`` are true; ``""``, 0, null are not."""
    if isinstance(value, list | dict):
        return True
    if isinstance(value, str):
        return value != ""
    return bool(value)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def parse_body(content_type: str | None, raw: bytes) -> tuple[dict[str, Any], list[UploadedFile]]:
    kind = media_type(content_type)
    if kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json")):
        return _parse_json(raw), []
    if kind == "application/x-www-form-urlencoded":
        return _parse_urlencoded(raw.decode("utf-8", "replace")), []
    if kind == "multipart/form-data":
        return _parse_multipart(content_type or "", raw)
    return {}, []


def _parse_json(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    text = raw.decode("utf-8", "replace").lstrip()
    if text[:1] not in ("{", "["):
        raise BodyError(f'Unexpected token {text[:1]!r}, "{text[:20]}" is not valid JSON')
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise BodyError(str(exc)) from exc
    return value if isinstance(value, dict) else {}


def _assign(target: dict[str, Any], key: str, value: str) -> None:
    """qs-style keys: ``a[]`` and ``a[0]`` build lists, ``a[b]`` builds an object."""
    if "[" in key and key.endswith("]"):
        base, _, rest = key.partition("[")
        inner = rest[:-1]
        if inner == "" or inner.isdigit():
            existing = target.get(base)
            if not isinstance(existing, list):
                existing = [] if existing is None else [existing]
                target[base] = existing
            existing.append(value)
            return
        nested = target.get(base)
        if not isinstance(nested, dict):
            nested = {}
            target[base] = nested
        nested[inner] = value
        return
    if key in target:
        existing = target[key]
        target[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
    else:
        target[key] = value


def _parse_urlencoded(text: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        _assign(result, key, value)
    return result


def _parse_multipart(content_type: str, raw: bytes) -> tuple[dict[str, Any], list[UploadedFile]]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    if not message.is_multipart():
        raise BodyError("Multipart: Boundary not found")
    fields: dict[str, Any] = {}
    files: list[UploadedFile] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            files.append(UploadedFile(name, filename, part.get_content_type(), data))
        else:
            charset = part.get_content_charset() or "utf-8"
            _assign(fields, name, data.decode(charset, "replace"))
    return fields, files
