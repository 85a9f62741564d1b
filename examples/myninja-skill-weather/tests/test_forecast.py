"""How to test a skill: call its tools as the agent would, through `call`."""

from __future__ import annotations

import json

import pytest
from myninja_skill_weather import forecast, skill

from skills.api import ToolArgumentError, ToolContext, ToolError


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
