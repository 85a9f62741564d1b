"""Effective configuration: defaults, then the TOML file, then `MYNINJA_*` environment overrides.

Environment overrides address nested keys with double underscores, e.g.
`MYNINJA_AGENTS__CODER__BACKEND=gateway` sets `[agents.coder] backend = "gateway"`. Values are
read as TOML scalars when they parse as one (`8`, `true`, `0.2`), otherwise as plain strings.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import tempfile
import tomllib
from collections.abc import MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args, get_origin

from pydantic import ValidationError

from myninja import paths
from myninja.config import (
    Config,
    EmbeddedBackendConfig,
    GatewayBackendConfig,
    ScriptedBackendConfig,
)
from myninja.errors import ConfigError

if TYPE_CHECKING:
    from tomlkit import TOMLDocument

ENV_PREFIX = "MYNINJA_"
# Environment variables with our prefix that are not config keys.
# The last two are tests' hooks: a fake clock, and a pause inside book_meeting to kill in.
RESERVED_ENV = {
    "MYNINJA_HOME",
    "MYNINJA_DEBUG",
    "MYNINJA_TEST_CLOCK",
    "MYNINJA_TEST_BOOKING_PAUSE",
}
SECRET_WORDS = ("key", "token", "secret", "password")


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _scalar(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def env_overrides(environ: dict[str, str] | None = None) -> dict[str, tuple[list[str], Any]]:
    """Map each `MYNINJA_*` variable to (key path, value)."""
    environ = dict(os.environ if environ is None else environ)
    found: dict[str, tuple[list[str], Any]] = {}
    for var, value in environ.items():
        if not var.startswith(ENV_PREFIX) or var in RESERVED_ENV:
            continue
        path = [part.lower() for part in var[len(ENV_PREFIX) :].split("__") if part]
        if path:
            found[var] = (path, _scalar(value))
    return found


def _nest(path: list[str], value: Any) -> dict[str, Any]:
    for part in reversed(path):
        value = {part: value}
    return value


_BACKEND_TYPES = {
    "embedded": EmbeddedBackendConfig,
    "openai": GatewayBackendConfig,
    "scripted": ScriptedBackendConfig,
}


def _describe(err: ValidationError) -> tuple[str, str, str]:
    """(dotted key, what is wrong, how to fix it) for the first error."""
    first = err.errors()[0]
    loc = [str(p) for p in first["loc"] if not str(p).startswith("function-after")]
    # A discriminated union puts the backend's type after its name; it is noise to a user.
    model: Any = None
    if len(loc) > 2 and loc[0] == "backends" and loc[2] in _BACKEND_TYPES:
        model = _BACKEND_TYPES[loc.pop(2)]
    where = ".".join(loc)
    message = first["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    message = message.split(", unable to parse")[0]
    kind, value = first["type"], first.get("input")
    fix = "fix it, or remove it for the default"
    if not where and (named := re.match(r"([\w.]+): (.+)", message)):
        where, message = named.groups()  # a check of the whole config names its key itself
        fix = ""  # its message says what would be right
    if kind == "extra_forbidden":
        known = sorted(_known_keys(loc[:-1], model))
        close = difflib.get_close_matches(loc[-1], known, n=1)
        message = "unknown key"
        if close:
            fix = f"did you mean {close[0]!r}? else remove it"
        else:
            listed = ", ".join(known[:12]) + (", …" if len(known) > 12 else "")
            fix = "remove it" + (f"; known here: {listed}" if known else "")
    elif kind == "union_tag_invalid":
        where += ".type"
        message = f"unknown backend type {first['ctx']['tag']!r}"
        fix = "type must be 'embedded', 'openai' or 'scripted'"
    elif kind == "missing":
        message, fix = "required but missing", "add it"
    elif kind in ("dict_type", "model_type", "model_attributes_type"):
        message, fix = f"must be a table, got {value!r}", f"write it as [{where}] with its keys"
    elif kind.startswith(("value_error", "assertion_error")):
        fix = ""  # our own checks say what would be right
    elif isinstance(value, str | int | float | bool):
        message += f", got {value!r}"
    return where or "(top level)", message, fix


def _known_keys(loc: list[str], model: Any = None) -> list[str]:
    """The keys allowed in the table at `loc` (empty where it cannot tell)."""
    current: Any = Config
    parts = list(loc)
    while parts:
        field = getattr(current, "model_fields", {}).get(parts.pop(0))
        if field is None:
            return []
        current = field.annotation
        if get_origin(current) is dict and parts:  # backends.NAME, agents.NAME, mcp.NAME
            parts.pop(0)
            current = get_args(current)[1]
        if model is not None and not parts:
            current = model
        current = next(
            (a for a in (current, *get_args(current)) if hasattr(a, "model_fields")), None
        )
    return list(getattr(current, "model_fields", {}))


def _read_text(path: Path) -> str:
    """The file's text (an absent file is empty), or one clear ConfigError."""
    if path.is_dir():
        raise ConfigError(
            f"{path}: is a folder, not a config file",
            hint="move the folder aside, or set MYNINJA_HOME to another folder",
        )
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read it: {exc.strerror or exc}",
            hint=f"make it readable (chmod u+r {path})",
        ) from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            f"{path}: not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line}, column {column}",
            hint="save the file as UTF-8",
        ) from exc


def _parse_toml(path: Path, text: str) -> dict[str, Any]:
    """The tables of `text`, read from `path`, or one clear ConfigError."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"at line (\d+)", str(exc))
        shown = ""
        if where:
            lines = text.splitlines()
            number = int(where.group(1))
            if 0 < number <= len(lines) and lines[number - 1].strip():
                shown = f": {lines[number - 1].strip()[:60]!r}"
        raise ConfigError(
            f"{path}: not valid TOML: {exc}{shown}", hint="fix the TOML syntax on that line"
        ) from exc


def _read_toml(path: Path) -> dict[str, Any]:
    """The file's tables (an absent file is empty), or one clear ConfigError."""
    return _parse_toml(path, _read_text(path))


def load_config(path: Path | None = None, environ: dict[str, str] | None = None) -> Config:
    path = path or paths.config_file()
    base = Config().model_dump(mode="python")
    file_data = _read_toml(path)
    # A file that names its own backends keeps the default embedded one unless it redefines it;
    # a backend given another type replaces the default rather than merging with it.
    backends = file_data.get("backends")
    for name, backend in (backends if isinstance(backends, dict) else {}).items():
        default = base["backends"].get(name)
        if (
            isinstance(backend, dict)
            and default
            and backend.get("type", default["type"]) != default["type"]
        ):
            del base["backends"][name]
    merged = _deep_merge(base, file_data)
    try:
        Config.model_validate(merged)
    except ValidationError as exc:
        key, message, fix = _describe(exc)
        raise ConfigError(f"{path}: {key}: {message}", hint=fix or None) from exc
    for var, (key_path, value) in sorted(env_overrides(environ).items()):
        merged = _deep_merge(merged, _nest(key_path, value))
        try:
            Config.model_validate(merged)
        except ValidationError as exc:
            key, message, fix = _describe(exc)
            if "remove it" in fix:
                fix = fix.replace("remove it", f"unset {var}")
            else:
                fix = f"{fix}, or unset {var}" if fix else f"fix or unset {var}"
            raise ConfigError(f"environment variable {var}: {key}: {message}", hint=fix) from exc
    return Config.model_validate(merged)


def masked(data: Any, key: str = "") -> Any:
    """A copy of a config dump with every secret-looking value replaced."""
    if isinstance(data, dict):
        return {k: masked(v, k) for k, v in data.items()}
    if isinstance(data, list):
        return [masked(v, key) for v in data]
    words = key.lower().split("_")
    is_secret = bool(words) and words[-1] in SECRET_WORDS
    if is_secret and data not in (None, ""):
        return "****"
    return data


def update_config_file(path: Path, changes: dict[str, Any]) -> Config:
    """Apply `changes` (dotted key → value; None removes the key) to the TOML file at `path` and
    return the configuration it now gives. The file is edited, not rewritten: its comments, blank
    lines, key order and every line the changes do not touch stay as the person wrote them
    (tomlkit). The result is validated before anything is written, and written atomically, so an
    invalid change raises ConfigError and leaves the file as it was.
    """
    import tomlkit  # only where the file is written: reading it does without
    from tomlkit.exceptions import TOMLKitError

    original = _read_text(path)
    _parse_toml(path, original)  # a broken file gets the same clear error as when it is read
    try:
        document = tomlkit.parse(original)
        for key, value in changes.items():
            _apply_change(path, document, key, value)
        text = tomlkit.dumps(document)
    except (TOMLKitError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot write: {exc}") from exc
    if text.endswith("\n\n") and not original.endswith("\n\n"):
        text = text.rstrip("\n") + "\n"  # a new last table leaves no blank line at the end
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(text.encode("utf-8"))
            out.flush()
            os.fsync(out.fileno())
        if path.exists():
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        try:
            # The file alone must be valid; a bad MYNINJA_* variable is not this change's fault.
            load_config(tmp, environ={})
        except ConfigError as exc:
            raise ConfigError(str(exc).replace(str(tmp), str(path))) from exc
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return load_config(path)


def _apply_change(path: Path, document: TOMLDocument, key: str, value: Any) -> None:
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(f"{path}: invalid config key {key!r}")
    tables: list[MutableMapping[str, Any]] = [document]
    for depth, part in enumerate(parts[:-1], start=1):
        table = tables[-1].get(part)
        if table is None:
            # Made whole, so each new table is written with its keys (removing from an absent
            # table has nothing to do).
            if value is not None:
                _set(tables[-1], part, _nest(parts[depth:], value))
            return
        if not isinstance(table, MutableMapping):
            where = ".".join(parts[:depth])
            raise ConfigError(f"{path}: cannot set {key}: {where} is not a table")
        tables.append(table)
    if value is not None:
        _set(tables[-1], parts[-1], value)
        return
    tables[-1].pop(parts[-1], None)
    # Tables this removal emptied go too, so `[agents.coder]` does not linger with nothing in it
    # (one that still holds a comment of the person's stays).
    for depth in range(len(tables) - 1, 0, -1):
        if not _bare(tables[depth]):
            break
        del tables[depth - 1][parts[depth - 1]]


def _set(container: MutableMapping[str, Any], name: str, value: Any) -> None:
    """Set `name` in a table of a tomlkit document, changing as few lines as it can."""
    import tomlkit
    from tomlkit.items import InlineTable, Item

    old = container.get(name)
    if isinstance(value, dict) and isinstance(old, MutableMapping):
        # A table given anew is edited key by key, so the keys it keeps keep their comments.
        for gone in [sub for sub in old if sub not in value]:
            del old[gone]
        for sub, sub_value in value.items():
            _set(old, sub, sub_value)
        return
    plain = old.unwrap() if isinstance(old, Item) else old
    if type(plain) is type(value) and plain == value:
        return  # already so: its line stays as written
    if not isinstance(value, dict):
        _put(container, name, value)  # tomlkit keeps a replaced value's comment beside it
        return
    inline = isinstance(container, InlineTable)
    # A table that holds only tables gets no header: [agents.coder], not [agents] above it.
    holds_tables = bool(value) and all(isinstance(sub, dict) for sub in value.values())
    _put(container, name, tomlkit.inline_table() if inline else tomlkit.table(holds_tables))
    for sub, sub_value in value.items():
        _set(container[name], sub, sub_value)
    if not inline and not holds_tables:
        # tomlkit puts a blank line above a new table, not below it: where the table lands
        # between two others, this one parts it from the next.
        container[name].add(tomlkit.nl())


def _put(container: MutableMapping[str, Any], name: str, value: Any) -> None:
    """`container[name] = value`; a key new to a table goes in above the blank line or space
    that closes it, as a person would add it (tomlkit does so only in a table it parsed, and
    drops the space before an inline table's `}`)."""
    from tomlkit.items import AbstractTable, Table, Whitespace

    if name in container or not isinstance(container, AbstractTable) or isinstance(value, Table):
        container[name] = value
        return
    body = container.value.body
    space = body.pop() if body and isinstance(body[-1][1], Whitespace) else None
    container.append(name, value)
    if space is not None:
        body.append(space)


def _bare(table: MutableMapping[str, Any]) -> bool:
    """True where a table holds no key and no comment: removing it loses nothing written."""
    from tomlkit.items import Comment, Table

    body = table.value.body if isinstance(table, Table) else []
    return not table and not any(isinstance(item, Comment) for _, item in body)
