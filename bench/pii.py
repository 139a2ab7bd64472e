"""PII encryption cost (`make bench`): what sealing adds to uploads and runs, per size.

For the sample employees at 10k and 100k rows, with a random tenant data key:

- the typed Parquet: written plain vs written through the sealing writer, and read back
  (open + SHA-256 + Polars read, what a run's load phase does) plain vs sealed;
- the employee rows fill: building the `raw` JSON of every row plain vs with the sensitive
  cells sealed (one AES-GCM per row).

Budget: sealing adds at most 10% of the run budget (3 s at 10k, 30 s at 100k) to a run's
load, and at most 3 s per 100k rows to the rows fill. Prints the best of 5. Not a test.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from samples.generate import employees
from server.modules.keys.cipher import TenantCipher
from server.modules.uploads.sealing import seal_rows

RUN_BUDGET = {10_000: 3.0, 100_000: 30.0}
SENSITIVE = ["base_salary", "start_date", "leave_date"]


def best(action: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    cipher = TenantCipher(uuid.uuid4(), {1: os.urandom(32)}, 1)
    for count in (10_000, 100_000):
        measure(cipher, count)


def measure(cipher: TenantCipher, count: int) -> None:
    """Print the figures for `count` sample employees."""
    frame = employees(count, 40, 7)
    table = frame.to_arrow()
    plain = io.BytesIO()
    pq.write_table(table, plain)
    payload = plain.getvalue()

    def write_sealed() -> bytes:
        target = io.BytesIO()
        writer = cipher.writer(target, "uploads.typed_data")
        pq.write_table(table, writer)
        writer.close()
        return target.getvalue()

    sealed = write_sealed()
    write_plain_s = best(lambda: pq.write_table(table, io.BytesIO()))
    write_sealed_s = best(write_sealed)
    read_plain_s = best(lambda: (hashlib.sha256(payload).hexdigest(),
                                 pl.read_parquet(payload)))
    read_sealed_s = best(lambda: (hashlib.sha256(
        opened := cipher.open_blob(sealed, "uploads.typed_data")).hexdigest(),
        pl.read_parquet(opened)))
    rows = frame.with_row_index("file_row", offset=2)
    keys = list(frame.columns)
    rows_plain_s = best(lambda: rows.select(pl.struct(keys).struct.json_encode()), 3)
    rows_sealed_s = best(lambda: seal_rows(
        rows, "file_row", [k for k in keys if k not in SENSITIVE], SENSITIVE, cipher,
        uuid.uuid4()), 3)
    added_run = read_sealed_s - read_plain_s
    print(f"{count:>7,} rows: typed Parquet {len(payload) / 1e6:.1f} MB; write plain "
          f"{write_plain_s * 1e3:.0f} ms, sealed {write_sealed_s * 1e3:.0f} ms; "
          f"run load plain {read_plain_s * 1e3:.0f} ms, sealed {read_sealed_s * 1e3:.0f} ms "
          f"(+{added_run * 1e3:.0f} ms, ratio to 10% of the run budget "
          f"{added_run / (0.1 * RUN_BUDGET[count]):.3f})")
    added_rows = rows_sealed_s - rows_plain_s
    print(f"{'':>7}        rows fill JSON plain {rows_plain_s * 1e3:.0f} ms, with sealed "
          f"cells {rows_sealed_s * 1e3:.0f} ms (+{added_rows * 1e3:.0f} ms, ratio to "
          f"3 s per 100k {added_rows / (3.0 * count / 100_000):.3f})")



if __name__ == "__main__":
    main()
