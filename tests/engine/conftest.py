"""Engine test configuration: the Hypothesis profile, and test order during mutation runs."""

from __future__ import annotations

import pytest

from tests.engine import budget

SLOW_FILES = ("test_cli.py", "test_parity.py")
MUTATION_SKIPPED = (
    # 400 employees through both engines via the CLI: ~30% of the suite's time, and every
    # path it takes is also covered by test_parity's random plans and test_cli.
    "test_parity.py::test_cli_eval_of_sample_plan_is_identical_on_both_engines",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under the mutation profile: drop the one slow end-to-end duplicate, then run example
    tests before property tests and slow files last, so that `-x` stops a killed mutant's
    run early. The normal suite's order and selection are untouched."""
    if budget.PROFILE != budget.MUTATION:
        return
    skipped = [item for item in items if item.nodeid.endswith(MUTATION_SKIPPED)]
    if skipped:
        config.hook.pytest_deselected(items=skipped)
        items[:] = [item for item in items if item not in skipped]

    def cost(item: pytest.Item) -> tuple[bool, bool]:
        slow_file = item.nodeid.split("::")[0].endswith(SLOW_FILES)
        return slow_file, hasattr(getattr(item, "obj", None), "hypothesis")

    items.sort(key=cost)
