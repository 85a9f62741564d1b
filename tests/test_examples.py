"""The example plugin's own tests, run as its author runs them: from its folder, against the
installed myninja (`from myninja.skills import …`), with no deprecation warning."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "myninja-skill-weather"


def test_the_weather_example_passes_its_own_tests_on_the_new_name(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(EXAMPLE), "MYNINJA_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-W", "error::DeprecationWarning:myninja_skill_weather", "tests"],
        cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout and "failed" not in done.stdout
    source = (EXAMPLE / "myninja_skill_weather" / "__init__.py").read_text()
    assert "from myninja.skills import" in source and "from skills" not in source
