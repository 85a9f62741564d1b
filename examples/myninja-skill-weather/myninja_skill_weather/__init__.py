"""An example myninja skill: a weather forecast from a small table, so it needs no network."""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import Field

from myninja.skills import Draft, Skill, ToolError, tool

FORECASTS = {
    "oslo": ["snow, -3 °C", "cloudy, -1 °C", "clear, -6 °C"],
    "lisbon": ["sunny, 18 °C", "sunny, 19 °C", "showers, 16 °C"],
    "tokyo": ["rain, 12 °C", "cloudy, 14 °C", "sunny, 15 °C"],
}


@tool
def forecast(city: str, days: Annotated[int, Field(ge=1, le=3)] = 1) -> list[str]:
    """The weather forecast for a city, one line per day.

    Args:
        city: The city's name, e.g. "Oslo".
        days: How many days ahead, from 1 to 3.
    """
    lines = FORECASTS.get(city.strip().casefold())
    if lines is None:
        raise ToolError(f"no forecast for {city!r}; known cities: {', '.join(FORECASTS)}")
    return [f"day {n}: {line}" for n, line in enumerate(lines[:days], 1)]


async def prepare(draft: Draft) -> str | None:
    """For models that do not call tools: the forecast of every known city the task names."""
    named = [city for city in FORECASTS if city in draft.task.casefold()]
    if not named:
        return None
    parts = []
    for city in named:
        # `use` runs the tool as a model's call would (gated, traced): its text is JSON here.
        lines = json.loads(await draft.use("forecast", {"city": city, "days": 3}))
        parts.append(f"Forecast for {city.title()}: " + "; ".join(lines))
    return "\n".join(parts)


skill = Skill(
    name="weather",
    description="Weather forecasts for a few cities (canned, for the example)",
    tools=[forecast],
    agents=("advisor", "scheduler"),
    prepare=prepare,
)
