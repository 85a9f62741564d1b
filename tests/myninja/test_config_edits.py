"""Config writes edit the person's file: every line a change does not touch stays byte for byte,
comments, blank lines and layout included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from myninja.agent_graph.permissions import Grants
from myninja.config_file import load_config, update_config_file
from myninja.errors import ConfigError
from tests.conftest import run_myninja

# Written as a person would: a header, comments above and beside keys, blank lines, an inline
# table, a multi-line array with comments, and tables no change below touches.
COMMENTED = """\
# myninja, set up by hand.
# Keep the lab backend first.

default_agent = "coder"  # code is what I do
worker_idle_s = 120

[backends]
lab = { type = "openai", url = "http://127.0.0.1:9/v1" }  # the box under the desk

[agents.coder]
# The lab's model writes the code.
backend = "lab"
temperature = 0.2  # 0.7 was too loose

[research]
corpora = [
    "notes",  # my own
    "papers",
]

[skills]
allowed_dirs = ["{notes}"]  # nothing else is read

[serve]
port = 8123  # the dev port
"""


def commented_config(home: Path, notes: Path) -> tuple[Path, list[str]]:
    """The commented config in `home`, and its lines (ends kept) to compare edits with."""
    path = home / "config.toml"
    path.write_text(COMMENTED.replace("{notes}", str(notes)), encoding="utf-8")
    return path, lines_of(path)


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def edited(
    lines: list[str], at: str, drop: int = 0, put: tuple[str, ...] = (), below: bool = False
) -> list[str]:
    """`lines` with `drop` lines taken out from the one that starts with `at` (or the one below
    it), and `put` in their place: what an edit there must leave, every other line as it was."""
    where = next(i for i, line in enumerate(lines) if line.startswith(at)) + below
    return [*lines[:where], *put, *lines[where + drop :]]


def test_a_grant_from_the_command_line_adds_its_lines_and_a_revoke_restores_the_file(
    myninja_home: Path, tmp_path: Path
) -> None:
    path, before = commented_config(myninja_home, tmp_path)
    granted = run_myninja("skills", "grant", "files", "read_files", "--json")
    assert granted.returncode == 0, granted.stderr
    assert json.loads(granted.stdout)["granted"] == ["read_files"]
    # The new table goes beside [skills], parted by a blank line from the table after it.
    added = ("[skills.grants]\n", 'files = ["read_files"]\n', "\n")
    assert lines_of(path) == edited(before, "[serve]", put=added)
    assert load_config(path, environ={}).skills.grants == {"files": ["read_files"]}

    again = run_myninja("skills", "grant", "files", "read_files")
    assert again.returncode == 0, again.stderr
    assert lines_of(path) == edited(before, "[serve]", put=added)  # nothing new: no line moves

    revoked = run_myninja("skills", "revoke", "files")
    assert revoked.returncode == 0, revoked.stderr
    assert lines_of(path) == before


def test_always_allow_from_a_question_writes_the_same_lines(
    myninja_home: Path, tmp_path: Path
) -> None:
    path, before = commented_config(myninja_home, tmp_path)
    assert Grants(load_config(path, environ={})).always("files", ["read_files"]) is None
    added = ("[skills.grants]\n", 'files = ["read_files"]\n', "\n")
    assert lines_of(path) == edited(before, "[serve]", put=added)


def test_a_changed_value_keeps_its_comment_and_its_place(tmp_path: Path) -> None:
    path, before = commented_config(tmp_path, tmp_path)
    update_config_file(path, {"serve.port": 9000, "agents.coder.temperature": 0.4})
    after = edited(before, "port = ", drop=1, put=("port = 9000  # the dev port\n",))
    after = edited(
        after, "temperature = ", drop=1, put=("temperature = 0.4  # 0.7 was too loose\n",)
    )
    assert lines_of(path) == after


def test_a_key_set_in_an_inline_table_keeps_it_inline_on_its_line(tmp_path: Path) -> None:
    path, before = commented_config(tmp_path, tmp_path)
    update_config_file(path, {"backends.lab.model": "qwen"})
    line = 'lab = { type = "openai", url = "http://127.0.0.1:9/v1", model = "qwen" }'
    assert lines_of(path) == edited(
        before, "lab = ", drop=1, put=(f"{line}  # the box under the desk\n",)
    )
    assert load_config(path, environ={}).backends["lab"].model == "qwen"


def test_new_keys_go_below_their_table_s_last_and_new_tables_at_the_end(tmp_path: Path) -> None:
    path, before = commented_config(tmp_path, tmp_path)
    changes = {"graph.branches": 2, "graph.judge": "each", "notify_command": "notify-me"}
    update_config_file(path, {**changes, "agents.coder.max_tokens": 900})
    after = edited(before, "worker_idle_s", put=('notify_command = "notify-me"\n',), below=True)
    after = edited(after, "temperature = ", put=("max_tokens = 900\n",), below=True)
    assert lines_of(path) == [*after, "\n", "[graph]\n", "branches = 2\n", 'judge = "each"\n']


def test_a_new_table_of_a_kind_goes_beside_its_kin(tmp_path: Path) -> None:
    path, before = commented_config(tmp_path, tmp_path)
    # Key by key, as the settings screen gives them: the second goes into the table just made.
    update_config_file(path, {"agents.judge.model": "j", "agents.judge.temperature": 0.1})
    judge = ("[agents.judge]\n", 'model = "j"\n', "temperature = 0.1\n", "\n")
    assert lines_of(path) == edited(before, "[research]", put=judge)


def test_a_removed_key_takes_its_line_alone(tmp_path: Path) -> None:
    path, before = commented_config(tmp_path, tmp_path)
    update_config_file(path, {"agents.coder.temperature": None, "default_agent": None})
    after = edited(before, "temperature = ", drop=1)
    assert lines_of(path) == edited(after, "default_agent", drop=1)
    assert load_config(path, environ={}).default_agent == "assistant"


def test_a_table_emptied_of_keys_stays_while_it_holds_a_comment(tmp_path: Path) -> None:
    path, before = commented_config(tmp_path, tmp_path)
    update_config_file(path, {"agents.coder.backend": None, "agents.coder.temperature": None})
    after = edited(before, "backend = ", drop=2)
    assert lines_of(path) == after  # "# The lab's model writes the code." is the person's
    update_config_file(path, {"serve.port": None})
    assert lines_of(path) == after[: after.index("[serve]\n") - 1]  # [serve] and its blank go


def test_a_backend_given_anew_is_edited_key_by_key(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[backends.lab]\ntype = "openai"  # vLLM\nurl = "http://127.0.0.1:9/v1"\n'
        "max_retries = 1\n\n[serve]\nport = 1\n",
        encoding="utf-8",
    )
    before = lines_of(path)
    update_config_file(path, {"backends.lab": {"type": "openai", "url": "http://127.0.0.1:8/v1"}})
    after = edited(before, "url = ", drop=2, put=('url = "http://127.0.0.1:8/v1"\n',))
    assert lines_of(path) == after


@pytest.mark.parametrize("changes", [{"graph.branches": 99}, {"serve.port.number": 1}])
def test_a_refused_change_leaves_the_commented_file_as_it_was(
    tmp_path: Path, changes: dict[str, object]
) -> None:
    path, _ = commented_config(tmp_path, tmp_path)
    before = path.read_bytes()
    with pytest.raises(ConfigError) as caught:
        update_config_file(path, changes)
    assert str(path) in caught.value.one_line()
    assert path.read_bytes() == before
