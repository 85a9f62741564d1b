from __future__ import annotations

from pathlib import Path

import pytest

from myninja import paths
from myninja.config import Config, GatewayBackendConfig
from myninja.config_file import load_config, masked, update_config_file
from myninja.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_put_every_agent_on_the_embedded_model(tmp_path: Path) -> None:
    config = load_config(tmp_path / "absent.toml", environ={})
    assert set(config.agents) == {
        "assistant",
        "researcher",
        "coder",
        "advisor",
        "scheduler",
        "writer",
        "router",
        "judge",
    }
    assert {a.backend for a in config.agents.values()} == {"embedded"}
    assert config.backends["embedded"].model == "qwen2.5-coder-1.5b"


def test_myninja_home_moves_config_and_data(myninja_home: Path) -> None:
    assert paths.config_file() == myninja_home / "config.toml"
    assert paths.data_dir() == myninja_home / "data"


def test_file_adds_a_gateway_and_keeps_the_embedded_backend(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.toml",
        """
[backends.gw]
type = "openai"
url = "http://127.0.0.1:9/v1"
max_concurrency = 3

[agents.coder]
backend = "gw"
temperature = 0.1
""",
    )
    config = load_config(path, environ={})
    assert isinstance(config.backends["gw"], GatewayBackendConfig)
    assert config.backends["gw"].max_concurrency == 3
    assert "embedded" in config.backends
    assert config.agents["coder"].backend == "gw"
    assert config.agents["writer"].backend == "embedded"


def test_env_overrides_nested_keys_and_parses_scalars(tmp_path: Path) -> None:
    env = {
        "MYNINJA_AGENTS__WRITER__TEMPERATURE": "0.7",
        "MYNINJA_BACKENDS__EMBEDDED__THREADS": "1",
        "MYNINJA_DEFAULT_AGENT": "coder",
        "MYNINJA_HOME": "/ignored/for/config/keys",
    }
    config = load_config(tmp_path / "absent.toml", environ=env)
    assert config.agents["writer"].temperature == 0.7
    assert config.backends["embedded"].threads == 1
    assert config.default_agent == "coder"


@pytest.mark.parametrize(
    ("text", "expected_key", "expected_words"),
    [
        ('default_agent = "chef"', "default_agent", "researcher"),
        ('[agents.coder]\ntemperature = "hot"', "agents.coder.temperature", "number"),
        ('[agents.coder]\nbackend = "nowhere"', "agents.coder.backend", "unknown backend"),
        ('[backends.gw]\ntype = "openai"', "backends.gw.url", "required"),
        ('[backends.gw]\ntype = "ftp"\nurl = "x"', "backends.gw", "type must be"),
        ('[backends.gw]\ntype = "openai"\nurl = "localhost:8000"', "backends.gw", "http://"),
        ('colour = "blue"', "colour", "unknown key"),
        ("[agents.coder]\nmax_tokens = 0", "agents.coder.max_tokens", "greater than"),
    ],
)
def test_bad_config_names_file_key_and_problem(
    tmp_path: Path, text: str, expected_key: str, expected_words: str
) -> None:
    path = write(tmp_path / "config.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    line = caught.value.one_line()
    assert "\n" not in line
    assert str(path) in line
    assert expected_key in line
    assert expected_words in line
    assert caught.value.exit_code == 2


def test_toml_syntax_error_is_one_line_with_position(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", "[agents.coder\nbackend = 1")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert str(path) in str(caught.value)
    assert "line 1" in str(caught.value)


def test_bad_env_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "absent.toml", environ={"MYNINJA_SERVE__PORT": "lots"})
    assert "MYNINJA_SERVE__PORT" in str(caught.value)
    assert "serve.port" in str(caught.value)


def test_masking_hides_secrets_but_not_token_counts() -> None:
    data = Config().model_dump(mode="json")
    data["serve"]["api_key"] = "sk-live-123"
    data["agents"]["coder"]["max_tokens"] = 512
    shown = masked(data)
    assert shown["serve"]["api_key"] == "****"
    assert shown["agents"]["coder"]["max_tokens"] == 512
    assert "sk-live-123" not in repr(shown)


GATEWAY_FILE = """\
worker_idle_s = 42.0

[backends.gw]
type = "openai"
url = "http://127.0.0.1:9/v1"

[agents.coder]
model = "big"
temperature = 0.3

[serve]
port = 8123
"""


def test_update_config_file_changes_removes_and_keeps_the_rest(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", GATEWAY_FILE)
    returned = update_config_file(
        path,
        {
            "agents.coder.backend": "gw",
            "agents.coder.model": None,
            "agents.writer.model": "small",
            "graph.branches": 2,
        },
    )
    config = load_config(path, environ={})
    assert returned == config
    assert config.agents["coder"].backend == "gw"
    assert config.agents["coder"].model is None
    assert config.agents["coder"].temperature == 0.3
    assert config.agents["writer"].model == "small"
    assert config.graph.branches == 2
    assert config.worker_idle_s == 42.0
    assert config.serve.port == 8123
    assert config.backends["gw"].url == "http://127.0.0.1:9/v1"


def test_update_config_file_prunes_tables_it_empties(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", '[agents.coder]\nmodel = "big"\n')
    update_config_file(path, {"agents.coder.model": None, "agents.judge.model": None})
    assert "agents" not in path.read_text(encoding="utf-8")
    assert load_config(path, environ={}).agents["coder"].model is None


def test_update_config_file_creates_an_absent_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "config.toml"
    update_config_file(path, {"agents.advisor.temperature": 0.5})
    assert load_config(path, environ={}).agents["advisor"].temperature == 0.5


@pytest.mark.parametrize(
    ("changes", "expected_key"),
    [
        ({"agents.coder.backend": "nowhere"}, "agents.coder.backend"),
        ({"graph.branches": 99}, "graph.branches"),
        ({"colour": "blue"}, "colour"),
        ({"serve.port.number": 1}, "serve.port"),  # a scalar used as a table
        ({"agents..model": "x"}, "agents..model"),
    ],
)
def test_invalid_update_leaves_the_file_byte_identical(
    tmp_path: Path, changes: dict[str, object], expected_key: str
) -> None:
    (tmp_path / "cfg").mkdir()
    path = write(tmp_path / "cfg" / "config.toml", "# mine\n" + GATEWAY_FILE)
    before = path.read_bytes()
    with pytest.raises(ConfigError) as caught:
        update_config_file(path, changes)
    line = caught.value.one_line()
    assert "\n" not in line
    assert expected_key in line
    assert str(path) in line
    assert ".tmp" not in line  # names the file, not the temp copy it validated
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]  # no temp file left
