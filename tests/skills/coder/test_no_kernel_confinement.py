"""A machine whose kernel cannot confine the code: made for real, by a seccomp filter that
answers Landlock's system calls with ENOSYS (as a kernel without Landlock does) in the process
that runs the sandbox, and so in everything it starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from myninja.skills.coder.confinement import offer
from tests.conftest import REPO, myninja_cmd

pytestmark = pytest.mark.skipif(
    not offer()["ok"] or os.uname().machine != "x86_64",
    reason="needs a kernel with Landlock (x86_64), to take it away",
)

# No Landlock: landlock_create_ruleset (444), add_rule (445), restrict_self (446) -> ENOSYS.
NO_LANDLOCK = """
import ctypes, struct
LD, JEQ, JGE, RET = 0x20, 0x15, 0x35, 0x06
prog = [(LD, 0, 0, 0), (JGE, 0, 3, 444), (JGE, 2, 0, 447), (RET, 0, 0, 0x00050000 | 38),
        (RET, 0, 0, 0x7FFF0000), (RET, 0, 0, 0x7FFF0000)]
code = b"".join(struct.pack("<HBBI", *i) for i in prog)
buf = ctypes.create_string_buffer(code, len(code))
class Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(38, 1, 0, 0, 0) == 0
assert libc.prctl(22, 2, ctypes.byref(Fprog(len(prog), ctypes.addressof(buf))), 0, 0) == 0
"""


def without_landlock(code: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", NO_LANDLOCK + code],
        capture_output=True, text=True, timeout=120, cwd=REPO, check=False,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


RUN = """
import json
from pathlib import Path
from myninja.skills.coder.sandbox import run_python
result = run_python("open('ran', 'w').write('yes')", workspace=Path({ws!r}))
print(json.dumps({{"exit": result.exit_code, "reason": result.killed_reason,
                  "confinement": result.confinement, "stderr": result.stderr,
                  "summary": result.summary()}}))
"""


def test_code_is_not_run_and_one_line_says_how_to_opt_in(tmp_path: Path) -> None:
    found = json.loads(without_landlock(RUN.format(ws=str(tmp_path))))
    assert not (tmp_path / "ran").exists()  # the code did not run
    assert (found["exit"], found["reason"], found["confinement"]) == (126, "not confined", "none")
    lines = found["stderr"].strip().splitlines()
    assert lines == [
        "sandbox: code not run: the kernel cannot confine it here (this kernel has no "
        "Landlock); to run it with the weaker in-process guard, set [sandbox] confinement = "
        '"in-process" in config'
    ]
    assert found["summary"].startswith("not run: no kernel confinement; exit 126")


def test_the_person_may_opt_in_to_the_in_process_guard(tmp_path: Path) -> None:
    env = {"MYNINJA_SANDBOX__CONFINEMENT": "in-process"}
    found = json.loads(without_landlock(RUN.format(ws=str(tmp_path)), env))
    assert (found["exit"], found["confinement"]) == (0, "in-process")
    assert (tmp_path / "ran").read_text() == "yes"


def test_sandbox_check_names_what_is_missing() -> None:
    command = myninja_cmd("sandbox", "check", "--json")
    code = (
        "import subprocess, sys\n"
        f"done = subprocess.run({command!r}, capture_output=True, text=True)\n"
        "print(done.returncode); print(done.stdout)\n"
    )
    exit_line, _, report = without_landlock(code).partition("\n")
    found = json.loads(report)
    assert exit_line == "1"  # code would not run
    assert not found["ok"] and not found["code_runs"] and found["landlock_abi"] == 0
    assert "Landlock (kernel 5.13 or later, with lsm=landlock)" in found["missing"]
