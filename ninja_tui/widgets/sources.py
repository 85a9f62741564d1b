"""The sources a task's answer cites, by their citation numbers; choosing one opens its passage."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option


def source_label(citation: dict[str, Any]) -> Text:
    label = Text(f"[{citation['n']}] ", style="bold")
    label.append(citation.get("title") or citation.get("passage_id") or "untitled")
    if citation.get("source"):
        label.append(f"  {citation['source']}", style="dim")
    return label


class SourceList(OptionList):
    DEFAULT_CSS = """
    SourceList { height: auto; max-height: 8; border: none; padding: 0; }
    """

    class Chosen(Message):
        def __init__(self, citation: dict[str, Any]) -> None:
            super().__init__()
            self.citation = citation

    def show(self, citations: list[dict[str, Any]]) -> None:
        signature = [(c["n"], c.get("passage_id")) for c in citations]
        if signature == getattr(self, "_signature", None):
            return
        self._signature = signature
        self.citations = {str(c["n"]): c for c in citations}
        self.clear_options()
        self.add_options([Option(source_label(c), id=str(c["n"])) for c in citations])
        self.display = bool(citations)
        if citations:
            self.highlighted = 0  # so Enter opens a passage as soon as the list has focus

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id in self.citations:
            self.post_message(self.Chosen(self.citations[event.option.id]))
