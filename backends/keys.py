"""API keys: the system keyring, or (opt-in, for headless machines) a 0600 file.

A key is only ever read from here into an Authorization header. The file store is chosen
explicitly with `[keys] store = "file"`; "auto" never falls back to it silently."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from myninja import paths
from myninja.errors import KeyStoreError

if TYPE_CHECKING:
    from myninja.config import Config, GatewayBackendConfig

SERVICE = "myninja"
INDEX = "__names__"  # keyring cannot list entries, so the names are kept in one entry too


def keyring_available() -> bool:
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return False
    try:
        backend = keyring.get_keyring()
    except Exception:
        return False
    return not isinstance(backend, fail.Keyring) and getattr(backend, "priority", 0) > 0


class KeyStore:
    def __init__(self, store: str = "auto", file: Path | None = None) -> None:
        self.store = store
        self.file = file or paths.data_dir() / "keys.json"

    @property
    def uses_file(self) -> bool:
        return self.store == "file"

    def _require_keyring(self) -> None:
        if not keyring_available():
            raise KeyStoreError(
                "no system keyring service is available",
                hint='set [keys] store = "file" in config (or MYNINJA_KEYS__STORE=file) to keep '
                "keys in a 0600 file instead",
            )

    # The file store -----------------------------------------------------------------------
    def _read_file(self) -> dict[str, str]:
        if not self.file.exists():
            return {}
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise KeyStoreError(f"{self.file}: unreadable key file: {exc}") from exc
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _write_file(self, data: dict[str, str]) -> None:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_name(f".{self.file.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.file)

    # The keyring store --------------------------------------------------------------------
    def _keyring_names(self) -> list[str]:
        import keyring

        raw = keyring.get_password(SERVICE, INDEX)
        return sorted(json.loads(raw)) if raw else []

    # Public API ---------------------------------------------------------------------------
    def set(self, name: str, value: str) -> None:
        if not name or name == INDEX:
            raise KeyStoreError(f"invalid key name {name!r}")
        if not value:
            raise KeyStoreError("refusing to store an empty key")
        if self.uses_file:
            data = self._read_file()
            data[name] = value
            return self._write_file(data)
        self._require_keyring()
        import keyring

        keyring.set_password(SERVICE, name, value)
        names = set(self._keyring_names()) | {name}
        keyring.set_password(SERVICE, INDEX, json.dumps(sorted(names)))

    def get(self, name: str) -> str | None:
        if self.uses_file:
            return self._read_file().get(name)
        if not keyring_available():
            return None
        import keyring

        return keyring.get_password(SERVICE, name)

    def names(self) -> list[str]:
        if self.uses_file:
            return sorted(self._read_file())
        self._require_keyring()
        return self._keyring_names()

    def delete(self, name: str) -> None:
        if self.uses_file:
            data = self._read_file()
            if name not in data:
                raise KeyStoreError(f"no key named {name!r}", hint="see `myninja keys list`")
            del data[name]
            return self._write_file(data)
        self._require_keyring()
        import keyring
        from keyring.errors import PasswordDeleteError

        try:
            keyring.delete_password(SERVICE, name)
        except PasswordDeleteError as exc:
            raise KeyStoreError(f"no key named {name!r}", hint="see `myninja keys list`") from exc
        names = set(self._keyring_names()) - {name}
        keyring.set_password(SERVICE, INDEX, json.dumps(sorted(names)))


def key_store(config: Config) -> KeyStore:
    """The store the configuration asks for: the one `myninja keys` and the app both write to."""
    return KeyStore(config.keys.store)


def key_name(backend: str, cfg: GatewayBackendConfig) -> str:
    """The entry a gateway backend's key lives under."""
    return cfg.key_name or backend
