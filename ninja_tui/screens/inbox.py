"""Every open question of every task, each answerable where it stands.

The screen only shows questions and hands answers back to the app (which sends them to the
worker), so several tasks can wait at once and be answered in any order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Static

from myninja.errors import MyninjaError

# (task_id, question_id, answer) -> None; raises MyninjaError when the worker refuses.
AnswerSender = Callable[[str, str, str], Awaitable[None]]


class QuestionCard(Vertical):
    """One question: which task asks it, the question, its choices, and a box to answer."""

    DEFAULT_CSS = """
    QuestionCard {
        height: auto;
        border: round $warning;
        padding: 0 1;
        margin-bottom: 1;
    }
    QuestionCard .task { color: $text-muted; }
    QuestionCard .question { text-style: bold; }
    QuestionCard .choices { color: $accent; }
    """

    def __init__(self, question: dict[str, Any], task: dict[str, Any]) -> None:
        super().__init__(id=f"card-{question['id']}")
        self.question = question
        self.waiting_task = task

    def compose(self) -> ComposeResult:
        yield Label(" ".join(self.waiting_task["text"].split())[:120], classes="task", markup=False)
        yield Label(self.question["text"], classes="question", markup=False)
        choices = self.question.get("choices") or []
        if choices:
            listed = " · ".join(map(str, choices))
            yield Label(f"choices: {listed}", classes="choices", markup=False)
        yield Input(placeholder="Your answer, then Enter", id=f"answer-{self.question['id']}")


class InboxScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        ("escape", "app.pop_screen", "Back"),
        ("ctrl+o", "app.pop_screen", "Back"),
    ]
    DEFAULT_CSS = """
    InboxScreen #empty { color: $text-muted; padding: 1 2; }
    InboxScreen #cards { padding: 0 1; }
    """

    def __init__(
        self,
        load: Callable[[], list[tuple[dict[str, Any], dict[str, Any]]]],
        send: AnswerSender,
        refresh_s: float = 0.5,
    ) -> None:
        """`load` returns the open (question, task) pairs; `send` answers one."""
        super().__init__()
        self.load = load
        self.send = send
        self.refresh_s = refresh_s

    def compose(self) -> ComposeResult:
        yield Static("Questions waiting for you", id="inbox-title")
        yield VerticalScroll(id="cards")
        yield Static("No task is waiting for you.", id="empty")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "questions"
        self.refresh_cards()
        self.set_interval(self.refresh_s, self.refresh_cards)

    def refresh_cards(self) -> None:
        """Add cards for new questions and drop answered ones; a card being typed in stays."""
        pairs = self.load()
        cards = self.query_one("#cards", VerticalScroll)
        wanted = {question["id"] for question, _ in pairs}
        for card in list(cards.query(QuestionCard)):
            if card.question["id"] not in wanted:
                card.remove()
        shown = {card.question["id"] for card in cards.query(QuestionCard)}
        new = [QuestionCard(q, t) for q, t in pairs if q["id"] not in shown]
        if new:
            cards.mount_all(new)
            if not shown:
                self.call_after_refresh(self._focus_first)
        self.query_one("#empty").display = not pairs

    def _focus_first(self) -> None:
        boxes = self.query_one("#cards").query(Input)
        if boxes and not isinstance(self.focused, Input):
            boxes.first().focus()

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        card = next((a for a in event.input.ancestors if isinstance(a, QuestionCard)), None)
        if not text or card is None:
            return
        try:
            await self.send(card.waiting_task["id"], card.question["id"], text)
        except MyninjaError as exc:
            self.notify(exc.one_line(), severity="error", timeout=8)
            return
        event.input.disabled = True
        event.input.value = f"sent: {text}"
        self.focus_next()
