"""The permission gate: what each skill may do for a task, and asking the person for the rest.

A tool runs only with every permission it declares granted to its skill: for good (the config's
`[skills.grants]`, or "always" answered in a question), for this task (`--allow PERM`, or
"allow once"), or not at all. A missing one becomes a question through the graph's interrupt,
so the app shows it, `ask` exits 3 with it, and the answer resumes the task."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from myninja import paths
from myninja.config import Config
from myninja.config_file import update_config_file
from myninja.errors import ConfigError
from myninja.skills.api import Permission

# How a question names each permission: "Allow the files skill to read your files?"
PERMISSION_WORDS: dict[str, str] = {
    Permission.NETWORK: "use the network",
    Permission.READ_FILES: "read your files",
    Permission.WRITE_FILES: "write files",
    Permission.RUN_CODE: "run code",
    Permission.SEND_EMAIL: "send e-mail",
    Permission.CALENDAR_WRITE: "write to your calendar",
}
ALLOW_ONCE, ALWAYS, DENY = "allow once", "always allow", "deny"
CHOICES = [ALLOW_ONCE, ALWAYS, DENY]
KEY_PREFIX = "permission:"  # the key of every permission question


def asks_permission(key: str | None) -> bool:
    """Whether a question with this key asks for a permission (not for something you know)."""
    return bool(key) and str(key).startswith(KEY_PREFIX)


class Grants:
    """Permissions given for good, by skill: the config's, and those answered "always" since
    (written back to the config file so the next run has them too)."""

    def __init__(self, config: Config) -> None:
        self._always = {name: set(perms) for name, perms in config.skills.grants.items()}

    def of(self, skill: str) -> set[str]:
        return set(self._always.get(skill, ()))

    def always(self, skill: str, permissions: Iterable[str]) -> str | None:
        """Grant for good; the note to trace when the config file could not keep it."""
        granted = self._always.setdefault(skill, set())
        granted.update(permissions)
        try:
            update_config_file(paths.config_file(), {f"skills.grants.{skill}": sorted(granted)})
        except ConfigError as exc:
            return f"granted for this run only: {exc.one_line()}"
        return None


def question(skill: str, tool: str, missing: Iterable[str]) -> dict[str, Any]:
    """The interrupt payload asking for `missing` permissions."""
    wanted = sorted(missing)
    words = " and ".join(PERMISSION_WORDS.get(p, p) for p in wanted)
    return {
        "text": f"Allow the {skill} skill to {words}? (its tool {tool} asks)",
        "choices": CHOICES,
        "key": f"{KEY_PREFIX}{skill}:{','.join(wanted)}",
    }


_ONCE_WORDS = frozenset({ALLOW_ONCE, "allow", "once", "yes", "y", "ok"})
_ALWAYS_WORDS = frozenset({ALWAYS, "always", "allow always"})


def decision(answer: str) -> str:
    """ALLOW_ONCE, ALWAYS or DENY from a person's answer; anything unclear denies."""
    said = " ".join(answer.strip().lower().strip(".!").split())
    if said in _ALWAYS_WORDS:
        return ALWAYS
    return ALLOW_ONCE if said in _ONCE_WORDS else DENY
