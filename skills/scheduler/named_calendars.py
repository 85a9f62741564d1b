"""The calendars a task names, read from the words a person writes: "alice=/home/a/alice.ics
(Europe/Berlin)", "bob's calendar at https://…/bob.ics", "my calendar cal:work", each with its
owner, the zone and address written beside it.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# A calendar: "name=" optionally, then a quoted path, an http(s)/webcal URL, a configured CalDAV
# calendar (cal:NAME) or a path to .ics.
_SOURCE = re.compile(
    r"""
    (?:(?P<name>[^\W\d][\w.@+-]*)\s*=\s*)?
    (?:
        "(?P<dq>[^"\n]+?\.ics)"
      | [“](?P<cq>[^”\n]+?\.ics)[”]
      | '(?P<sq>[^'\n]+?\.ics)'
      | (?P<url>(?:https?|webcal)://[^\s<>"'()\[\]{},;]+)
      | (?<![\w/.:-])(?P<cal>cal:[A-Za-z][\w-]{0,39})(?![\w-])
      | (?P<path>
            (?:[A-Za-z]:[\\/]|~|\.{1,2}[\\/]|[\\/])?    # C:\ or ~ or ./ or /
            [^\s"'“”<>()\[\]{},;=]*[^\s"'“”<>()\[\]{},;=.]\.ics
        )
        (?=$|[\s,;)\]}"'”’]|[.!?:](?:\s|$))      # then a space, a closing mark or the end
    )
    """,
    re.VERBOSE | re.IGNORECASE,
)
# What may name the calendar just before it: "Alice's calendar at", "my calendar:", "bob (".
_OWNER_BEFORE = re.compile(
    r"(?P<who>[^\W\d][\w-]*)['’]s\s+(?:(?:\w+\s+)?(?:calendar|cal|schedule|ics(?:\s+file)?)\s*)?"
    r"(?:(?:is|lives)\s+)?(?:(?:at|in|from|on|under)\s*)?[:(]?\s*$",
    re.IGNORECASE,
)
_MINE_BEFORE = re.compile(
    r"\bmy\s+(?:own\s+)?(?:\w+\s+)?(?:calendar|cal|schedule)(?:\s+(?:is|lives))?"
    r"(?:\s+(?:at|in|from|on|under))?\s*[:(]?\s*$",
    re.IGNORECASE,
)
_NAME_BEFORE = re.compile(r"(?P<who>[^\W\d][\w-]*)\s*(?P<open>[(:])\s*$")
# Words that sit before a calendar without naming anyone ("calendars: a.ics, b.ics").
_NOT_NAMES = frozenset(
    "a an and at calendar calendars cal cals file files for from ics in is link links "
    "of on see the to url urls use using with hour hours minute minutes min mins day days "
    "week weeks today tomorrow slot slots meeting invite".split()
)
ME = frozenset({"me", "i", "myself", "my", "mine"})
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_ZONE_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*")
_IN_ZONE = re.compile(
    r"^\s*,?\s*(?:in|tz|time\s*zone)\s*[:=]?\s*(?P<zone>[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*)"
)
_PARENS = re.compile(r"^\s*\((?P<items>[^()]*)\)")
_CLOSE = re.compile(r"^\s*(?:[,;]\s*(?P<items>[^()]*?))?\s*\)")


def calendars_in(task: str) -> tuple[list[tuple[str, str, str | None, str | None]], str]:
    """(name, source, zone as written or None, email or None) per calendar, and the task with
    the calendars and what was read beside them blanked out, for the other readers."""
    found: list[tuple[str, str, str | None, str | None]] = []
    rest = list(task)
    previous_end = 0
    for match in _SOURCE.finditer(task):
        source = next(match[g] for g in ("dq", "cq", "sq", "url", "cal", "path") if match[g])
        if match["url"]:
            source = source.rstrip(".,:;!?")
        # A URL's trailing "." ends the sentence, not the URL; a quote ends a quoted path.
        end = match.start("url") + len(source) if match["url"] else match.end()
        before = task[previous_end : match.start()]
        name, opened = _name_before(match["name"], before)
        items, zone, tail_end = _tail(task, end, opened)
        email = name if name and _EMAIL.fullmatch(name) else None  # "ann@x.org=/a.ics"
        for item in items:
            if email is None and _EMAIL.fullmatch(item):
                email = item
            elif zone is None and _looks_like_zone(item):
                zone = item
        if name is None:
            name = _name_from(source, len(found))
        found.append((name, source, zone, email))
        rest[match.start() : tail_end] = " " * (tail_end - match.start())
        previous_end = tail_end
    return found, "".join(rest)


def _name_before(written: str | None, before: str) -> tuple[str | None, bool]:
    """The calendar's owner from "name=" or the words before it, and whether a "(" opened
    just before it (then its zone may follow inside the same parentheses)."""
    if written:
        return written, False
    if _MINE_BEFORE.search(before):
        return "me", before.rstrip().endswith("(")
    if owner := _OWNER_BEFORE.search(before):
        return owner["who"], before.rstrip().endswith("(")
    named = _NAME_BEFORE.search(before)
    if named and named["who"].casefold() not in _NOT_NAMES:
        return named["who"], named["open"] == "("
    return None, before.rstrip().endswith("(")


def _tail(task: str, end: int, opened: bool) -> tuple[list[str], str | None, int]:
    """What is written right after a calendar: items in parentheses ("(Europe/Berlin,
    a@b.c)") or "in Europe/Berlin". Returns (items, zone from "in …", where the tail ends)."""
    after = task[end:]
    if opened and (closing := _CLOSE.match(after)):
        items = _split_items(closing["items"] or "")
        if any(_looks_like_zone(item) for item in items):
            return items, None, end + closing.end()
        # "bob (b.ics) in America/New_York": the zone may still follow the parenthesis.
        more, zone, tail_end = _tail(task, end + closing.end(), False)
        return items + more, zone, tail_end
    if parens := _PARENS.match(after):
        return _split_items(parens["items"]), None, end + parens.end()
    if (inside := _IN_ZONE.match(after)) and _looks_like_zone(inside["zone"]):
        return [], inside["zone"], end + inside.end()
    return [], None, end


def _split_items(text: str) -> list[str]:
    items = []
    for part in re.split(r"[,;]", text):
        item = re.sub(r"^(?:in|tz|time\s*zone)\s*[:=]?\s*", "", part.strip(), flags=re.I)
        if item:
            items.append(item.strip())
    return items


def _looks_like_zone(text: str) -> bool:
    """A zone as a person writes one: Area/City, or an all-caps name like UTC. Checked against
    zoneinfo later, so a misspelt one is reported rather than ignored."""
    return bool(_ZONE_TOKEN.fullmatch(text)) and ("/" in text or text.isupper())


def valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def local_zone() -> str:
    """This machine's IANA zone: $TZ, else where /etc/localtime points, else UTC."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    target = os.path.realpath("/etc/localtime")
    if "zoneinfo/" in target:
        candidates.append(target.split("zoneinfo/", 1)[1])
    return next((c for c in candidates if c and valid_zone(c)), "UTC")


def _name_from(source: str, index: int) -> str:
    """As find_meeting_slots names an unnamed calendar: its file's stem, else the URL's host,
    and a CalDAV calendar by its configured name."""
    if source.lower().startswith("cal:"):
        return source[len("cal:") :]
    if "://" in source:
        parts = urlsplit(source)
        stem = parts.path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".ics")
        return stem or parts.hostname or f"attendee {index + 1}"
    stem = re.split(r"[\\/]", source)[-1]
    return stem[: -len(".ics")] if stem.lower().endswith(".ics") else stem
