"""Hypothesis profiles. `ci` (the default, what `.ci/run` uses) is bounded and derandomized: the same
examples every run, so a red CI run is reproducible and the suite's time is fixed; `dev` explores more and
keeps found failures in .hypothesis/ (git-ignored); `deep` is for a long hunt:
    HYPOTHESIS_PROFILE=deep ./scripts/test tests/properties"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=300, deadline=None, print_blob=True)
settings.register_profile("deep", max_examples=5000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
