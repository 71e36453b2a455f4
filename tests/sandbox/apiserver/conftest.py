"""Fixtures of the sandbox API server tests (see cluster_fixture)."""

from tests.sandbox.apiserver.cluster_fixture import cluster

__all__ = ["cluster"]
