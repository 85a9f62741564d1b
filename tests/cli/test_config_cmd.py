from __future__ import annotations

import json
import tomllib
from pathlib import Path

from tests.conftest import run_myninja


def test_config_path_follows_myninja_home(myninja_home: Path) -> None:
    done = run_myninja("config", "path")
    assert done.returncode == 0
    assert done.stdout.strip() == str(myninja_home / "config.toml")


def test_config_show_merges_file_and_env_and_masks_secrets(myninja_home: Path) -> None:
    (myninja_home / "config.toml").write_text(
        '[serve]\napi_key = "serve-secret-991"\n[agents.writer]\nmax_tokens = 300\n'
    )
    done = run_myninja("config", "show", "--json", env={"MYNINJA_DEFAULT_AGENT": "writer"})
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["default_agent"] == "writer"
    assert shown["agents"]["writer"]["max_tokens"] == 300
    assert shown["serve"]["api_key"] == "****"
    assert "serve-secret-991" not in done.stdout


def test_bad_config_is_one_line_exit_2(myninja_home: Path) -> None:
    config = myninja_home / "config.toml"
    config.write_text('[agents.coder]\ntemperature = "hot"\n')
    for args in (["config", "show"], ["ask", "hello"]):
        done = run_myninja(*args)
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert str(config) in lines[0] and "agents.coder.temperature" in lines[0]
        assert "Traceback" not in done.stderr


def test_config_show_as_toml_is_the_config_it_shows_as_json(myninja_home: Path) -> None:
    (myninja_home / "config.toml").write_text("[agents.writer]\nmax_tokens = 300\n")
    text = run_myninja("config", "show")
    as_json = run_myninja("config", "show", "--json")
    assert text.returncode == as_json.returncode == 0, text.stderr + as_json.stderr
    assert tomllib.loads(text.stdout) == json.loads(as_json.stdout)
