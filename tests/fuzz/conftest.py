"""Hypothesis profiles for the reader fuzz tests: `default` runs in `make test`, `fuzz` in `make fuzz`.

Each reader's damage tests run the profile's examples; its round-trip and field tests a share of them.

The default profile is derandomized so CI sees the same examples every run; `fuzz` explores new ones each
time (HYPOTHESIS_PROFILE=fuzz) and keeps failures in .hypothesis/ to replay them.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture,
          HealthCheck.filter_too_much, HealthCheck.large_base_example]

settings.register_profile("default", max_examples=250, deadline=None, derandomize=True, database=None,
                          suppress_health_check=_QUIET, print_blob=True)
settings.register_profile("fuzz", max_examples=10_000, deadline=None, suppress_health_check=_QUIET, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
