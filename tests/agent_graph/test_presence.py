"""Open apps are known by their marks; a mark whose process is gone (an app killed) does not
count and is cleared."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from myninja.agent_graph.tasks.presence import FOLDER, app_open, mark_closed, mark_open


def test_an_open_app_counts_until_it_closes(tmp_path: Path) -> None:
    assert not app_open(tmp_path)
    mark = mark_open(tmp_path)
    assert app_open(tmp_path)
    mark_closed(mark)
    assert not app_open(tmp_path) and not mark.exists()


def test_the_mark_of_a_killed_app_is_cleared(tmp_path: Path) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = tmp_path / FOLDER / gone.stdout.strip()
    stale.parent.mkdir()
    stale.touch()
    (tmp_path / FOLDER / "notes.txt").touch()  # not a mark: left alone
    assert not app_open(tmp_path)
    assert not stale.exists() and (tmp_path / FOLDER / "notes.txt").exists()
