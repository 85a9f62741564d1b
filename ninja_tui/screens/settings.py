"""Settings a person changes often, without editing TOML: which backend and model each agent
uses, whether each backend answers, the gateway keys, and what each skill may do without
asking.

Agent choices are written with `update_config_file` (validated first; the rest of the file,
comments included, kept as written); a check runs the same probe as `myninja backends test`;
a key goes to the same store as `myninja keys set` and is never shown again. Dismissed with
True after a save, False on escape.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Input, Label, Select, Static

from myninja.backends.factory import make_backend
from myninja.backends.health import probe
from myninja.backends.keys import key_name, key_store
from myninja.config import AGENTS, Config, GatewayBackendConfig
from myninja.config_file import load_config, update_config_file
from myninja.errors import MyninjaError
from myninja.skills.registry import declared_permissions


def health_line(report: dict[str, Any]) -> str:
    """One line for a probe report: latency to the first token and decode speed, or the error."""
    if not report["ok"]:
        return report["error"]
    parts = ["ok", f"{report['first_token_s'] * 1000:.0f} ms"]
    if report["tokens_per_s"]:
        parts.append(f"{report['tokens_per_s']:.0f} tok/s")
    return " · ".join(parts)


def backend_model(config: Config, backend: str) -> str | None:
    cfg = config.backends.get(backend)
    return cfg.model if cfg is not None else None


class SettingsScreen(Screen[bool]):
    """Widget ids use the agent's name and the backend's position (a backend's name is any TOML
    key, not always a valid id)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "cancel", "Cancel"),
    ]
    DEFAULT_CSS = """
    SettingsScreen #body {
        height: 1fr;
        padding: 0 1;
    }
    SettingsScreen .path {
        color: $text-muted;
    }
    SettingsScreen .heading {
        margin-top: 1;
        text-style: bold;
    }
    SettingsScreen .row {
        height: auto;
    }
    SettingsScreen .name {
        width: 12;
    }
    SettingsScreen .row Select {
        width: 24;
        margin-right: 1;
    }
    SettingsScreen .row Input {
        width: 1fr;
    }
    SettingsScreen .kind {
        width: 10;
        color: $text-muted;
    }
    SettingsScreen .row Button {
        margin: 0 1;
    }
    SettingsScreen .row Checkbox {
        margin-right: 2;
    }
    SettingsScreen .health {
        width: 1fr;
    }
    SettingsScreen .health.-ok {
        color: $success;
    }
    SettingsScreen .health.-failed {
        color: $error;
    }
    SettingsScreen #message {
        height: auto;
        padding: 0 1;
    }
    SettingsScreen #message.-error {
        color: $error;
    }
    """

    def __init__(self, config_path: Path) -> None:
        super().__init__()
        self.config_path = config_path
        self.config: Config | None = None
        self.load_error = ""
        try:
            self.config = load_config(config_path)
        except MyninjaError as exc:
            self.load_error = exc.one_line()
        # Position → name, for the widgets of each backend and each skill.
        self.backend_names = list(self.config.backends) if self.config else []
        # Only skills that need a permission get a row.
        self.skill_permissions = (
            {n: p for n, p in declared_permissions(self.config).items() if p} if self.config else {}
        )
        self.skill_names = list(self.skill_permissions)

    # -- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="body"):
            yield Label(f"Settings in {self.config_path}", markup=False, classes="path")
            if self.config is not None:
                yield from self._compose_agents(self.config)
                yield from self._compose_backends(self.config)
                yield from self._compose_grants(self.config)
        yield Static(
            self.load_error,
            markup=False,
            id="message",
            classes="-error" if self.load_error else "",
        )
        yield Footer()

    def _compose_agents(self, config: Config) -> ComposeResult:
        yield Label(
            "Agents: backend and model (an empty model is the backend's own)", classes="heading"
        )
        options = [(name, name) for name in self.backend_names]
        for agent in AGENTS:
            cfg = config.agent(agent)
            with Horizontal(classes="row"):
                yield Label(agent, classes="name")
                yield Select(
                    options,
                    value=cfg.backend,
                    allow_blank=False,
                    compact=True,
                    id=f"backend-{agent}",
                )
                yield Input(
                    cfg.model or "",
                    placeholder=_model_hint(config, cfg.backend),
                    compact=True,
                    id=f"model-{agent}",
                )

    def _compose_backends(self, config: Config) -> ComposeResult:
        yield Label("Backends: check that each answers; gateway keys", classes="heading")
        for i, name in enumerate(self.backend_names):
            cfg = config.backends[name]
            with Horizontal(classes="row"):
                yield Label(name, markup=False, classes="name")
                yield Label(cfg.type, classes="kind")
                yield Button("Check", compact=True, id=f"check-{i}")
                yield Static("not checked", markup=False, classes="health", id=f"health-{i}")
            if isinstance(cfg, GatewayBackendConfig):
                with Horizontal(classes="row"):
                    yield Label("", classes="name")
                    yield Label("", classes="kind", id=f"keystate-{i}")
                    yield Input(
                        placeholder=f"API key for {key_name(name, cfg)}",
                        password=True,
                        compact=True,
                        id=f"key-{i}",
                    )
                    yield Button("Set", compact=True, id=f"setkey-{i}")

    def _compose_grants(self, config: Config) -> ComposeResult:
        yield Label("Skills: what each may do without asking", classes="heading")
        for i, name in enumerate(self.skill_names):
            granted = config.skills.grants.get(name, [])
            with Horizontal(classes="row"):
                yield Label(name, markup=False, classes="name")
                for permission in self.skill_permissions[name]:
                    yield Checkbox(
                        permission,
                        permission in granted,
                        compact=True,
                        id=f"grant-{i}-{permission}",
                    )

    def on_mount(self) -> None:
        for i in self._gateway_positions():
            self._show_key_state(i)

    # -- agents ------------------------------------------------------------------------------

    def on_select_changed(self, event: Select.Changed) -> None:
        select_id = event.select.id or ""
        if self.config is None or not select_id.startswith("backend-"):
            return
        agent = select_id.removeprefix("backend-")
        model = self.query_one(f"#model-{agent}", Input)
        model.placeholder = _model_hint(self.config, str(event.value))

    def changes(self) -> dict[str, Any]:
        """What differs from the loaded configuration, as dotted keys for update_config_file."""
        assert self.config is not None
        found: dict[str, Any] = {}
        for agent in AGENTS:
            now = self.config.agent(agent)
            backend = self.query_one(f"#backend-{agent}", Select).value
            if isinstance(backend, str) and backend != now.backend:
                found[f"agents.{agent}.backend"] = backend
            model = self.query_one(f"#model-{agent}", Input).value.strip() or None
            if model != now.model:
                found[f"agents.{agent}.model"] = model
        for i, name in enumerate(self.skill_names):
            ticked = [
                permission
                for permission in self.skill_permissions[name]
                if self.query_one(f"#grant-{i}-{permission}", Checkbox).value
            ]
            if set(ticked) != set(self.config.skills.grants.get(name, [])):
                found[f"skills.grants.{name}"] = ticked or None
        return found

    def action_save(self) -> None:
        if self.config is None:
            return  # nothing loaded, nothing to save: escape closes
        changes = self.changes()
        if changes:
            try:
                update_config_file(self.config_path, changes)
            except MyninjaError as exc:
                self._say(exc.one_line(), error=True)
                return
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)

    # -- backends ----------------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        kind, _, position = (event.button.id or "").rpartition("-")
        if kind == "check":
            self.check(int(position))
        elif kind == "setkey":
            self.set_key(int(position))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        kind, _, position = (event.input.id or "").rpartition("-")
        if kind == "key":
            event.stop()
            self.set_key(int(position))

    def check(self, position: int) -> None:
        """Probe one backend in the background; a second check of it replaces the first."""
        cell = self.query_one(f"#health-{position}", Static)
        cell.set_classes("health")
        cell.update("checking…")
        self.run_worker(
            self._check(position), group=f"health-{position}", exclusive=True, exit_on_error=False
        )

    async def _check(self, position: int) -> None:
        assert self.config is not None
        name = self.backend_names[position]
        try:
            # Building a gateway reads the key store, which may wait on the system keyring.
            backend = await asyncio.to_thread(make_backend, self.config, name)
            report = await probe(backend)
        except MyninjaError as exc:
            report = {"ok": False, "error": exc.one_line()}
        except Exception as exc:  # a backend's bug must not take the settings screen down
            report = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        cell = self.query_one(f"#health-{position}", Static)
        cell.set_classes(["health", "-ok" if report["ok"] else "-failed"])
        cell.update(health_line(report))

    def set_key(self, position: int) -> None:
        assert self.config is not None
        name = self.backend_names[position]
        cfg = self.config.backends[name]
        assert isinstance(cfg, GatewayBackendConfig)
        box = self.query_one(f"#key-{position}", Input)
        if not box.value.strip():
            self._say(f"type the key for {name} first", error=True)
            return
        store = key_store(self.config)
        try:
            store.set(key_name(name, cfg), box.value.strip())
        except MyninjaError as exc:
            self._say(exc.one_line(), error=True)
            return
        finally:
            box.value = ""  # the key lives in the store, not in a widget
        self._show_key_state(position)
        if store.uses_file:
            self._say(f"key for {name} stored in a plain file ({store.file}, mode 0600)")
        else:
            self._say(f"key for {name} stored in the system keyring")

    def _show_key_state(self, position: int) -> None:
        assert self.config is not None
        name = self.backend_names[position]
        cfg = self.config.backends[name]
        assert isinstance(cfg, GatewayBackendConfig)
        try:
            has_key = key_store(self.config).get(key_name(name, cfg)) is not None
        except MyninjaError:
            has_key = False
        self.query_one(f"#keystate-{position}", Label).update("key set" if has_key else "no key")

    def _gateway_positions(self) -> list[int]:
        if self.config is None:
            return []
        backends = self.config.backends
        return [
            i
            for i, name in enumerate(self.backend_names)
            if isinstance(backends[name], GatewayBackendConfig)
        ]

    def _say(self, text: str, *, error: bool = False) -> None:
        message = self.query_one("#message", Static)
        message.set_class(error, "-error")
        message.update(text)


def _model_hint(config: Config, backend: str) -> str:
    model = backend_model(config, backend)
    return f"default: {model}" if model else "the backend's default model"
