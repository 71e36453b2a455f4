"""The Knative traffic validator (lint, the sandbox's admission, and the controller before every write)
agrees with Knative: with the real v1.23 CRD schema (tests read it from ../shared/knative/crds) and the
webhook's rules as ../shared/research/knative.md states them, re-written here as a plain oracle."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from rollout.knative.traffic import validate_traffic
from tests.lint.knative_crds import needs_knative_crds, schema_errors

pytestmark = needs_knative_crds

DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
QUALIFIED = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


def _label(tag: str) -> bool:
    return len(tag) <= 63 and DNS1035.fullmatch(tag) is not None


SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _name(name: str) -> bool:
    """A Kubernetes qualified name: an optional DNS-subdomain prefix and '/', then at most 63 characters."""
    prefix, _, rest = name.rpartition("/")
    if "/" in name and (not prefix or len(prefix) > 253 or not SUBDOMAIN.fullmatch(prefix)):
        return False
    return len(rest) <= 63 and QUALIFIED.fullmatch(rest) is not None


def _entry_ok(e: dict[str, Any], in_service: bool) -> bool:
    rev, conf = e.get("revisionName") or "", e.get("configurationName") or ""
    if e.get("latestRevision", rev == "") != (rev == ""):  # defaulted first: latestRevision = no revisionName
        return False
    if (in_service and conf) or (rev and conf) or (not in_service and not rev and not conf):
        return False
    if (rev and not _name(rev)) or (conf and not _name(conf)):
        return False
    return 0 <= e.get("percent", 0) <= 100 and not e.get("url")


def knative_accepts(entries: list[dict[str, Any]], *, in_service: bool) -> bool:
    route = {"apiVersion": "serving.knative.dev/v1", "kind": "Route", "spec": {"traffic": entries}}
    if schema_errors(route):
        return False
    if not entries and in_service:
        return True  # a Service without traffic gets [{latestRevision: true, percent: 100}]
    tags = [e.get("tag") or "" for e in entries]
    named = [t for t in tags if t]
    if any(not _label(t) for t in named) or len(set(named)) != len(named):
        return False
    return all(_entry_ok(e, in_service) for e in entries) and sum(e.get("percent", 0) for e in entries) == 100


def some(**fields: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


tag = st.sampled_from(["stable", "canary", "latest", "b", "Canary", "1st", "a-", "x" * 64, ""])
revision = st.sampled_from(
    ["hello-00001", "hello-00002", "hello-00003", "Hello_2", "-bad", "a" * 64, "a/b/c"]
)
percent = st.sampled_from([0, 10, 20, 50, 80, 90, 100, -1, 101, "10"])
noisy = some(
    tag=tag,
    revisionName=st.one_of(revision, st.just("")),
    configurationName=st.sampled_from(["hello", "ex.com/hello", "/x", ""]),
    latestRevision=st.sampled_from([True, False, "true"]),
    percent=percent,
    url=st.sampled_from(["", "http://x"]),
)
# the shapes people write: a pinned revision, or the latest one (of the Service, or of a Configuration)
pinned = st.builds(lambda r, rest: {"revisionName": r, **rest}, revision, some(tag=tag, percent=percent))
latest = some(tag=tag, percent=percent, latestRevision=st.just(True), configurationName=st.just("hello"))
entry = st.one_of(pinned, pinned, latest, latest, noisy)


def _summed(entries: list[dict[str, Any]], fix: bool) -> list[dict[str, Any]]:
    """Most blocks a person writes add up to 100: make the last entry's percent the rest, mostly."""
    if fix and entries:
        rest = sum(e["percent"] for e in entries[:-1] if isinstance(e.get("percent"), int))
        entries[-1] = {**entries[-1], "percent": 100 - rest}
    return entries


blocks = st.builds(_summed, st.lists(entry, max_size=4), st.sampled_from([True, True, True, False]))


@given(blocks, st.booleans())
@example([{"revisionName": "hello-00001", "percent": 90}, {"latestRevision": True, "percent": 10}], True)
@example([{"tag": "a", "percent": 100, "latestRevision": True}, {"tag": "a", "revisionName": "x"}], True)
@example([], False)
@example([], True)
def test_our_validator_accepts_exactly_what_knative_accepts(
    entries: list[dict[str, Any]], in_service: bool
) -> None:
    ours = validate_traffic(entries, in_service=in_service)
    assert (not ours) == knative_accepts(entries, in_service=in_service), [str(f) for f in ours]
