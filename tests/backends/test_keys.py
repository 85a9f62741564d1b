"""Keys with the explicit file store (CI machines have no keyring service)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from myninja.backends.keys import KeyStore
from myninja.errors import KeyStoreError

SECRET = "sk-test-7f3a9c1e5b"


def test_file_store_roundtrip_with_0600_mode(tmp_path: Path) -> None:
    store = KeyStore("file", tmp_path / "store" / "keys.json")
    store.set("gw", SECRET)
    store.set("other", "v2")
    assert store.get("gw") == SECRET
    assert store.names() == ["gw", "other"]
    assert stat.S_IMODE((tmp_path / "store" / "keys.json").stat().st_mode) == 0o600
    store.delete("gw")
    assert store.get("gw") is None
    assert store.names() == ["other"]
    assert [p.name for p in (tmp_path / "store").iterdir()] == ["keys.json"]  # no temp left


def test_deleting_an_unknown_key_says_so(tmp_path: Path) -> None:
    store = KeyStore("file", tmp_path / "keys.json")
    with pytest.raises(KeyStoreError, match="no key named 'ghost'"):
        store.delete("ghost")


def test_empty_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="empty"):
        KeyStore("file", tmp_path / "keys.json").set("gw", "")


def test_keyring_mode_without_a_service_points_at_the_file_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keyring
    from keyring.backends import fail

    monkeypatch.setattr(keyring, "get_keyring", lambda: fail.Keyring())
    store = KeyStore("auto", tmp_path / "keys.json")
    with pytest.raises(KeyStoreError) as caught:
        store.set("gw", SECRET)
    assert 'store = "file"' in caught.value.one_line()
    assert not (tmp_path / "keys.json").exists()
    assert store.get("gw") is None
