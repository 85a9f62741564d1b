"""The coder's test runner comes with myninja itself, not with the `dev` extra.

The coder runs pytest in the sandbox on the interpreter myninja runs on, so wherever myninja is
installed (`pip install 'myninja[embedded]'`, no `dev`) pytest must be too. The project's
metadata is built from pyproject.toml as a wheel would carry it (setuptools' PEP 517 hook,
offline); the slow test then builds a plain venv from that metadata alone and runs the coder's
own runner script in it.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import subprocess
import sys
import venv
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from myninja.skills.coder import skill as coder

REPO = Path(__file__).resolve().parents[3]

SAMPLE_TESTS = """
def test_adds():
    assert 1 + 1 == 2

def test_fails():
    assert "ab".upper() == "Ab"
"""


# Run in the fresh venv: what is installed there, name to version.
LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m, json; "
    "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
)


def built_requirements(out: Path) -> list[Requirement]:
    """Requires-Dist of the project as a wheel built now would carry it."""
    out.mkdir(parents=True, exist_ok=True)
    hook = (
        "import sys; from setuptools import build_meta; "
        "build_meta.prepare_metadata_for_build_wheel(sys.argv[1])"
    )
    done = subprocess.run(
        [sys.executable, "-c", hook, str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    (dist_info,) = out.glob("*.dist-info")
    metadata = Parser().parsestr((dist_info / "METADATA").read_text(encoding="utf-8"))
    return [Requirement(line) for line in metadata.get_all("Requires-Dist") or []]


def without_extras(requirement: Requirement) -> bool:
    """Whether a plain `pip install myninja` (any extras or none) installs it."""
    return requirement.marker is None or requirement.marker.evaluate({"extra": ""})


def runner_distributions() -> set[str]:
    """The distributions the runner script imports from (the standard library aside)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(coder.pytest_runner())):
        if isinstance(node, ast.Import):
            modules |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module.partition(".")[0])
    provided_by = importlib.metadata.packages_distributions()
    third_party = modules - set(sys.stdlib_module_names)
    return {canonicalize_name(dist) for module in third_party for dist in provided_by[module]}


def test_the_runner_imports_only_main_dependencies(tmp_path: Path) -> None:
    requirements = built_requirements(tmp_path)
    main = {canonicalize_name(r.name) for r in requirements if without_extras(r)}

    needed = runner_distributions()

    assert needed == {"pytest"}  # if the runner grows, this says what it now needs
    assert needed <= main, f"only in an extra: {needed - main}"
    # The range holds the pytest these tests run on (the slow test below tries the newest).
    (pytest_requirement,) = [r for r in requirements if canonicalize_name(r.name) == "pytest"]
    assert importlib.metadata.version("pytest") in pytest_requirement.specifier


def _pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """This environment's pip, installing into `python`'s environment."""
    command = [sys.executable, "-m", "pip", "--python", str(python), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_the_runner_works_in_a_fresh_venv_without_the_dev_extra(tmp_path: Path) -> None:
    requirements = built_requirements(tmp_path / "metadata")
    wanted = runner_distributions()
    main = [r for r in requirements if without_extras(r)]
    needed = [r for r in main if canonicalize_name(r.name) in wanted]
    assert needed, f"no main dependency provides {wanted}"

    # A plain venv (no system site-packages) with only what the main dependencies name.
    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env)
    python = env / "bin" / "python"
    installed = _pip(python, "install", "--quiet", *map(str, needed))
    if installed.returncode != 0:
        # Offline with nothing cached is a skip; a range pip cannot meet is a failure.
        reachable = _pip(python, "download", "--no-deps", "-d", str(tmp_path / "dl"), "pytest")
        if reachable.returncode != 0:
            pytest.skip(f"cannot fetch pytest (offline?): {reachable.stderr.strip()[-200:]}")
        pytest.fail(f"pip install {needed} failed:\n{installed.stderr}")

    listed = subprocess.run(
        [str(python), "-I", "-c", LIST_DISTRIBUTIONS],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    versions = {canonicalize_name(name): v for name, v in json.loads(listed.stdout).items()}
    extras_only = {canonicalize_name(r.name) for r in requirements if not without_extras(r)}
    extras_only -= {canonicalize_name(r.name) for r in main}
    assert not extras_only & versions.keys(), "the dev extra came along"
    for requirement in needed:  # pip picked the newest in range: the range's top is tried here
        assert versions[canonicalize_name(requirement.name)] in requirement.specifier

    # The coder's runner, as run_tests runs it (-I -B, its own empty ini, no cache).
    ws = tmp_path / "ws"
    (ws / "tmp").mkdir(parents=True)
    (ws / "tmp" / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (ws / "test_sample.py").write_text(SAMPLE_TESTS, encoding="utf-8")
    args = ["-q", "--tb=short", "-p", "no:cacheprovider", "-c", str(ws / "tmp" / "pytest.ini")]
    args += ["--rootdir", str(ws), "--ignore", str(ws / "tmp"), "."]
    ran = subprocess.run(
        [str(python), "-I", "-B", "-c", coder.pytest_runner(), *args],
        cwd=ws,
        capture_output=True,
        text=True,
        timeout=120,
    )

    marked = [line for line in ran.stdout.splitlines() if line.startswith(coder._COUNTS_MARK)]
    assert marked, ran.stdout + ran.stderr
    counts = json.loads(marked[-1][len(coder._COUNTS_MARK) :])
    assert (counts["exit"], counts["passed"], counts["failed"], counts["errors"]) == (1, 1, 1, 0)
    assert counts["failures"][0][0] == "test_sample.py::test_fails"
    assert "'AB' == 'Ab'" in counts["failures"][0][1]
