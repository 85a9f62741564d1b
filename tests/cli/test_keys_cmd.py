"""`myninja keys` end to end: the key goes into the store and nowhere else."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_myninja

SECRET = "sk-cli-4b8e2d9f0a1c"
FILE_STORE = {"MYNINJA_KEYS__STORE": "file"}


def files_containing(root: Path, needle: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_set_list_delete_with_the_file_store(myninja_home: Path) -> None:
    done = run_myninja("keys", "set", "gw", env=FILE_STORE, input=SECRET + "\n")
    assert done.returncode == 0, done.stderr
    assert "warning" in done.stderr and "0600" in done.stderr
    listed = run_myninja("keys", "list", "--json", env=FILE_STORE)
    assert listed.stdout.strip() == '["gw"]'
    shown = run_myninja("config", "show", env=FILE_STORE)
    outputs = (
        done.stdout + done.stderr + listed.stdout + listed.stderr + shown.stdout + shown.stderr
    )
    assert SECRET not in outputs
    assert files_containing(myninja_home, SECRET) == [myninja_home / "data" / "keys.json"]
    deleted = run_myninja("keys", "delete", "gw", env=FILE_STORE)
    assert deleted.returncode == 0
    assert run_myninja("keys", "list", "--json", env=FILE_STORE).stdout.strip() == "[]"
    assert files_containing(myninja_home, SECRET) == []


def test_deleting_a_missing_key_is_one_line_exit_2() -> None:
    done = run_myninja("keys", "delete", "ghost", env=FILE_STORE)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "no key named 'ghost'" in done.stderr
    assert "Traceback" not in done.stderr
