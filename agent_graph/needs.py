"""Facts about the person an agent needs before its branches run (the scheduler: the time zone).

An agent declares them in its persona (`needs=("time zone",)`). Each need has a key (the
memory key its answer is kept under), the question that asks for it, and a `check` that turns
an answer into the value (or None where the answer gives none). The `needs` node resolves them
once per task, in this order: the task's own words (the zone written beside "me=…"), a kept
memory (the one that would answer the question), the config, the machine; only what none of
those gives is asked, once, before the branches run (nodes/needs.py). Every branch is then
told the values ("The person's time zone is …").
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from myninja.config import Config

TIME_ZONE = "time zone"
# A machine on UTC is usually a server or a container, not where its person lives: its zone
# says nothing about them, so it is not taken as theirs (the person is asked instead).
_NOT_PERSONAL = frozenset(
    """UTC Etc/UTC Etc/UCT UCT Etc/Universal Universal Etc/Zulu Zulu GMT Etc/GMT Etc/GMT+0
    Etc/GMT-0 Etc/GMT0 GMT0 GMT+0 GMT-0 Etc/Greenwich Greenwich""".split()
)
_ZONE_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*")
LOCALTIME = Path("/etc/localtime")


def valid_zone(name: str) -> bool:
    if not name or name.startswith("/") or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@cache
def _by_city() -> dict[str, str]:
    """Zones by their last part, lowercased ("berlin" -> Europe/Berlin); a city two regions
    share is left out rather than guessed."""
    found: dict[str, str | None] = {}
    for zone in available_timezones():
        if "/" not in zone or zone.startswith(("Etc/", "SystemV/", "posix/", "right/")):
            continue
        city = zone.rsplit("/", 1)[1].lower()
        found[city] = None if city in found and found[city] != zone else zone
    return {city: zone for city, zone in found.items() if zone}


def zone_from(answer: str) -> str | None:
    """The IANA zone an answer names: "Europe/Berlin", "europe/berlin", "Berlin", "New York",
    or a sentence holding one ("my time zone is Europe/Berlin"); None where it names none."""
    text = " ".join(answer.split()).strip(" .!\"'")
    if not text:
        return None
    candidates = [text, text.replace(" ", "_")]
    candidates += [w for w in _ZONE_WORD.findall(text) if "/" in w]
    for candidate in candidates:
        if valid_zone(candidate):
            return candidate
        lowered = {z.lower(): z for z in _with_slash(candidate)}
        if candidate.lower() in lowered:
            return lowered[candidate.lower()]
    cities = _by_city()
    if (city := cities.get(text.replace(" ", "_").lower())) is not None:
        return city
    words = _ZONE_WORD.findall(text)
    for size in (3, 2, 1):  # "I live in New York" -> New_York
        for start in range(len(words) - size + 1):
            name = "_".join(words[start : start + size]).lower()
            if (city := cities.get(name)) is not None:
                return city
    return None


def _with_slash(candidate: str) -> list[str]:
    """Zones spelt like `candidate` but for case ("europe/berlin"); only where it has a slash."""
    if "/" not in candidate:
        return []
    return [z for z in available_timezones() if z.lower() == candidate.lower()]


def machine_zone(environ: dict[str, str] | None = None, localtime: Path = LOCALTIME) -> str | None:
    """This machine's named zone: $TZ where it names an IANA zone (a set TZ wins, as in libc),
    else where /etc/localtime links under zoneinfo; None where neither names one or it is UTC."""
    env = os.environ if environ is None else environ
    if "TZ" in env:
        zone = env["TZ"].removeprefix(":")
    else:
        try:
            target = os.path.realpath(localtime)
        except OSError:
            return None
        zone = target.split("zoneinfo/", 1)[1] if "zoneinfo/" in target else ""
        zone = zone.removeprefix("posix/")
    if not valid_zone(zone) or zone in _NOT_PERSONAL:
        return None
    return zone


@dataclass(frozen=True)
class Need:
    key: str  # the memory key its answer is kept under
    question: str
    check: Callable[[str], str | None]  # an answer -> the value, or None
    problem: str  # said when an answer gives no value: "{answer!r} is not …"
    # The value from the config or the machine, without asking; None where they give none.
    default: Callable[[Config], str | None] = lambda config: None
    # The value the task itself states; None where it states none.
    from_task: Callable[[str], str | None] = lambda text: None

    def retry_question(self, answer: str) -> str:
        return f"{self.problem.format(answer=answer)} {self.question}"


def _configured_zone(config: Config) -> str | None:
    """[scheduler] timezone, else the zone of the person's own calendar (the writable one, or
    the only zone all configured calendars share), else the machine's."""
    if config.scheduler.timezone:
        return config.scheduler.timezone
    calendars = config.calendars.values()
    zones = {c.timezone for c in calendars if c.writable and c.timezone} or {
        c.timezone for c in calendars if c.timezone
    }
    if len(zones) == 1 and valid_zone(zone := next(iter(zones))):
        return zone
    return machine_zone()


def zone_in_task(text: str) -> str | None:
    """The person's zone where the task writes it beside their own calendar ("me=cal:work
    (Europe/Berlin)", "my calendar /c/me.ics in Europe/London"), read as the scheduler reads
    the calendars a task names."""
    from myninja.skills.scheduler.named_calendars import ME, calendars_in

    for name, _, zone, _ in calendars_in(text)[0]:
        if name.casefold() in ME and zone and valid_zone(zone):
            return zone
    return None


NEEDS: dict[str, Need] = {
    TIME_ZONE: Need(
        key=TIME_ZONE,
        question="Which time zone are you in? (an IANA name such as Europe/Berlin)",
        check=zone_from,
        problem="{answer!r} is not a time zone I know.",
        default=_configured_zone,
        from_task=zone_in_task,
    ),
}


def need(key: str) -> Need | None:
    return NEEDS.get(key)


def value_of(key: str | None, answer: str) -> str | None:
    """What an answer to a need's question gives (Europe/Berlin for "Berlin"); the answer as
    it is where `key` names no need; None where it gives nothing valid."""
    found = NEEDS.get(key or "")
    return answer if found is None else found.check(answer)


def facts_lines(facts: dict[str, str]) -> str:
    """What every branch is told of the person: "The person's time zone is Europe/Berlin." """
    return "\n".join(f"The person's {key} is {value}." for key, value in facts.items() if value)
