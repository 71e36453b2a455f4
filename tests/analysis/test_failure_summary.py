"""What a failed Prometheus query says in a Rollout's status: a few words, not the library's exception chain
and the URL-encoded query (those go to the log)."""

from __future__ import annotations

import pytest

from rollout.analysis.transport import QueryFailure

CHAIN = (
    "cannot connect: HTTPConnectionPool(host='prometheus.monitoring', port=9090): Max retries exceeded with "
    "url: /api/v1/query?query=sum+by+%28le%29+%28increase%28revision_request_latencies_bucket%7B"
    'namespace%3D%22shop%22%7D%5B60s%5D%29%29&timeout=5s (Caused by NewConnectionError("HTTPConnection('
    "host='prometheus.monitoring', port=9090): Failed to establish a new connection: {reason}\"))"
)


@pytest.mark.parametrize(
    ("failure", "summary"),
    [
        (
            QueryFailure("connection", CHAIN.format(reason="[Errno 111] Connection refused"), True),
            "unreachable: Connection refused",
        ),
        (
            QueryFailure("connection", CHAIN.format(reason="[Errno -2] Name or service not known"), True),
            "unreachable: Name or service not known",
        ),
        (QueryFailure("connection", "cannot connect: something else", True), "unreachable: cannot connect"),
        (QueryFailure("timeout", "no answer within 5.0s", True), "no answer within 5.0s"),
        (QueryFailure("timeout", "timed out: " + CHAIN, True), "no answer in time"),
        (
            QueryFailure(
                "tls",
                "TLS error: HTTPSConnectionPool(...): [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
                "failed: self-signed certificate (_ssl.c:1006)')))",
                False,
            ),
            "TLS failed: certificate verify failed: self-signed certificate",
        ),
        (
            QueryFailure("http_4xx", "HTTP 400: bad_data: parse error at char 7", False),
            "HTTP 400: bad_data: parse error at char 7",
        ),
    ],
)
def test_a_failure_is_summed_up_in_a_few_words(failure: QueryFailure, summary: str) -> None:
    assert failure.summary() == summary
    assert len(failure.summary()) <= 200
