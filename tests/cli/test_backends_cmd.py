"""`myninja backends add|list|test|remove` end to end, against servers on 127.0.0.1."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from tests.conftest import run_myninja
from tests.local_http import free_port
from tests.openai_stub import openai_stub

FILE_STORE = {"MYNINJA_KEYS__STORE": "file"}
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def config_of(home: Path) -> dict:
    return tomllib.loads((home / "config.toml").read_text())


def test_add_writes_the_backend_points_agents_and_asks_the_server(myninja_home: Path) -> None:
    with openai_stub([LLAMA]) as url:
        done = run_myninja(
            "backends", "add", "inf2", "--url", url, "--model", LLAMA,
            "--agent", "researcher", "--agent", "coder", "--max-concurrency", "4",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"inf2 answered: models {LLAMA}" in done.stdout
        listed = json.loads(run_myninja("backends", "list", "--json").stdout)
    saved = config_of(myninja_home)
    assert saved["backends"]["inf2"] == {
        "type": "openai", "url": url, "model": LLAMA, "max_concurrency": 4,
    }  # fmt: skip
    assert saved["agents"]["researcher"]["backend"] == "inf2"
    assert saved["agents"]["coder"]["backend"] == "inf2"
    row = next(r for r in listed if r["name"] == "inf2")
    assert (row["status"], sorted(row["agents"])) == ("ok", ["coder", "researcher"])


def test_a_server_that_is_not_up_yet_is_still_added(myninja_home: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    done = run_myninja("backends", "add", "later", "--url", url, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["answered"] is False and "later" in report["name"]
    assert config_of(myninja_home)["backends"]["later"]["url"] == url
    text = run_myninja("backends", "add", "later", "--url", url, "--replace")
    assert "did not answer yet" in text.stderr and "myninja backends test later" in text.stderr


def test_the_stored_key_is_sent(myninja_home: Path) -> None:
    with openai_stub([LLAMA], token="sk-neuron-77") as url:
        run_myninja("keys", "set", "inf2", env=FILE_STORE, input="sk-neuron-77\n")
        done = run_myninja("backends", "add", "inf2", "--url", url, env=FILE_STORE)
        assert "inf2 answered" in done.stdout, done.stderr
        tested = run_myninja("backends", "test", "inf2", env=FILE_STORE)
        listed = json.loads(run_myninja("backends", "list", "--json", env=FILE_STORE).stdout)
    assert tested.returncode == 0, tested.stderr
    assert "inf2: ok" in tested.stdout and "reply: 'hello'" in tested.stdout
    assert next(r for r in listed if r["name"] == "inf2")["status"] == "ok"


def test_mistakes_are_one_line_and_leave_the_config_alone(myninja_home: Path) -> None:
    with openai_stub([LLAMA]) as url:
        assert run_myninja("backends", "add", "gw", "--url", url).returncode == 0
        before = (myninja_home / "config.toml").read_text()
        again = run_myninja("backends", "add", "gw", "--url", url)
        bad_url = run_myninja("backends", "add", "ftp", "--url", "ftp://example/v1")
        control = run_myninja("backends", "add", "ctl", "--url", url + "\x1f")
        bad_port = run_myninja("backends", "add", "port", "--url", "http://127.0.0.1:99999/v1")
        bad_name = run_myninja("backends", "add", "9 lives", "--url", url)
        bad_agent = run_myninja("backends", "add", "x", "--url", url, "--agent", "chef")
    for done in (again, bad_url, control, bad_port, bad_name, bad_agent):
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
    assert "already exists" in again.stderr and "--replace" in again.stderr
    assert "url must start with http://" in bad_url.stderr
    assert "invalid url" in control.stderr and "control character" in control.stderr
    assert "invalid url" in bad_port.stderr
    assert control.stderr.count("\n") == bad_port.stderr.count("\n") == 1
    assert "invalid backend name" in bad_name.stderr
    assert (myninja_home / "config.toml").read_text() == before


def test_remove_sends_its_agents_back_to_the_embedded_backend(myninja_home: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    run_myninja("backends", "add", "inf2", "--url", url, "--agent", "writer")
    done = run_myninja("backends", "remove", "inf2")
    assert done.returncode == 0, done.stderr
    assert "writer now uses embedded" in done.stdout
    saved = config_of(myninja_home) if (myninja_home / "config.toml").exists() else {}
    assert "inf2" not in saved.get("backends", {})
    assert "writer" not in saved.get("agents", {})
    missing = run_myninja("backends", "remove", "inf2")
    assert missing.returncode == 2 and "no backend named 'inf2'" in missing.stderr
