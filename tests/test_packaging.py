"""The distribution: one top-level name (`myninja`), every package folder listed in it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_is_listed_under_the_myninja_name() -> None:
    setuptools = _pyproject()["tool"]["setuptools"]
    folders = {new: ROOT / old for new, old in setuptools["package-dir"].items()}
    found = set()
    for top, folder in folders.items():
        for init in folder.rglob("__init__.py"):
            if "__pycache__" not in init.parts:
                rel = init.parent.relative_to(folder).parts
                found.add(".".join((top, *rel)))
    assert found == set(setuptools["packages"])


@pytest.mark.slow
def test_the_wheel_claims_only_the_myninja_top_level_name(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy: setuptools builds in the tree it is given
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in _pyproject()["tool"]["setuptools"]["package-dir"].values():
        shutil.copytree(
            ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(source)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("myninja-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"myninja"}
    for module in ("myninja/skills/api.py", "myninja/agent_graph/graph.py",
                   "myninja/backends/base.py", "myninja/ninja_tui/app.tcss"):  # fmt: skip
        assert module in names
