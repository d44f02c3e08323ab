"""What the host keeps on disk, laid out like the real server's working directory.

- ``tokens/<session>.data.json``: the token store; holds the start-session body as
  ``config``. ``show-all-sessions`` and ``start-all`` read the session names from here.
- ``userDataDir/<session>/login.json``: stands in for the browser profile that keeps a
  multi-device login. While it exists, a start restores the login without a QR code.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

_STORE_SUFFIX = ".data.json"


def _file_name(session: str) -> str:
    name = quote(session, safe="@+-_")
    return "%2E" + name[1:] if name.startswith(".") else name


class SessionStore:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.tokens_dir = data_dir / "tokens"
        self.profiles_dir = data_dir / "userDataDir"
        self._lock = threading.Lock()
        self.tokens_dir.mkdir(parents=True, exist_ok=True)
        self.profiles_dir.mkdir(parents=True, exist_ok=True)

    def _token_path(self, session: str) -> Path:
        return self.tokens_dir / (_file_name(session) + _STORE_SUFFIX)

    def _login_path(self, session: str) -> Path:
        return self.profiles_dir / _file_name(session) / "login.json"

    @staticmethod
    def _read(path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    @staticmethod
    def _write(path: Path, data: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)

    def list_sessions(self) -> list[str]:
        with self._lock:
            names = [
                unquote(p.name[: -len(_STORE_SUFFIX)])
                for p in self.tokens_dir.glob("*" + _STORE_SUFFIX)
            ]
        return sorted(names)

    def load_config(self, session: str) -> Any:
        with self._lock:
            data = self._read(self._token_path(session))
        return None if data is None else data.get("config")

    def save_config(self, session: str, config: Any) -> None:
        with self._lock:
            data = self._read(self._token_path(session)) or {}
            data["config"] = config
            self._write(self._token_path(session), data)

    def load_login(self, session: str) -> str | None:
        """The account's own wid if a login is saved for ``session``."""
        with self._lock:
            data = self._read(self._login_path(session))
        wid = None if data is None else data.get("wid")
        return wid if isinstance(wid, str) else None

    def save_login(self, session: str, wid: str) -> None:
        with self._lock:
            self._write(self._login_path(session), {"wid": wid})

    def delete_login(self, session: str) -> None:
        """Drop the saved login (the browser profile), as logout and unlinking do."""
        with self._lock:
            shutil.rmtree(self._login_path(session).parent, ignore_errors=True)

    def delete_token(self, session: str) -> None:
        """Drop ``tokens/<session>.data.json``: the session leaves show-all-sessions."""
        with self._lock:
            self._token_path(session).unlink(missing_ok=True)

    def wipe(self) -> None:
        with self._lock:
            shutil.rmtree(self.tokens_dir, ignore_errors=True)
            shutil.rmtree(self.profiles_dir, ignore_errors=True)
            self.tokens_dir.mkdir(parents=True, exist_ok=True)
            self.profiles_dir.mkdir(parents=True, exist_ok=True)
