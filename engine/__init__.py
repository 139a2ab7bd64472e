"""Paysheet's plan engine: DSL, checker, Decimal reference and Polars backends, CLI.

Importing it sets how Polars' allocator (jemalloc) gives freed memory back, unless the
process already chose (`_RJEM_MALLOC_CONF` is read once, when Polars loads, so this only
takes effect if `engine` is imported before `polars`). Polars' built-in setting returns
freed pages to the system almost at once, so every stage of an evaluation faults its
memory in again: at 1M employees that was ~20% of the CPU time (docs/engine.md
"Performance"). Ten seconds keeps the pages across a run and still
returns them once the process is idle.
"""

import os

ALLOCATOR_SETTING = "dirty_decay_ms:10000,muzzy_decay_ms:10000"
os.environ.setdefault("_RJEM_MALLOC_CONF", ALLOCATOR_SETTING)
