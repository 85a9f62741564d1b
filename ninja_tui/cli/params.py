"""Parameter types shared by the commands."""

from __future__ import annotations

import click


class Choice(click.Choice):
    """click.Choice whose "missing" message fits on the error's one line (click's own puts each
    choice on a line of its own)."""

    def get_missing_message(self, param: click.Parameter, ctx: click.Context | None) -> str:
        return f"Choose from: {', '.join(map(str, self.choices))}."
