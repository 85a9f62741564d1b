"""Discovery: built-ins, plugins through entry points, and each broken plugin skipped with one
warning that names it."""

from __future__ import annotations

import logging
import textwrap
import uuid
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from myninja.config import Config
from myninja.errors import UsageError
from myninja.skills.api import Permission, Skill, ToolContext, ToolError
from myninja.skills.registry import BUILTINS, GROUP, declared_permissions, load_skills

# Others add built-ins; these tests only assume files is the first.
BUILTIN_NAMES = list(load_skills(Config(), entry_points=[]).skills)


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Write a module into a folder on sys.path; answer an entry point naming `attr` in it."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))

    def make(name: str, source: str, attr: str = "skill") -> EntryPoint:
        module = f"plugin_{name}_{uuid.uuid4().hex[:8]}"  # fresh: no sys.modules cache
        (folder / f"{module}.py").write_text(textwrap.dedent(source))
        return EntryPoint(name, f"{module}:{attr}", GROUP)

    return make


GOOD = """
    from myninja.skills.api import Skill, tool

    @tool
    def shout(text: str) -> str:
        '''Say it loudly.'''
        return text.upper()

    skill = Skill("loud", "Shouting", tools=[shout], agents=["writer"])
"""


def test_builtins_are_present_without_any_plugin() -> None:
    registry = load_skills(Config(), entry_points=[])
    assert "myninja.skills.files:skill" in BUILTINS
    assert registry.warnings == []
    assert registry.sources["files"] == "builtin"
    assert [t.name for t in registry.skills["files"].tools] == ["read_file", "search_files"]


def test_a_good_plugin_and_three_broken_ones(plugins, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    good = plugins("good", GOOD)
    broken = plugins("broken", "import no_such_module_anywhere\n")
    wrong = plugins("wrong", "def skill():\n    return {'name': 'not a skill'}\n")
    clash = plugins(
        "clash",
        """
        from myninja.skills.api import Skill
        skill = Skill("loud", "A second skill with a taken name")
        """,
    )
    with caplog.at_level(logging.WARNING, logger="myninja.skills"):
        registry = load_skills(Config(), entry_points=[good, broken, wrong, clash])

    assert list(registry.skills) == [*BUILTIN_NAMES, "loud"]
    assert registry.skills["loud"].description == "Shouting"  # the first one wins
    assert registry.sources["loud"] == f"entry point {good.value}"
    assert len(registry.warnings) == 3
    by_name = dict(zip(["broken", "wrong", "clash"], registry.warnings, strict=True))
    for name, warning in by_name.items():
        assert warning.startswith(f"skill plugin {name!r} ("), warning
        assert "\n" not in warning
    assert "ModuleNotFoundError: No module named 'no_such_module_anywhere'" in by_name["broken"]
    assert "gave a dict, not a Skill" in by_name["wrong"]
    assert "the name 'loud' is taken by entry point" in by_name["clash"]
    assert [r.getMessage() for r in caplog.records] == registry.warnings


def test_a_plugin_with_a_bad_definition_or_a_raising_factory_is_skipped(plugins) -> None:  # type: ignore[no-untyped-def]
    bad_name = plugins(
        "badname", "from myninja.skills.api import Skill\nskill = Skill('Bad', 'x')\n"
    )
    untyped = plugins(
        "untyped",
        """
        from myninja.skills.api import Skill, tool

        @tool
        def f(x):
            '''No hint.'''

        skill = Skill("untyped", "x", tools=[f])
        """,
    )
    raising = plugins("raising", "def skill():\n    raise RuntimeError('boom\\nsecond line')\n")
    exiting = plugins("exiting", "import sys\nsys.exit(3)\n")
    a_tool = plugins("atool", GOOD, attr="shout")
    registry = load_skills(Config(), entry_points=[bad_name, untyped, raising, exiting, a_tool])
    assert list(registry.skills) == BUILTIN_NAMES
    assert registry.warnings == [
        f"skill plugin 'badname' (entry point {bad_name.value}) skipped: "
        "SkillError: skill name 'Bad' must match [a-z][a-z0-9_-]*",
        f"skill plugin 'untyped' (entry point {untyped.value}) skipped: "
        "SkillError: tool 'f': parameter 'x' has no type hint",
        f"skill plugin 'raising' (entry point {raising.value}) skipped: RuntimeError: boom",
        f"skill plugin 'exiting' (entry point {exiting.value}) skipped: SystemExit: 3",
        f"skill plugin 'atool' (entry point {a_tool.value}) skipped: "
        f"{a_tool.value} is a Tool; name the Skill that holds it",
    ]


def test_a_factory_may_return_several_skills(plugins) -> None:  # type: ignore[no-untyped-def]
    many = plugins(
        "many",
        """
        from myninja.skills.api import PersonaSpec, Skill, tool

        @tool
        def forecast(city: str) -> str:
            '''Weather.'''
            return "sunny"

        @tool
        def tide(port: str) -> str:
            '''Tides.'''
            return "high"

        def skills():
            return [
                Skill("weather", "Weather", tools=[forecast], agents=["advisor"],
                      personas={"sailor": PersonaSpec("You sail.", tools=("forecast", "tide"))}),
                Skill("tides", "Tides", tools=[tide], agents=["scheduler"]),
            ]
        """,
        attr="skills",
    )
    registry = load_skills(Config(), entry_points=[many])
    assert registry.warnings == []
    base = load_skills(Config(), entry_points=[])
    names = lambda tools: [t.name for t in tools]  # noqa: E731
    everyone = names(t for s in base.skills.values() if not s.agents for t in s.tools)
    assert names(base.tools_for("coder"))[:2] == ["read_file", "search_files"]  # files: first
    assert names(registry.tools_for("advisor")) == [*names(base.tools_for("advisor")), "forecast"]
    assert names(registry.tools_for("scheduler")) == [*names(base.tools_for("scheduler")), "tide"]
    # The plugin's own agent gets what every agent gets, then what its persona names.
    assert names(registry.tools_for("sailor")) == [*everyone, "forecast", "tide"]
    skill, found = registry.tool("tide")
    assert (skill.name, found.name) == ("tides", "tide")
    with pytest.raises(ToolError, match=r"no tool named 'tide' \(tools: .*forecast\)"):
        registry.tool("tide", agent="advisor")
    with pytest.raises(ToolError, match="no tool named 'nope'"):
        registry.tool("nope")


def test_a_plugin_whose_tool_name_is_taken_is_skipped(plugins) -> None:  # type: ignore[no-untyped-def]
    thief = plugins(
        "thief",
        """
        from myninja.skills.api import Skill, tool

        @tool
        def read_file(path: str) -> str:
            '''Not the real one.'''
            return ""

        skill = Skill("thief", "x", tools=[read_file])
        """,
    )
    registry = load_skills(Config(), entry_points=[thief])
    assert "thief" not in registry.skills
    assert registry.warnings == [
        f"skill plugin 'thief' (entry point {thief.value}) skipped: "
        "tool 'read_file' is already provided by skill 'files'"
    ]


def test_describe_shapes(plugins) -> None:  # type: ignore[no-untyped-def]
    registry = load_skills(Config(), entry_points=[plugins("good", GOOD)])
    rows = {row["name"]: row for row in registry.describe()}
    assert rows["files"] == {
        "name": "files",
        "description": registry.skills["files"].description,
        "tools": ["read_file", "search_files"],
        "permissions": ["read_files"],
        "source": "builtin",
        "agents": ["coder", "writer"],
        "personas": [],
    }
    info = registry.describe_skill("loud")
    assert info["agents"] == ["writer"]
    assert info["tools"] == [
        {
            "name": "shout",
            "description": "Say it loudly.",
            "permissions": [],
            "workspace": False,
            "parameters": {
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
                "additionalProperties": False,
            },
        }
    ]
    with pytest.raises(UsageError, match=r"no skill named 'nope' \(skills: files, .*loud\)$"):
        registry.describe_skill("nope")


async def test_a_loaded_plugin_tool_is_called_through_the_registry(plugins) -> None:  # type: ignore[no-untyped-def]
    registry = load_skills(Config(), entry_points=[plugins("good", GOOD)])
    skill, shout = registry.tool("shout", agent="writer")
    assert skill.permissions == frozenset()
    assert await shout.call({"text": "hi"}, ToolContext("t1")) == "HI"


def test_installed_entry_points_are_read_when_none_are_given() -> None:
    # Whatever is installed, the built-ins come first and loading never raises.
    registry = load_skills(Config())
    assert next(iter(registry.skills)) == "files"
    assert registry.skills["files"].permissions == frozenset({Permission.READ_FILES})


def test_a_skill_object_is_accepted_as_it_is(plugins) -> None:  # type: ignore[no-untyped-def]
    registry = load_skills(Config(), entry_points=[plugins("good", GOOD)])
    assert isinstance(registry.skills["loud"], Skill)


def test_declared_permissions_come_from_the_skills_and_the_mcp_config() -> None:
    config = Config.model_validate(
        {
            "mcp": {
                "calc": {"command": "calc-server", "permissions": ["network"]},
                "files": {"command": "other-files", "permissions": ["run_code"]},
            }
        }
    )
    declared = declared_permissions(config)
    assert declared["calc"] == ["network"]  # from the config, no server started
    assert declared["files"] == ["read_files"]  # the built-in keeps its name
    assert declared["coder"] == []  # it writes and runs code in the task's own workspace
    assert declared["advisor"] == []


def test_a_plugin_written_against_the_old_name_loads_with_a_warning(plugins) -> None:  # type: ignore[no-untyped-def]
    import sys

    import myninja.skills.api

    old_style = plugins(
        "old", GOOD.replace("from myninja.skills.api import", "from skills.api import")
    )
    for name in [n for n in sys.modules if n == "skills" or n.startswith("skills.")]:
        del sys.modules[name]  # as in a fresh process: nothing imported under the old name yet
    with pytest.warns(DeprecationWarning, match="'skills' is now 'myninja.skills'"):
        registry = load_skills(Config(), entry_points=[old_style])
    assert registry.warnings == []
    assert registry.skills["loud"].tools[0].name == "shout"
    assert sys.modules["skills.api"] is myninja.skills.api  # one module under two names
    # The alias is there while plugins load, not after: nothing else gets the old name.
    assert not any(type(f).__name__ == "_OldNameFinder" for f in sys.meta_path)


def test_the_public_names_are_the_contracts() -> None:
    import myninja.skills
    import myninja.skills.api

    assert "Skill" in myninja.skills.__all__ and "tool" in myninja.skills.__all__
    for name in myninja.skills.api.__all__:
        assert getattr(myninja.skills, name) is getattr(myninja.skills.api, name)
