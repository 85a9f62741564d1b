"""How to test a skill: call its tools as the agent would, through `call`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from myninja_skill_weather import forecast, prepare, skill

from myninja.skills import Draft, ToolArgumentError, ToolContext, ToolError


@pytest.fixture
def ctx() -> ToolContext:
    return ToolContext(task_id="test")


async def test_forecast_for_two_days(ctx: ToolContext) -> None:
    out = await forecast.call({"city": "Oslo", "days": 2}, ctx)
    assert json.loads(out) == ["day 1: snow, -3 °C", "day 2: cloudy, -1 °C"]


async def test_days_out_of_range_is_refused_before_the_function_runs(ctx: ToolContext) -> None:
    with pytest.raises(ToolArgumentError, match="argument 'days'"):
        await forecast.call({"city": "Oslo", "days": 9}, ctx)


async def test_an_unknown_city_is_a_message_for_the_model(ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match="no forecast for 'Paris'"):
        await forecast.call({"city": "Paris"}, ctx)


def test_the_schema_the_model_sees() -> None:
    assert forecast.parameters["required"] == ["city"]
    assert forecast.parameters["properties"]["days"]["maximum"] == 3
    assert skill.permissions == frozenset()
    assert forecast("Tokyo") == ["day 1: rain, 12 °C"]  # still a plain function


async def test_prepare_gives_small_models_the_forecasts_the_task_needs(
    ctx: ToolContext, tmp_path: Path
) -> None:
    """A hook is tested like a tool: hand it a Draft whose `use` calls the real tool."""
    calls = []

    async def use(name: str, arguments: dict) -> str:
        calls.append((name, arguments))
        return await skill.tool(name).call(arguments, ctx)

    def draft(task: str) -> Draft:
        return Draft(task=task, agent="advisor", task_id="test", use=use, workspace=tmp_path)

    text = await prepare(draft("Should I cycle in Oslo or in Lisbon this week?"))
    assert text == (
        "Forecast for Oslo: day 1: snow, -3 °C; day 2: cloudy, -1 °C; day 3: clear, -6 °C\n"
        "Forecast for Lisbon: day 1: sunny, 18 °C; day 2: sunny, 19 °C; day 3: showers, 16 °C"
    )
    assert calls == [
        ("forecast", {"city": "oslo", "days": 3}),
        ("forecast", {"city": "lisbon", "days": 3}),
    ]
    assert await prepare(draft("Should I cycle to work?")) is None
