"""The one exception hierarchy. Each error knows its CLI exit code (docs/architecture.md)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_WAITING = 3
EXIT_UNREACHABLE = 4
EXIT_INTERRUPTED = 130


class MyninjaError(Exception):
    """Base of every error we raise on purpose. `str(err)` is the one line a user sees."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def one_line(self) -> str:
        text = str(self)
        return printable(f"{text} ({self.hint})" if self.hint else text)


def printable(text: str) -> str:
    """`text` with line breaks, control and invisible characters escaped (`\\n`, `\\x1b`): a
    message quotes what people, files and servers wrote, and that must not break its one line
    nor reach the terminal as escape codes."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def shortened(text: str, limit: int = 80) -> str:
    """`text`, cut to `limit` characters with "..." where longer: a path in a one-line message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


class UsageError(MyninjaError):
    exit_code = EXIT_USAGE


class ConfigError(MyninjaError):
    exit_code = EXIT_USAGE


class BackendError(MyninjaError):
    """A model call went wrong. `partial_text` keeps whatever the user already saw."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        partial_text: str = "",
        status: int | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.partial_text = partial_text
        self.status = status  # the HTTP status, where a server gave one


class BackendUnreachable(BackendError):
    exit_code = EXIT_UNREACHABLE


class AuthError(BackendError):
    exit_code = EXIT_USAGE


class RateLimited(BackendError):
    pass


class BadResponse(BackendError):
    pass


class ModelError(BackendError):
    """The model itself failed: missing weights, a failed load, a generation error."""


class UnknownModel(ModelError):
    """The user named a model that does not exist: a usage error."""

    exit_code = EXIT_USAGE


class GenerationCancelled(BackendError):
    exit_code = EXIT_INTERRUPTED


class BudgetSpent(MyninjaError):
    """A `[budget]` is spent: model calls on priced backends stop until it is raised or a new
    day begins, and the task rests, failed but resumable from its last step. Exit 4 like an
    unreachable backend (no model call can be made now). Not a BackendError on purpose: graph
    nodes work around a failed call (a branch fails, a route falls back), and a spent budget
    must stop the task instead."""

    exit_code = EXIT_UNREACHABLE


class KeyStoreError(MyninjaError):
    exit_code = EXIT_USAGE
