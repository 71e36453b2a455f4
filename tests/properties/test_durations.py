"""Durations as users write them: the parser, the canonical form and the CRD's pattern agree."""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st

from rollout.api.durations import (
    DURATION_PATTERN,
    MAX_DURATION_SECONDS,
    DurationError,
    format_duration,
    parse_duration,
)

UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
part = st.tuples(
    st.integers(0, 10_000),
    st.one_of(st.none(), st.integers(0, 999)),
    st.sampled_from(sorted(UNITS)),
)


def written(parts: list[tuple[int, int | None, str]]) -> str:
    return "".join(f"{n}{'' if f is None else f'.{f:03d}'}{u}" for n, f, u in parts)


@given(st.lists(part, min_size=1, max_size=4))
def test_a_go_style_duration_parses_to_the_sum_of_its_parts(parts: list[tuple[int, int | None, str]]) -> None:
    text = written(parts)
    expected = sum((n + (f or 0) / 1000) * UNITS[u] for n, f, u in parts)
    if expected > MAX_DURATION_SECONDS:
        try:
            parse_duration(text)
        except DurationError as err:
            assert "longer than a year" in str(err)
        else:
            raise AssertionError(f"{text} is longer than a year and was accepted")
        return
    assert abs(parse_duration(text) - expected) <= 1e-9 * max(1.0, expected)


@given(st.text(max_size=30))
@example(" 30s")
@example("30s\n")
@example("1.5.5s")
@example("٣s")  # a non-ASCII digit
def test_any_text_is_a_duration_or_a_duration_error_and_the_crd_pattern_agrees(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except DurationError:
        accepted = False
    else:
        accepted = True
        assert 0 <= seconds <= MAX_DURATION_SECONDS
    # what the parser accepts, the API server's pattern accepts too (and the reverse, within a year)
    if accepted or re.fullmatch(DURATION_PATTERN, text) is None:
        assert accepted == (re.fullmatch(DURATION_PATTERN, text) is not None), text


@given(st.integers(0, int(MAX_DURATION_SECONDS * 1000)))
def test_the_canonical_form_reads_back_to_the_same_duration(milliseconds: int) -> None:
    seconds = milliseconds / 1000
    text = format_duration(seconds)
    assert re.fullmatch(DURATION_PATTERN, text), text
    assert abs(parse_duration(text) - seconds) < 1e-6
    assert format_duration(parse_duration(text)) == text
