"""decode_answer: a Prometheus API body read into compact rows, with the same meaning as the generic JSON tree
read by parse_vector (no server)."""

from __future__ import annotations

import json
import math
import tracemalloc

import pytest

from rollout.analysis.builtins import latency_histograms
from rollout.analysis.dialects import KNATIVE_CLASSIC
from rollout.analysis.keys import RevisionKey
from rollout.analysis.results import (
    ResultShapeError,
    Sample,
    decode_answer,
    parse_single_number,
    parse_vector,
)
from rollout.knative.dialects import CLASSIC_LATENCY_BUCKETS_MS

EDGES = [*(f"{ms:g}" for ms in CLASSIC_LATENCY_BUCKETS_MS), "+Inf"]


def _body(result: object, result_type: str = "vector") -> bytes:
    return json.dumps({"status": "success", "data": {"resultType": result_type, "result": result}}).encode()


def _histogram_rows(revisions: int) -> list[dict[str, object]]:
    """A classic latency histogram answer, the shape of the builtin latency query's (27 rows a revision)."""
    return [
        {
            "metric": {"le": le, "namespace_name": "default", "revision_name": f"svc-{r:04d}-00001"},
            "value": [1700000000.5, str(r + i)],
        }
        for r in range(revisions)
        for i, le in enumerate(EDGES)
    ]


def test_vector_rows_are_samples_equal_to_the_generic_reading() -> None:
    rows = _histogram_rows(3)
    decoded = decode_answer(_body(rows))
    assert isinstance(decoded, list) and all(isinstance(r, Sample) for r in decoded)
    assert parse_vector(decoded) == parse_vector(rows)
    keys = frozenset(RevisionKey("default", f"svc-{r:04d}-00001") for r in range(3))
    assert latency_histograms(KNATIVE_CLASSIC, keys, parse_vector(decoded)) == latency_histograms(
        KNATIVE_CLASSIC, keys, parse_vector(rows)
    )


def test_label_values_are_shared_between_rows() -> None:
    decoded = decode_answer(_body(_histogram_rows(2)))
    assert isinstance(decoded, list)
    first, second, other = decoded[0], decoded[1], decoded[len(EDGES)]
    assert first.labels["revision_name"] is second.labels["revision_name"]
    assert first.labels["namespace_name"] is other.labels["namespace_name"]
    assert first.labels["le"] is other.labels["le"]


def test_special_values_and_empty_labels() -> None:
    body = _body([{"metric": {}, "value": [1, "NaN"]}, {"metric": {"a": "b"}, "value": [1, "+Inf"]}])
    rows = parse_vector(decode_answer(body))
    assert math.isnan(rows[0].value) and rows[1] == Sample({"a": "b"}, math.inf)
    assert parse_single_number(decode_answer(_body([{"metric": {}, "value": [1, "2.5"]}]))) == 2.5
    assert parse_single_number(decode_answer(_body([1700000000, "3"], "scalar"))) == 3.0
    assert parse_single_number(decode_answer(_body([]))) is None
    # a label value that is not a string is read as parse_vector always read it
    assert parse_vector(decode_answer(_body([{"metric": {"a": 1}, "value": [1, "1"]}]))) == [
        Sample({"a": "1"}, 1)
    ]


@pytest.mark.parametrize(
    "result",
    [
        [{"metric": {}, "values": [[1, "1"]]}],  # a range vector
        [{"metric": {}, "value": [1, None]}],  # a value that is not a number
        [{"metric": {}, "value": [1, "text"]}],
        [1700000000, "1"],  # a scalar where a vector is needed
    ],
)
def test_shapes_parse_vector_refuses_stay_refused(result: object) -> None:
    with pytest.raises(ResultShapeError):
        parse_vector(decode_answer(_body(result)))


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"<html>proxy error</html>", ValueError),
        (b"[1, 2]", TypeError),
        (b'{"status": "success"}', KeyError),
        (b'{"status": "success", "data": []}', TypeError),
    ],
)
def test_bodies_that_are_not_an_api_answer(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_answer(body)


def test_a_large_answer_holds_a_fraction_of_the_generic_tree() -> None:
    """The reason decode_answer exists: 500 revisions' histograms (13,500 rows) read as Samples hold under
    40% of what json.loads' tree plus parse_vector's rows hold."""
    body = _body(_histogram_rows(500))

    def held(read: object) -> int:
        tracemalloc.start()
        try:
            assert callable(read)
            kept = read()
            size, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert len(kept[1]) == 500 * len(EDGES)
        return size

    generic = held(lambda: (tree := json.loads(body), parse_vector(tree["data"]["result"])))
    compact = held(lambda: (None, parse_vector(decode_answer(body))))
    assert compact < 0.4 * generic, (compact, generic)
