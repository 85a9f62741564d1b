"""The settings screen against real parts: its config file on disk, a real `myninja serve` for
the health check, a closed port for a failing one, and the file key store."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, Static

from myninja.backends.keys import KeyStore
from myninja.config_file import load_config
from myninja.ninja_tui.screens.settings import SettingsScreen
from tests.conftest import TINY_MODEL, ServerProcess

CONFIG = """\
# my settings
worker_idle_s = 77.0

[backends.gw]
type = "openai"
url = "http://127.0.0.1:9/v1"
model = "gpt-x"

[agents.writer]
model = "poet"
temperature = 0.9

[serve]
port = 8124
"""


class Host(App[None]):
    def __init__(self, config_path: Path) -> None:
        super().__init__()
        self.config_path = config_path
        self.results: list[bool] = []

    def on_mount(self) -> None:
        self.push_screen(SettingsScreen(self.config_path), callback=self.results.append)


async def wait_for(pilot: Pilot[Any], check: Callable[[], bool], within_s: float = 10) -> None:
    for _ in range(int(within_s / 0.05)):
        if check():
            return
        await pilot.pause(0.05)
    raise AssertionError("the screen never showed what was expected")


def text_of(app: App[Any], selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def position(app: App[Any], backend: str) -> int:
    screen = app.screen
    assert isinstance(screen, SettingsScreen)
    return screen.backend_names.index(backend)


async def test_changing_coders_backend_and_model_saves_and_keeps_the_rest(
    myninja_home: Path,
) -> None:
    path = myninja_home / "config.toml"
    path.write_text(CONFIG)
    app = Host(path)
    async with app.run_test(size=(80, 24)) as pilot:
        app.screen.query_one("#backend-coder").focus()
        await pilot.press("enter")  # the list: embedded, then gw
        await pilot.press("down", "enter")
        app.screen.query_one("#model-coder").focus()
        await pilot.press(*"big-coder")
        app.screen.query_one("#model-writer", Input).value = ""  # back to the backend's model
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.results == [True])

    config = load_config(path, environ={})
    assert config.agents["coder"].backend == "gw"
    assert config.agents["coder"].model == "big-coder"
    assert config.agents["writer"].model is None
    assert config.agents["writer"].temperature == 0.9
    assert config.worker_idle_s == 77.0
    assert config.serve.port == 8124
    assert config.backends["gw"].model == "gpt-x"
    assert config.agents["advisor"].backend == "embedded"
    # Edited, not rewritten: the comment and layout stay, and only the changed lines differ.
    coder = '[agents.coder]\nbackend = "gw"\nmodel = "big-coder"\n\n'
    after = CONFIG.replace('model = "poet"\n', "").replace("[serve]\n", f"{coder}[serve]\n")
    assert path.read_text() == after


async def test_an_invalid_change_keeps_the_file_and_says_why(myninja_home: Path) -> None:
    path = myninja_home / "config.toml"
    path.write_text(CONFIG)
    app = Host(path)
    async with app.run_test(size=(80, 24)) as pilot:
        # Someone else drops the gateway while the screen still offers it.
        path.write_text("[agents.writer]\nmodel = 'poet'\n")
        before = path.read_bytes()
        app.screen.query_one("#backend-coder").focus()
        await pilot.press("enter", "down", "enter")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "agents.coder.backend" in text_of(app, "#message"))
        message = text_of(app, "#message")
        assert "'gw'" in message and "\n" not in message
        assert path.read_bytes() == before
        assert app.results == [] and isinstance(app.screen, SettingsScreen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.results == [False])
    assert path.read_bytes() == before


async def test_escape_writes_nothing(myninja_home: Path) -> None:
    path = myninja_home / "config.toml"
    path.write_text(CONFIG)
    app = Host(path)
    async with app.run_test(size=(80, 24)) as pilot:
        app.screen.query_one("#model-coder").focus()
        await pilot.press(*"unsaved")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.results == [False])
    assert path.read_text() == CONFIG


async def test_a_broken_file_is_reported_not_raised(myninja_home: Path) -> None:
    path = myninja_home / "config.toml"
    broken = "[agents.coder]\nbackend = 'nowhere'\n"
    path.write_text(broken)
    app = Host(path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "nowhere" in text_of(app, "#message"))
        await pilot.press("ctrl+s")  # nothing to save
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.results == [False])
    assert path.read_text() == broken  # reported, and the file left as it was


async def test_health_check_against_a_real_server_and_a_closed_port(
    myninja_home: Path, serve_tiny: ServerProcess
) -> None:
    dead_port = str(closed_port())
    path = myninja_home / "config.toml"
    path.write_text(
        f'[backends.tiny]\ntype = "openai"\nurl = "{serve_tiny.base_url}"\n'
        f'model = "{TINY_MODEL}"\n'
        f'[backends.dead]\ntype = "openai"\nurl = "http://127.0.0.1:{dead_port}/v1"\n'
        "max_retries = 0\nconnect_timeout = 2\n"
    )
    app = Host(path)
    async with app.run_test(size=(80, 24)) as pilot:
        tiny, dead = position(app, "tiny"), position(app, "dead")
        await pilot.click(f"#check-{dead}")
        await pilot.click(f"#check-{tiny}")
        tiny_cell, dead_cell = f"#health-{tiny}", f"#health-{dead}"
        await wait_for(pilot, lambda: dead_port in text_of(app, dead_cell), within_s=30)
        assert not text_of(app, dead_cell).startswith("ok")
        await wait_for(pilot, lambda: text_of(app, tiny_cell).startswith("ok"), within_s=120)
        assert re.fullmatch(r"ok · \d+ ms · \d+ tok/s", text_of(app, tiny_cell))
        assert dead_port in text_of(app, dead_cell)  # the first check was not disturbed


async def test_setting_a_key_stores_it_and_never_shows_it(myninja_home: Path) -> None:
    secret = "sk-test-Zebra4417"
    path = myninja_home / "config.toml"
    path.write_text(
        '[keys]\nstore = "file"\n'
        '[backends.gw]\ntype = "openai"\nurl = "http://127.0.0.1:9/v1"\nkey_name = "corp"\n'
    )
    app = Host(path)
    async with app.run_test(size=(80, 24)) as pilot:
        gw = position(app, "gw")
        state_before = text_of(app, f"#keystate-{gw}")
        box = app.screen.query_one(f"#key-{gw}", Input)
        box.focus()
        await pilot.press(*secret)
        assert secret not in app.export_screenshot()  # not even while typed
        await pilot.click(f"#setkey-{gw}")
        await wait_for(pilot, lambda: KeyStore("file").get("corp") == secret)
        await pilot.pause(0.1)
        assert box.value == ""
        state_after = text_of(app, f"#keystate-{gw}")
        assert state_after != state_before and "set" in state_after
        assert secret not in app.export_screenshot()
        assert all(secret not in widget.value for widget in app.screen.query(Input))
    assert KeyStore("file").get("gw") is None  # under the configured key name only


async def test_skill_grants_are_ticked_off_and_on_and_saved(myninja_home: Path) -> None:
    path = myninja_home / "config.toml"
    path.write_text(CONFIG + '\n[skills.grants]\nfiles = ["read_files"]\n')
    app = Host(path)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        files, sched = screen.skill_names.index("files"), screen.skill_names.index("scheduler")
        # Only what a skill declares is offered: the advisor needs nothing, and the coder
        # works in its task's own workspace, so neither has a row.
        assert "advisor" not in screen.skill_names and "coder" not in screen.skill_names
        assert screen.skill_permissions["scheduler"] == [
            "calendar_write",
            "network",
            "read_files",
            "send_email",
        ]
        assert screen.query_one(f"#grant-{files}-read_files", Checkbox).value is True
        network = screen.query_one(f"#grant-{sched}-network", Checkbox)
        assert network.value is False
        network.focus()
        await pilot.press("space")  # as a person ticks it
        screen.query_one(f"#grant-{files}-read_files", Checkbox).value = False
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.results == [True])
    config = load_config(path, environ={})
    assert config.skills.grants == {"scheduler": ["network"]}
    assert config.backends["gw"].model == "gpt-x"  # the rest is kept
