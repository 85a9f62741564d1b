"""`myninja sandbox check` and `myninja sandbox run`, as a person runs them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from myninja.skills.coder import process_cgroup
from myninja.skills.coder.confinement import offer
from tests.conftest import run_myninja

kernel = pytest.mark.skipif(not offer()["ok"], reason="this machine offers no kernel confinement")


@kernel
def test_check_says_the_kernel_confines_code_here() -> None:
    done = run_myninja("sandbox", "check", "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["ok"] and found["code_runs"] and found["mode"] == "kernel"
    assert found["landlock_abi"] >= 1 and found["missing"] == []
    assert found["read_outside_refused"] and found["socket_refused"]
    assert found["processes_counted_by"].startswith("the kernel") == (
        os.getuid() != 0 or process_cgroup.available()
    )
    text = run_myninja("sandbox", "check").stdout
    assert "kernel confinement: available" in text
    assert "model-written code runs confined by the kernel" in text


def test_check_in_process_mode_says_it_is_weaker() -> None:
    done = run_myninja("sandbox", "check", env={"MYNINJA_SANDBOX__CONFINEMENT": "in-process"})
    assert done.returncode == 0, done.stderr
    assert "mode: in-process" in done.stdout
    assert "in-process guard alone (weaker)" in done.stdout


@kernel
def test_run_confines_a_command_as_model_written_code_is(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("planted words")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    done = run_myninja("sandbox", "run", "--workspace", str(workspace), "--", "cat", str(secret))
    assert done.returncode == 1
    assert "planted words" not in done.stdout
    assert "Permission denied" in done.stderr
    # the workspace itself is writable, and what the command prints comes through
    wrote = run_myninja(
        "sandbox", "run", "--workspace", str(workspace), "--", "sh", "-c", "echo hi > f; cat f"
    )
    assert (wrote.returncode, wrote.stdout) == (0, "hi\n"), wrote.stderr
    assert (workspace / "f").read_text() == "hi\n"


def test_run_reports_a_missing_folder_and_a_missing_program_in_one_line(tmp_path: Path) -> None:
    done = run_myninja("sandbox", "run", "--workspace", str(tmp_path / "nope"), "--", "true")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"myninja: error: sandbox run: no such folder: {tmp_path / 'nope'}; "
        "give an existing --workspace"
    ]
    missing = run_myninja("sandbox", "run", "--workspace", str(tmp_path), "--", "no-such-prog")
    assert missing.returncode == 127
    assert missing.stderr.strip() == "sandbox: cannot run no-such-prog: No such file or directory"


def test_run_stops_a_command_at_its_wall_time(tmp_path: Path) -> None:
    done = run_myninja(
        "sandbox", "run", "--workspace", str(tmp_path), "--timeout", "1", "--", "sleep", "30"
    )
    assert done.returncode == 137  # killed: 128 + SIGKILL
    assert "[sandbox] timed out after 1 s (wall time)" in done.stderr
