"""Where config and data live. `MYNINJA_HOME` moves both (tests always set it)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "myninja"


def _home() -> Path | None:
    value = os.environ.get("MYNINJA_HOME")
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    home = _home()
    return home if home else Path(platformdirs.user_config_dir(APP))


def data_dir() -> Path:
    home = _home()
    return home / "data" if home else Path(platformdirs.user_data_dir(APP))


def config_file() -> Path:
    return config_dir() / "config.toml"


def models_dir() -> Path:
    return data_dir() / "models"
