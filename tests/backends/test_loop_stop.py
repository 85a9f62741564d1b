"""The engine's loop check: a reply whose tail repeats one block of tokens is cut short, and
ordinary text, lines alike but not equal, and short blocks asked for over and over are not."""

from __future__ import annotations

import random

import pytest

from myninja.backends.llama_batch import LOOP_PERIODS, LOOP_REPEATS, LOOP_SPAN, looping


def block(size: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(50_000) for _ in range(size)]


@pytest.mark.parametrize("period", [LOOP_PERIODS.start, 23, 120, LOOP_PERIODS.stop - 1])
def test_a_block_said_over_and_over_is_a_loop(period: int) -> None:
    sentence = block(period, period)
    tail = (sentence * LOOP_SPAN)[: max(LOOP_SPAN, period * LOOP_REPEATS)]
    assert looping(block(40, 0) + tail)
    assert not looping(block(40, 0) + tail[:-1])


@pytest.mark.parametrize("period", [1, 2, 5, LOOP_PERIODS.start - 1])
def test_a_short_block_repeated_runs_on(period: int) -> None:
    # "hello, hello, hello, ..." or a row of zeros: more often asked for than a loop
    assert not looping(block(40, 0) + block(period, period) * 200)


def test_text_that_does_not_repeat_is_not_a_loop() -> None:
    assert not looping(block(2000, 3))


def test_lines_alike_but_not_equal_are_not_a_loop() -> None:
    # assert f(0) == 0, assert f(1) == 1, ...: the same shape with a different number each time
    lines = [token for n in range(60) for token in (11, 22, 33, 100 + n, 44, 55, 100 + n, 66)]
    assert not looping(lines)


def test_blocks_longer_than_the_longest_period_are_not_checked() -> None:
    assert not looping(block(LOOP_PERIODS.stop + 10, 4) * LOOP_REPEATS)
