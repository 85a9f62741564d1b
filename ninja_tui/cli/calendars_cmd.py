"""`myninja calendars`: CalDAV calendars the scheduler reads (`cal:NAME`), added, listed,
checked and removed. Passwords go to the key store as `cal-NAME` and are never printed."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from pydantic import ValidationError

from myninja import paths
from myninja.config import CALENDAR_NAME, CalendarConfig, Config
from myninja.config_file import load_config, update_config_file
from myninja.errors import KeyStoreError, UsageError

TEST_DAYS = 7


@click.group()
def calendars() -> None:
    """CalDAV calendars (Nextcloud, Fastmail, iCloud, Radicale, Baïkal) for the scheduler."""


def _key_name(name: str) -> str:
    from myninja.skills.scheduler.caldav_source import key_name

    return key_name(name)


def _configured(config: Config, name: str) -> CalendarConfig:
    if name not in config.calendars:
        known = ", ".join(sorted(config.calendars)) or "none"
        raise UsageError(
            f"no calendar named {name!r}",
            hint=f"configured: {known}; add one with `myninja calendars add {name} --url URL`",
        )
    return config.calendars[name]


@calendars.command("add")
@click.argument("name")
@click.option("--url", required=True, help="The calendar's (or the account's) CalDAV URL.")
@click.option("--username", help="Login name.")
@click.option("--timezone", help="Your IANA time zone for this calendar, e.g. Europe/Berlin.")
@click.option("--writable", is_flag=True, help="Allow myninja to write events there.")
@click.option("--calendar", help="Under an account URL: which calendar (name or URL path).")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (one line).")
@click.option("--replace", is_flag=True, help="Overwrite a calendar of the same name.")
def calendars_add(
    name: str,
    url: str,
    username: str | None,
    timezone: str | None,
    writable: bool,
    calendar: str | None,
    password_stdin: bool,
    replace: bool,
) -> None:
    """Add the CalDAV calendar NAME (the scheduler reads it as cal:NAME)."""
    if not CALENDAR_NAME.fullmatch(name):
        raise UsageError(
            f"invalid calendar name {name!r}",
            hint="use a letter, then letters, digits, '-' or '_' (e.g. work)",
        )
    config = load_config()
    if name in config.calendars and not replace:
        raise UsageError(f"calendar {name!r} already exists", hint="add --replace to overwrite it")
    entry: dict[str, Any] = {"url": url}
    for key, value in (("username", username), ("timezone", timezone), ("calendar", calendar)):
        if value is not None:
            entry[key] = value
    if writable:
        entry["writable"] = True
    _check(name, entry)  # before the password is stored: nothing half-done on a bad URL
    password = _read_password() if password_stdin else None
    if password is not None:
        from myninja.backends.keys import key_store

        store = key_store(config)
        if store.uses_file:
            click.echo(
                f"warning: storing the password in a plain file ({store.file}, mode 0600)",
                err=True,
            )
        store.set(_key_name(name), password)
    path = paths.config_file()
    update_config_file(path, {f"calendars.{name}": entry})
    stored = f"; password stored as {_key_name(name)}" if password is not None else ""
    click.echo(f"Added calendar {name} ({url}) to {path}{stored}.")
    if password is None and username:
        click.echo(f"Store its password with: myninja keys set {_key_name(name)}", err=True)
    click.echo(f"Check it with: myninja calendars test {name}", err=True)


def _check(name: str, entry: dict[str, Any]) -> None:
    try:
        CalendarConfig.model_validate(entry)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "entry"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise UsageError(f"calendar {name}: {where}: {message}") from None


def _read_password() -> str:
    try:
        password = sys.stdin.readline().rstrip("\r\n")
    except UnicodeDecodeError:
        raise UsageError("the password on stdin is not UTF-8 text") from None
    if not password:
        raise UsageError("no password on stdin", hint="pipe it in: … --password-stdin < file")
    return password


@calendars.command("list")
@click.option("--json", "as_json", is_flag=True)
def calendars_list(as_json: bool) -> None:
    """List configured calendars (passwords are never shown, only whether one is stored)."""
    config = load_config()
    stored = _stored_keys(config)
    rows = [
        {
            "name": name,
            "url": cfg.url,
            "username": cfg.username,
            "timezone": cfg.timezone,
            "writable": cfg.writable,
            "calendar": cfg.calendar,
            "password_stored": _key_name(name) in stored if stored is not None else None,
        }
        for name, cfg in config.calendars.items()
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No calendars configured (add one: myninja calendars add NAME --url URL).")
    for row in rows:
        password = {True: "password stored", False: "no password", None: "key store closed"}
        notes = [row["username"] or "no login", password[row["password_stored"]]]
        notes.append("writable" if row["writable"] else "read-only")
        if row["timezone"]:
            notes.append(row["timezone"])
        if row["calendar"]:
            notes.append(f"calendar {row['calendar']!r}")
        click.echo(f"{row['name']:<12} {row['url']}  ({', '.join(notes)})")


def _stored_keys(config: Config) -> set[str] | None:
    """The key store's names; None where it cannot be read (no keyring service)."""
    from myninja.backends.keys import key_store

    try:
        return set(key_store(config).names())
    except KeyStoreError:
        return None


@calendars.command("test")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def calendars_test(name: str, as_json: bool) -> None:
    """Connect to calendar NAME: the calendars found and its events in the next 7 days."""
    from myninja.skills.scheduler.caldav_source import count_events, list_calendars
    from myninja.skills.scheduler.sources import password_of

    config = load_config()
    cfg = _configured(config, name)
    password = password_of(name, config)
    found = list_calendars(name, cfg, password)
    now = datetime.now(UTC)
    events = count_events(name, cfg, password, now, now + timedelta(days=TEST_DAYS))
    if as_json:
        calendars_found = [{"name": c.display_name, "url": c.url} for c in found]
        report = {"name": name, "ok": True, "calendars": calendars_found, "events_7d": events}
        click.echo(json.dumps(report, indent=2))
        return
    listed = ", ".join(f"{c.display_name} ({c.url})" for c in found)
    click.echo(f"{name}: ok · calendars: {listed} · {events} events in the next {TEST_DAYS} days")


@calendars.command("remove")
@click.argument("name")
def calendars_remove(name: str) -> None:
    """Remove calendar NAME and its stored password."""
    from myninja.backends.keys import key_store

    config = load_config()
    _configured(config, name)
    update_config_file(paths.config_file(), {f"calendars.{name}": None})
    try:
        key_store(config).delete(_key_name(name))
        dropped = f" and its password ({_key_name(name)})"
    except KeyStoreError:  # none was stored, or no keyring: nothing to remove
        dropped = ""
    click.echo(f"Removed calendar {name}{dropped}.")
