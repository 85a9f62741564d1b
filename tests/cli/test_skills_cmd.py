"""`myninja skills list/info` through the real console script, with plugins found the way an
installed package is found: a dist-info folder on the path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, run_myninja, scripted_config


def fake_install(site: Path, dist: str, version: str, entry: str, module: str = "") -> None:
    """What pip leaves behind, reduced to what entry-point discovery reads."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[myninja.skills]\n{entry}\n")
    if module:
        name, source = module.split("\n", 1)
        (site / f"{name}.py").write_text(source)


def test_list_json_has_the_builtins() -> None:
    done = run_myninja("skills", "list", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    files = next(row for row in rows if row["name"] == "files")
    assert files == {
        "name": "files",
        "description": "Read and search files under the directories the person allowed",
        "tools": ["read_file", "search_files"],
        "permissions": ["read_files"],
        "source": "builtin",
        "agents": ["coder", "writer"],
        "personas": [],
        "granted": [],
    }


def test_list_text_and_info() -> None:
    listed = run_myninja("skills", "list")
    assert listed.returncode == 0
    assert listed.stdout.startswith("files ")
    assert "needs read_files; tools read_file, search_files; for coder, writer" in listed.stdout
    info = run_myninja("skills", "info", "files")
    assert info.returncode == 0
    assert "tool read_file (needs read_files)" in info.stdout
    assert '"first_line": {' in info.stdout


def test_info_json_gives_each_tool_its_schema() -> None:
    done = run_myninja("skills", "info", "files", "--json")
    info = json.loads(done.stdout)
    assert [t["name"] for t in info["tools"]] == ["read_file", "search_files"]
    read = info["tools"][0]
    assert read["permissions"] == ["read_files"]
    assert read["parameters"]["required"] == ["path"]
    assert read["parameters"]["properties"]["first_line"]["default"] == 1
    assert info["hooks"] == []


def test_unknown_skill_is_one_line_exit_2() -> None:
    done = run_myninja("skills", "info", "nope")
    assert done.returncode == 2
    assert done.stderr.startswith("myninja: error: no skill named 'nope' (skills: files")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_a_broken_plugin_is_one_warning_line_and_the_rest_still_lists(tmp_path: Path) -> None:
    site = tmp_path / "site"
    fake_install(site, "myninja-skill-broken", "0.3.1", "broken = broken_plugin:skill",
                 "broken_plugin\nraise ImportError('needs libfoo')\n")  # fmt: skip
    fake_install(site, "myninja-skill-echo", "1.0", "echo = echo_plugin:skill",
                 "echo_plugin\nfrom myninja.skills.api import Skill, tool\n"
                 "@tool\ndef echo(text: str) -> str:\n    '''Echo.'''\n    return text\n"
                 "skill = Skill('echo', 'Echoes', tools=[echo])\n")  # fmt: skip
    done = run_myninja("skills", "list", "--json", env={"PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        "myninja: warning: skill plugin 'broken' (myninja-skill-broken 0.3.1) skipped: "
        "ImportError: needs libfoo\n"
    )
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert rows["echo"]["source"] == "myninja-skill-echo 1.0"
    assert rows["echo"]["tools"] == ["echo"]


@pytest.mark.slow
def test_the_example_plugin_is_discovered_after_pip_install_and_used_in_a_task(
    tmp_path: Path, myninja_home: Path
) -> None:
    # A copy, so the build's leftovers (build/, *.egg-info) never land in the repository.
    source = tmp_path / "src"
    shutil.copytree(REPO / "examples" / "myninja-skill-weather", source)
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(source)],
        check=True, capture_output=True, text=True, timeout=240,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )  # fmt: skip
    env = {"PYTHONPATH": str(target)}
    listed = run_myninja("skills", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr == ""
    weather = next(row for row in json.loads(listed.stdout) if row["name"] == "weather")
    assert weather["source"] == "myninja-skill-weather 0.1.0"
    assert weather["tools"] == ["forecast"]
    assert weather["permissions"] == []
    assert weather["agents"] == ["advisor", "scheduler"]
    info = json.loads(run_myninja("skills", "info", "weather", "--json", env=env).stdout)
    params = info["tools"][0]["parameters"]
    assert params["required"] == ["city"]
    assert params["properties"]["days"] == {
        "default": 1,
        "description": "How many days ahead, from 1 to 3.",
        "maximum": 3,
        "minimum": 1,
        "type": "integer",
    }
    # Used: on a model offered no tools, its prepare hook runs the tool for the advisor.
    scripted_config(
        myninja_home,
        [
            {"match": "Task to plan", "json": {"steps": [{"title": "Advise", "instruction": "."}]}},
            {"match": "Candidate:", "json": {"score": 9, "reasons": "ok"}},
            {"match": "Forecast for Oslo: day 1: snow, -3", "reply": "Take the bus: snow."},
            {"match": "Attempt 1", "reply": "Cycle, surely."},
        ],
    )
    with (myninja_home / "config.toml").open("a") as config:
        config.write("[graph]\nbranches = 1\n")
    asked = run_myninja("ask", "--json", "@advisor Should I cycle in Oslo tomorrow?", env=env)
    assert asked.returncode == 0, asked.stderr
    events = [json.loads(line) for line in asked.stdout.splitlines()]
    (call,) = [e for e in events if e["type"] == "tool_call"]
    assert call["name"] == "forecast" and call["arguments"] == {"city": "oslo", "days": 3}
    assert events[-1]["type"] == "task_done"
    assert events[-1]["answer"] == "Take the bus: snow."


def test_ask_exits_3_with_the_permission_question_unless_allowed(
    myninja_home: Path, tmp_path: Path
) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "otters.txt").write_text("Otters hold hands.\n")
    scripted_config(
        myninja_home,
        [
            {"match": "Task to plan", "json": {"steps": [{"title": "Read", "instruction": "."}]}},
            {"match": "Candidate:", "json": {"score": 9, "reasons": "ok"}},
            {"match": "tool: Otters hold hands", "reply": "They hold hands."},
            {
                "match": "Attempt 1",
                "tool_calls": [{"name": "read_file", "arguments": {"path": "otters.txt"}}],
            },
        ],
    )
    with (myninja_home / "config.toml").open("a") as config:
        config.write(
            f"[graph]\nbranches = 1\n[agents.coder]\ntools = true\n"
            f'[skills]\nallowed_dirs = ["{notes}"]\n'
        )
    asked = run_myninja("ask", "@coder What do my notes say?")
    assert asked.returncode == 3, asked.stderr
    question = json.loads(asked.stdout.splitlines()[-1])
    assert question["question"].startswith("Allow the files skill to read your files?")
    assert question["choices"] == ["allow once", "always allow", "deny"]
    allowed = run_myninja("ask", "@coder What do my notes say?", "--allow", "read_files")
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout.strip() == "They hold hands."
    wrong = run_myninja("ask", "@coder x", "--allow", "root")
    assert wrong.returncode == 2 and "Invalid value for '--allow'" in wrong.stderr
    # Granted for good from the command line: no question, until it is taken back.
    granted = run_myninja("skills", "grant", "files", "read_files", "--json")
    assert granted.returncode == 0, granted.stderr
    assert json.loads(granted.stdout)["granted"] == ["read_files"]
    assert run_myninja("ask", "@coder What do my notes say?").returncode == 0
    listed = json.loads(run_myninja("skills", "list", "--json").stdout)
    assert next(row for row in listed if row["name"] == "files")["granted"] == ["read_files"]
    assert "allowed_dirs" in (myninja_home / "config.toml").read_text()  # the rest is kept
    revoked = run_myninja("skills", "revoke", "files")
    assert revoked.returncode == 0, revoked.stderr
    assert "files may now use without asking: nothing" in revoked.stdout
    assert run_myninja("ask", "@coder What do my notes say?").returncode == 3


def test_grant_refuses_what_a_skill_does_not_need_in_one_line(myninja_home: Path) -> None:
    undeclared = run_myninja("skills", "grant", "files", "read_files", "network")
    assert undeclared.returncode == 2
    assert undeclared.stderr.startswith(
        "myninja: error: skill 'files' does not need network (it needs read_files)"
    )
    assert undeclared.stderr.count("\n") == 1
    unknown = run_myninja("skills", "grant", "nope", "run_code")
    assert unknown.returncode == 2 and "no skill named 'nope'" in unknown.stderr
    missing = run_myninja("skills", "grant", "files")
    assert missing.returncode == 2
    error = missing.stderr.rstrip("\n").split("\n")[-1]
    assert error.startswith("Error: Missing argument 'PERMISSION...'. Choose from: network, ")
    assert "run_code" in error  # every choice on the error's own line
    assert not (myninja_home / "config.toml").exists()  # nothing half-granted


def test_skills_list_includes_the_configured_mcp_servers(
    myninja_home: Path, tmp_path: Path
) -> None:
    from tests.skills.test_mcp_bridge import SERVER

    script = tmp_path / "calc_server.py"
    script.write_text(SERVER)
    (myninja_home / "config.toml").write_text(
        f'[mcp.calc]\ncommand = "{sys.executable}"\nargs = ["{script}"]\n'
        f'[mcp.broken]\ncommand = "{tmp_path / "missing"}"\n'
    )
    done = run_myninja("skills", "list", "--json")
    assert done.returncode == 0, done.stderr
    calc = next(row for row in json.loads(done.stdout) if row["name"] == "calc")
    assert calc["source"] == "mcp:calc" and calc["permissions"] == ["run_code"]
    assert sorted(calc["tools"]) == ["add", "fail", "whoami"]
    (warning,) = done.stderr.strip().splitlines()
    assert warning.startswith("myninja: warning: MCP server 'broken' skipped: MCP server 'broken'")
