from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from rollout.analysis.auth import SecretUnavailable
from rollout.kube.secrets import not_opted_in
from tests.analysis import knative_data, prometheus_server
from tests.analysis.prometheus_server import LocalPrometheus, Series


class DictSecrets:
    """SecretReader over a dict {(namespace, name): {key: value}}; records what was read. Every Secret has
    opted in unless named in `private`."""

    def __init__(
        self,
        secrets: Mapping[tuple[str, str], Mapping[str, bytes]],
        private: frozenset[tuple[str, str]] = frozenset(),
    ) -> None:
        self._secrets = secrets
        self._private = private
        self.reads: list[tuple[str, str, str]] = []

    async def read(self, namespace: str, name: str, key: str, *, opt_in: bool) -> bytes:
        self.reads.append((namespace, name, key))
        secret = self._secrets.get((namespace, name))
        if secret is None:
            raise SecretUnavailable(f'secrets "{name}" not found')
        if opt_in and (namespace, name) in self._private:
            raise SecretUnavailable(not_opted_in(namespace, name))
        if key not in secret:
            raise SecretUnavailable(f"no key {key!r}")
        return secret[key]


# Label values that try to break out of a query; stored in Prometheus as values of `weird_total{name=...}`.
INJECTIONS = (
    'a"b',
    "a'b",
    "back\\slash",
    "trailing\\",
    "new\nline",
    '"} or vector(1) #',
    "}[5m]) or on() vector(1)",
    "'} or vector(1) #",
    "h\u00e9llo \u2713 \U0001f600",
    "replacement \ufffd char",
    "a.b|c",
    "(x)+[y]*?{2}^$",
    "tab\there",
    "nul\x00byte",
    "back`tick",
    "carriage\rreturn",
)
# Decoys that a regex made from an injection value would match if it were not escaped.
DECOYS = ("aXb", "c", "xxx", "a.b")


def _weird_series() -> list[Series]:
    samples = [(float(knative_data.T0 + k * 15), 1.0) for k in range(0, 61)]
    return [Series("weird_total", {"name": v}, list(samples)) for v in (*INJECTIONS, *DECOYS)]


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrometheus]:
    """One real Prometheus for the analysis tests, holding the data of knative_data (every dialect) and
    the injection label values."""
    workdir: Path = tmp_path_factory.mktemp("prometheus")
    data = prometheus_server.backfill([*knative_data.all_series(), *_weird_series()], workdir)
    server = prometheus_server.start(data, workdir)
    try:
        yield server
    finally:
        server.stop()
