"""Agent and permission names are defined once, in myninja.config (the plugin contract
re-exports Permission). What is kept per name elsewhere (a persona, a route kind, the words a
question uses) must cover every name, so a new agent or permission fails here until it has them,
and every list the command line offers must be the definition itself."""

from __future__ import annotations

from collections.abc import Iterator

import click

from myninja.agent_graph.permissions import PERMISSION_WORDS, question
from myninja.agent_graph.personas import PERSONAS
from myninja.agent_graph.prompts import FAST_AGENT, ROUTE_KINDS, ROUTE_SHOTS, route_messages
from myninja.config import AGENTS, WORKER_AGENTS, Config
from myninja.config import Permission as ConfigPermission
from myninja.ninja_tui.cli.main import cli
from myninja.skills.api import Permission

PERMISSIONS = tuple(permission.value for permission in Permission)


def test_every_permission_has_its_own_words_in_the_question() -> None:
    assert set(PERMISSION_WORDS) == set(Permission)
    assert len(set(PERMISSION_WORDS.values())) == len(Permission)  # no two read alike
    for permission in Permission:
        asked = question("files", "read_file", [permission.value])["text"]
        assert PERMISSION_WORDS[permission] in asked


def test_the_config_schema_takes_exactly_the_permissions_skills_declare() -> None:
    assert Permission is ConfigPermission  # one enum, re-exported by the plugin contract
    grants = Config.model_validate({"skills": {"grants": {"files": list(PERMISSIONS)}}})
    assert grants.skills.grants["files"] == list(PERMISSIONS)


def test_every_agent_has_a_persona_and_every_worker_agent_a_route_kind() -> None:
    assert set(WORKER_AGENTS) < set(AGENTS) and FAST_AGENT in WORKER_AGENTS
    assert set(PERSONAS) == set(AGENTS)
    assert sorted(ROUTE_KINDS.values()) == sorted(WORKER_AGENTS)  # one kind for each
    guide = route_messages("x", [])[0]["content"]
    for kind in ROUTE_KINDS:
        assert f"\n{kind}: " in guide, f"the router's prompt does not describe {kind!r}"
        assert any(shown == kind for _, shown in ROUTE_SHOTS), f"no example routes to {kind!r}"
    assert Config().agents.keys() == set(AGENTS)


def choices(command: click.Command, path: str = "myninja") -> Iterator[tuple[str, tuple[str, ...]]]:
    """(command and option, its choices) for every Choice the command line offers."""
    if isinstance(command, click.Group):
        context = click.Context(command)
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            assert sub is not None
            yield from choices(sub, f"{path} {name}")
    for param in command.params:
        if isinstance(param.type, click.Choice):
            yield f"{path} {param.name}", tuple(str(choice) for choice in param.type.choices)


def test_every_agent_or_permission_choice_of_the_command_line_is_the_definition() -> None:
    offered = dict(choices(cli))
    naming = {where: names for where, names in offered.items() if set(names) & set(AGENTS)}
    assert "myninja ask agent" in naming and "myninja backends add agents" in naming
    for where, names in naming.items():
        assert names in (WORKER_AGENTS, AGENTS), where
    permissions = {where: names for where, names in offered.items() if set(names) & {*PERMISSIONS}}
    assert {"myninja ask allow", "myninja skills grant permissions"} <= permissions.keys()
    for where, names in permissions.items():
        assert names == PERMISSIONS, where
