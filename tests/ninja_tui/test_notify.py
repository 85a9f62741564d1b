"""The Notifier inside a real (headless) Textual app: which channels fire for which switches,
the exact escape codes written, and that hostile task text never reaches the terminal raw."""

from __future__ import annotations

import asyncio
import os
import re
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.app import App
from textual.pilot import Pilot

from myninja.config import NotifyConfig
from myninja.ninja_tui.notify import BODY_MAX, TITLE_MAX, Notifier

CHANNELS = ("toast", "bell", "osc", "desktop")
DONE = {"id": "t_1", "text": "Paint the fence", "status": "done", "answer": "Painted it blue"}
FAILED = {"id": "t_2", "text": "Paint the shed", "status": "failed", "error": "no paint"}
QUESTION = {"id": "t_3", "text": "Paint the gate", "status": "waiting"}
HOSTILE = {
    "id": "t_4",
    "text": "x\x1b]0;pwned\x07\nrm -rf ~; echo \x9b2J\u202eevil" + "y" * 500,
    "status": "done",
}
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


class Host(App[None]):
    pass


def only(*channels: str, osc: str = "9", **switches: bool) -> NotifyConfig:
    """Settings with just the named channels on."""
    on = {name: name in channels for name in ("toast", "bell", "desktop", "title")}
    return NotifyConfig(**on, osc=osc if "osc" in channels else "off", **switches)


@pytest.fixture
def fake_notify_send(tmp_path: Path) -> tuple[Path, Path]:
    """An executable notify-send that writes its arguments, one a line, to a file of its own
    in the calls folder (renamed into place once complete)."""
    calls = tmp_path / "calls"
    calls.mkdir()
    script = tmp_path / "bin" / "notify-send"
    script.parent.mkdir()
    script.write_text(
        f"#!/bin/sh\nf=$(mktemp -p '{calls}' partial.XXXXXX)\n"
        'printf \'%s\\n\' "$@" > "$f"\nmv "$f" "$f.call"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, calls


def calls_made(calls: Path) -> list[list[str]]:
    return [path.read_text().splitlines() for path in sorted(calls.glob("*.call"))]


async def first_call(calls: Path) -> list[str]:
    """The arguments of the (fire-and-forget) notify-send run, once it has written them."""
    for _ in range(250):  # 5 s
        if made := calls_made(calls):
            return made[0]
        await asyncio.sleep(0.02)
    raise AssertionError("notify-send never ran")


@pytest.fixture
async def pilot(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Pilot[None]]:
    """The app, with the person looking elsewhere (every channel speaks), on a machine whose
    D-Bus has no notification server (the OS notification falls back to notify-send)."""
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/myninja-test-bus")
    monkeypatch.delenv("TMUX", raising=False)
    async with Host().run_test() as pilot:
        pilot.app.app_focus = False
        yield pilot


def notifier(
    pilot: Pilot[None], settings: NotifyConfig, written: list[str], which: Any = None
) -> Notifier:
    return Notifier(pilot.app, settings, write=written.append, which=which or (lambda _: None))


def toasts(pilot: Pilot[None]) -> list[tuple[str, str, str]]:
    return [(n.title, n.message, n.severity) for n in pilot.app._notifications]


async def test_every_channel_fires_when_on(
    pilot: Pilot[None], fake_notify_send: tuple[Path, Path]
) -> None:
    script, calls = fake_notify_send
    written: list[str] = []
    which = {"notify-send": str(script)}.get
    notes = notifier(pilot, only(*CHANNELS), written, which)
    fired = notes.notify("finished", DONE, "Painted it blue")
    assert fired == ["toast", "bell", "osc", "desktop"]
    assert notes.sent == [(channel, "finished", "t_1") for channel in fired]
    await pilot.pause()
    assert toasts(pilot) == [("Done: Paint the fence", "Painted it blue", "information")]
    assert written == ["\a", "\x1b]9;myninja · Done: Paint the fence: Painted it blue\x1b\\"]
    assert (await first_call(calls))[-2:] == ["myninja · Done: Paint the fence", "Painted it blue"]


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_channel_fires_only_when_switched_on(
    pilot: Pilot[None], channel: str, fake_notify_send: tuple[Path, Path]
) -> None:
    script, calls = fake_notify_send
    written: list[str] = []
    which = {"notify-send": str(script)}.get
    assert notifier(pilot, only(channel), written, which).notify("question", QUESTION, "?") == [
        channel
    ]
    others = [c for c in CHANNELS if c != channel]
    assert notifier(pilot, only(*others), [], which).notify("question", QUESTION, "?") == others
    await pilot.pause()
    assert len(toasts(pilot)) == 1
    assert [w[:4] for w in written] == {"bell": ["\a"], "osc": ["\x1b]9;"]}.get(channel, [])
    await first_call(calls)
    await asyncio.sleep(0.3)  # time for a second, wrong notify-send to show up
    assert len(calls_made(calls)) == 1


@pytest.mark.parametrize(
    ("switches", "heard"),
    [({"on_question": False}, ["finished"]), ({"on_finish": False}, ["question"])],
)
async def test_on_question_and_on_finish_choose_the_events(
    pilot: Pilot[None], switches: dict[str, bool], heard: list[str]
) -> None:
    written: list[str] = []
    notes = notifier(pilot, only("toast", "bell", "osc", **switches), written)
    assert bool(notes.notify("question", QUESTION, "Which colour?")) == ("question" in heard)
    assert bool(notes.notify("finished", DONE, "Painted it blue")) == ("finished" in heard)
    assert sorted({kind for _, kind, _ in notes.sent}) == heard
    await pilot.pause()
    assert len(toasts(pilot)) == 1 and written.count("\a") == 1


async def test_toast_severity_follows_the_event(pilot: Pilot[None]) -> None:
    notes = notifier(pilot, only("toast"), [])
    notes.notify("finished", DONE, "Painted it blue")
    notes.notify("finished", FAILED, "no paint")
    notes.notify("question", QUESTION, "Which colour?")
    await pilot.pause()
    assert toasts(pilot) == [
        ("Done: Paint the fence", "Painted it blue", "information"),
        ("Failed: Paint the shed", "no paint", "error"),
        ("Needs your answer: Paint the gate", "Which colour?", "warning"),
    ]
    assert not any(n.markup for n in pilot.app._notifications)  # "[" in a task is text


async def test_osc_9_and_osc_777_have_their_own_format(pilot: Pilot[None]) -> None:
    nine: list[str] = []
    notifier(pilot, only("osc", osc="9"), nine).notify("finished", FAILED, "no paint")
    assert nine == ["\x1b]9;myninja · Failed: Paint the shed: no paint\x1b\\"]
    seven: list[str] = []
    notifier(pilot, only("osc", osc="777"), seven).notify("finished", FAILED, "no paint")
    assert seven == ["\x1b]777;notify;myninja · Failed: Paint the shed;no paint\x1b\\"]


@pytest.mark.parametrize("osc", ["9", "777"])
async def test_hostile_task_text_never_reaches_the_terminal_raw(
    pilot: Pilot[None], osc: str, fake_notify_send: tuple[Path, Path]
) -> None:
    script, calls = fake_notify_send
    written: list[str] = []
    which = {"notify-send": str(script)}.get
    notes = notifier(pilot, only("bell", "osc", "desktop", "title", osc=osc), written, which)
    notes.notify("finished", HOSTILE, "done\x1b[2J;\n<a href='x'>click</a>")
    bell, escape = written
    assert bell == "\a"
    assert escape.startswith(f"\x1b]{osc};") and escape.endswith("\x1b\\")
    inside = escape[len(f"\x1b]{osc};") : -2]
    assert not CONTROL.search(inside), repr(inside)
    structural = 2 if osc == "777" else 0  # notify;title;body
    assert inside.count(";") == structural and "pwned" in inside
    assert len(inside) <= TITLE_MAX + BODY_MAX + len("notify;;")
    args = await first_call(calls)
    assert args[:3] == ["--app-name=myninja", "--urgency=normal", "--"]
    title, body = args[3:]
    assert not CONTROL.search(title + body), repr(args)
    assert len(title) <= TITLE_MAX and title.startswith("myninja · Done: x ]0")
    assert body == "done [2J; &lt;a href='x'&gt;click&lt;/a&gt;"  # markup shown, not obeyed


async def test_set_waiting_writes_the_title_only_when_it_changes(pilot: Pilot[None]) -> None:
    written: list[str] = []
    notes = notifier(pilot, only("title"), written)
    for count in (2, 2, 3, 0, 0):
        notes.set_waiting(count)
    assert written == [
        "\x1b]2;myninja (2 waiting)\x1b\\",
        "\x1b]2;myninja (3 waiting)\x1b\\",
        "\x1b]2;myninja\x1b\\",
    ]
    silent: list[str] = []
    notifier(pilot, only("toast"), silent).set_waiting(4)
    assert silent == []


async def test_notify_send_gets_the_title_and_body(
    pilot: Pilot[None], fake_notify_send: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    script, calls = fake_notify_send
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    notes = Notifier(pilot.app, only("desktop"), write=[].append)  # the real shutil.which
    assert notes.notify("finished", FAILED, "no paint") == ["desktop"]
    assert await first_call(calls) == [
        "--app-name=myninja",
        "--urgency=critical",
        "--",
        "myninja · Failed: Paint the shed",
        "no paint",
    ]


async def test_without_notify_send_nothing_runs(
    pilot: Pilot[None], fake_notify_send: tuple[Path, Path]
) -> None:
    script, calls = fake_notify_send
    asked: list[str] = []

    def which(name: str) -> str | None:
        asked.append(name)
        return None

    notes = notifier(pilot, only("desktop"), [], which)
    assert notes.notify("finished", DONE, "Painted it blue") == ["desktop"]  # tried
    await notes.settle()
    assert asked == ["notify-send"] and notes.desktop.sent == []  # and nothing took it
    switched_off = notifier(pilot, only("bell"), [], {"notify-send": str(script)}.get)
    assert switched_off.notify("finished", DONE, "Painted it blue") == ["bell"]
    await asyncio.sleep(0.3)
    assert calls_made(calls) == []


async def test_while_the_app_is_focused_only_the_toast_speaks(
    pilot: Pilot[None], fake_notify_send: tuple[Path, Path]
) -> None:
    script, calls = fake_notify_send
    which = {"notify-send": str(script)}.get
    pilot.app.app_focus = True
    written: list[str] = []
    notes = notifier(pilot, only(*CHANNELS), written, which)
    assert notes.notify("question", QUESTION, "Which colour?") == ["toast"]
    await notes.settle()
    assert written == [] and calls_made(calls) == []
    # Switched off, the focus does not matter: every channel, as when away.
    loud = notifier(pilot, only(*CHANNELS, quiet_when_focused=False), written, which)
    assert loud.notify("question", QUESTION, "Which colour?") == list(CHANNELS)
    await first_call(calls)
    assert written[0] == "\a" and written[1].startswith("\x1b]9;")
    # Looking away again (Textual's AppBlur): the bell and the rest come back.
    pilot.app.post_message(events.AppBlur())
    await pilot.pause()
    assert notes.notify("finished", DONE, "Painted it blue") == list(CHANNELS)


@pytest.mark.parametrize("osc", ["9", "777"])
async def test_inside_tmux_the_escape_code_is_wrapped_for_passthrough(
    pilot: Pilot[None], osc: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,1234,0")
    written: list[str] = []
    notifier(pilot, only("osc", osc=osc), written).notify("finished", DONE, "Painted it blue")
    (wrapped,) = written
    assert wrapped.startswith("\x1bPtmux;\x1b\x1b]") and wrapped.endswith("\x1b\x1b\\\x1b\\")
    inner = wrapped[len("\x1bPtmux;") : -len("\x1b\\")].replace("\x1b\x1b", "\x1b")
    plain: list[str] = []
    monkeypatch.delenv("TMUX")
    notifier(pilot, only("osc", osc=osc), plain).notify("finished", DONE, "Painted it blue")
    assert inner == plain[0]  # tmux unwraps it to exactly what the terminal would get
