import pytest
from pydantic import BaseModel

from rollout.api.durations import Duration, DurationError, format_duration, parse_duration
from rollout.api.load import parse


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("1m30s", 90), ("2h", 7200), ("500ms", 0.5), ("1.5h", 5400), ("0s", 0), ("1h0m5s", 3605)],
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "30", "s", "-5s", "1d", "5 m", "1m-3s", "1e3s", "abc"])
def test_rejects_with_guidance(text: str) -> None:
    with pytest.raises(DurationError, match="duration"):
        parse_duration(text)


def test_rejects_more_than_a_year() -> None:
    with pytest.raises(DurationError, match="longer than a year"):
        parse_duration("9000h")


@pytest.mark.parametrize("seconds", [0, 0.25, 1, 59, 60, 61, 90, 3599, 3600, 5400, 7322, 1.5])
def test_format_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


def test_canonical_forms() -> None:
    assert format_duration(90) == "1m30s"
    assert format_duration(3600) == "1h"
    assert format_duration(0.25) == "250ms"


class _M(BaseModel):
    d: Duration


def test_bare_numbers_rejected_on_the_wire_but_accepted_from_python() -> None:
    model, problems = parse(_M, {"d": 30})
    assert model is None
    assert "no unit" in problems[0].message and "'30s'" in problems[0].message
    assert _M(d=30).d == 30.0
    assert _M.model_validate({"d": "1m"}).model_dump(mode="json") == {"d": "1m"}
