"""Hypothesis budgets for the engine tests: the normal suite's example counts, or a small,
derandomised budget for mutation runs (docs/engine.md "Mutation testing").

`PAYSHEET_HYPOTHESIS_PROFILE=mutation` (set by `make mutation`) selects the mutation
profile. A test's explicit `max_examples` would override any profile, so property tests
write `examples(150)` instead of `150`: the count they need normally, capped by the active
profile during a mutation run, where each of ~2,000 mutants reruns the covering tests.

`PAYSHEET_HYPOTHESIS_PROFILE=soak` does the opposite: 20 times the normal count, for a long
hunt after a change to a backend (`pytest tests/engine/test_parity.py`, about 20 minutes).
"""

from __future__ import annotations

import os

from hypothesis import settings

MUTATION = "mutation"
MUTATION_EXAMPLES = 12
SOAK = "soak"
SOAK_FACTOR = 20

# derandomize: a mutant's verdict must not depend on the seed; database=None: examples
# shrunk under one mutant must not be replayed against the next.
settings.register_profile(
    MUTATION, max_examples=MUTATION_EXAMPLES, derandomize=True, database=None, deadline=None
)
settings.register_profile(SOAK, deadline=None)
PROFILE = os.environ.get("PAYSHEET_HYPOTHESIS_PROFILE", "default")
settings.load_profile(PROFILE)


def examples(normal: int) -> int:
    """`normal` in the normal suite; at most the profile's count under the mutation profile,
    SOAK_FACTOR times it under the soak profile."""
    if PROFILE == MUTATION:
        return min(normal, MUTATION_EXAMPLES)
    if PROFILE == SOAK:
        return normal * SOAK_FACTOR
    return normal
