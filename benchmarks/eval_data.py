"""Where the evaluation data is: `$EVAL_DATA` when set, else `shared/eval-data/` beside the
repository (the layout the project is developed in). Only `dev/` is read by benchmarks."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def eval_data() -> Path:
    given = os.environ.get("EVAL_DATA")
    return Path(given) if given else ROOT.parent / "shared" / "eval-data"


def dev_file(name: str) -> Path:
    """A dev file, or one line on stderr naming what is missing and exit 2."""
    path = eval_data() / "dev" / name
    if not path.is_file():
        sys.exit(f"{path} is missing: set EVAL_DATA to the eval-data folder (it holds dev/)")
    return path
