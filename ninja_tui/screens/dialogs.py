"""Small modal dialogs of the app: rate a task, edit its answer, export it, read a cited passage,
confirm a removal.

Each returns what the person chose through `dismiss`; the app does the saving."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static, TextArea

DIALOG_CSS = """
{name} {{
    align: center middle;
}}
{name} > Vertical {{
    width: 72;
    max-width: 100%;
    height: auto;
    max-height: 90%;
    border: thick $primary;
    background: $surface;
    padding: 1 2;
}}
{name} .hint {{ color: $text-muted; }}
"""


class RateDialog(ModalScreen[tuple[str, str] | None]):
    """Good or bad, and an optional note; Enter saves, escape drops it."""

    DEFAULT_CSS = DIALOG_CSS.format(name="RateDialog")
    BINDINGS: ClassVar[list[BindingType]] = [
        ("escape", "dismiss(None)", "Cancel"),
        ("ctrl+t", "toggle", "Good/bad"),
    ]

    def __init__(self, task: dict[str, Any], rating: str) -> None:
        super().__init__()
        self.rated_task = task
        self.rating = rating

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(" ".join(self.rated_task["text"].split())[:200], markup=False)
            yield Static(id="rating")
            yield Input(placeholder="A note (optional): what was good or wrong", id="note")
            yield Label("Enter saves · ctrl+t switches good/bad · escape cancels", classes="hint")

    def on_mount(self) -> None:
        self._show_rating()
        self.query_one("#note", Input).focus()

    def _show_rating(self) -> None:
        good = self.rating == "good"
        label = Text("Rating: ")
        label.append("good ▲" if good else "bad ▼", style="bold green" if good else "bold red")
        self.query_one("#rating", Static).update(label)

    def action_toggle(self) -> None:
        self.rating = "bad" if self.rating == "good" else "good"
        self._show_rating()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss((self.rating, event.value.strip()))


class EditAnswerDialog(ModalScreen[str | None]):
    """The answer in an editor; ctrl+s returns the text, escape drops it."""

    DEFAULT_CSS = (
        DIALOG_CSS.format(name="EditAnswerDialog")
        + """
    EditAnswerDialog > Vertical { width: 100; height: 90%; max-height: 90%; }
    EditAnswerDialog TextArea { height: 1fr; margin: 1 0; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        ("escape", "dismiss(None)", "Cancel"),
        # The app's ctrl+s opens history; while this dialog is open it saves instead.
        Binding("ctrl+s", "save", "Save", priority=True),
    ]

    def __init__(self, task: dict[str, Any], answer: str) -> None:
        super().__init__()
        self.edited_task = task
        self.answer = answer

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(" ".join(self.edited_task["text"].split())[:200], markup=False)
            yield TextArea(self.answer, id="answer")
            yield Label("ctrl+s saves · escape cancels", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#answer", TextArea).focus()

    def action_save(self) -> None:
        self.dismiss(self.query_one("#answer", TextArea).text)


class ExportDialog(ModalScreen[Path | None]):
    """Where to write the answer as Markdown; the app refuses to overwrite silently."""

    DEFAULT_CSS = DIALOG_CSS.format(name="ExportDialog")
    BINDINGS: ClassVar[list[BindingType]] = [("escape", "dismiss(None)", "Cancel")]

    def __init__(self, default: Path) -> None:
        super().__init__()
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Export the answer as Markdown to:")
            yield Input(str(self.default), id="path")
            yield Label("Enter writes the file · escape cancels", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if text:
            self.dismiss(Path(text).expanduser())


class PassageDialog(ModalScreen[None]):
    """A cited passage in full, with where it came from."""

    DEFAULT_CSS = (
        DIALOG_CSS.format(name="PassageDialog")
        + """
    PassageDialog VerticalScroll { height: auto; max-height: 20; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        ("escape", "dismiss(None)", "Close"),
        ("enter", "dismiss(None)", "Close"),
    ]

    def __init__(self, citation: dict[str, Any]) -> None:
        super().__init__()
        self.citation = citation

    def compose(self) -> ComposeResult:
        cite = self.citation
        with Vertical():
            yield Label(Text(f"[{cite['n']}] {cite.get('title') or ''}", style="bold"))
            yield Label(cite.get("source") or "", classes="hint", markup=False)
            with VerticalScroll():
                yield Static(cite.get("text") or "", markup=False)


class ConfirmDialog(ModalScreen[bool]):
    """A yes-or-no question before something that cannot be undone: y or Enter says yes,
    n or escape says no."""

    DEFAULT_CSS = DIALOG_CSS.format(name="ConfirmDialog")
    BINDINGS: ClassVar[list[BindingType]] = [
        ("y", "dismiss(True)", "Yes"),
        ("enter", "dismiss(True)", "Yes"),
        ("n", "dismiss(False)", "No"),
        ("escape", "dismiss(False)", "No"),
    ]

    def __init__(self, question: str, detail: str = "") -> None:
        super().__init__()
        self.question = question
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self.question, style="bold"))
            if self.detail:
                yield Label(self.detail, markup=False)
            yield Label("y or Enter: yes · n or escape: no", classes="hint")
