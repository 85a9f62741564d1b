"""`myninja index` end to end, as a user runs it: add, list, search, remove, and the errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_myninja


def make_notes(root: Path) -> Path:
    root.mkdir()
    (root / "tides.md").write_text(
        "# Tides\n\nThe Moon's gravity raises two tidal bulges on Earth's oceans.\n"
    )
    (root / "bread.txt").write_text("Sourdough bread rises because wild yeast makes gas.\n")
    (root / "wiki").mkdir()
    (root / "wiki" / "psgs.jsonl").write_text(
        json.dumps({"id": "w7", "title": "Aurora", "text": "Auroras glow near the poles."}) + "\n"
    )
    (root / "cover.jpg").write_bytes(b"\xff\xd8\xff")
    return root


def test_add_list_search_remove(tmp_path: Path, myninja_home: Path) -> None:
    notes = make_notes(tmp_path / "notes")

    added = run_myninja("index", "add", "notes", str(notes), "--json")
    assert added.returncode == 0, added.stderr
    report = json.loads(added.stdout)
    assert (report["indexed"], report["passages"], report["files"]) == (3, 3, 3)
    assert report["skipped"] == [str(notes / "cover.jpg")]
    assert (myninja_home / "data" / "indexes" / "notes.db").is_file()

    again = run_myninja("index", "add", "notes", str(notes))
    assert again.returncode == 0, again.stderr
    assert "0 files indexed" in again.stdout and "3 unchanged" in again.stdout
    assert "skipped 1 file" in again.stderr and ".jpg" in again.stderr
    assert "\x1b[" not in again.stderr  # no progress bar off a terminal

    listed = run_myninja("index", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [info] = json.loads(listed.stdout)
    assert (info["name"], info["files"], info["passages"]) == ("notes", 3, 3)
    assert "notes" in run_myninja("index", "list").stdout

    found = run_myninja("index", "search", "notes", "why does the bread rise?", "--json")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert hits[0]["source"] == str(notes / "bread.txt")
    assert hits[0]["id"] == f"{notes / 'bread.txt'}#1"
    assert "wild yeast" in hits[0]["text"]

    one = run_myninja("index", "search", "notes", "Moon OR aurora NEAR(", "--k", "1", "--json")
    assert one.returncode == 0, one.stderr
    assert len(json.loads(one.stdout)) == 1

    text = run_myninja("index", "search", "notes", "aurora poles")
    assert text.returncode == 0 and "Aurora" in text.stdout and "w7" in text.stdout

    removed = run_myninja("index", "remove", "notes")
    assert removed.returncode == 0, removed.stderr
    assert json.loads(run_myninja("index", "list", "--json").stdout) == []
    assert not (myninja_home / "data" / "indexes" / "notes.db").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "../up", "."), "bad corpus name '../up'"),
        (("add", "notes", "no/such/dir"), "no such file or folder: no/such/dir"),
        # Longer than a file name may be: the file system's refusal, not an internal error.
        (("add", "notes", "a" * 5000), "cannot use " + "a" * 77 + "...: File name too long"),
        (("add", "notes", "pyproject.toml"), "unsupported file type '.toml'"),
        (("search", "ghost", "anything"), "no corpus named 'ghost'"),
        (("remove", "ghost"), "no corpus named 'ghost'"),
        (("remove", "a/b"), "bad corpus name 'a/b'"),
    ],
)
def test_user_errors_are_one_line_exit_2(args: tuple[str, ...], message: str) -> None:
    done = run_myninja("index", *args)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert json.loads(run_myninja("index", "list", "--json").stdout) == []  # none left behind
