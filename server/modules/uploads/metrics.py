"""Prometheus metrics of uploads: receive throughput (tus PATCH bodies) and the mapping /
validation error rate. deploy/prometheus/rules/paysheet.yml alerts on both."""

from __future__ import annotations

from prometheus_client import Counter

UPLOAD_BYTES = Counter("paysheet_upload_received_bytes_total",
                       "Bytes appended to uploads by tus PATCH requests")
UPLOAD_SECONDS = Counter("paysheet_upload_receive_seconds_total",
                         "Seconds spent receiving tus PATCH bodies (throughput = bytes / seconds)")
VALIDATIONS = Counter("paysheet_upload_validations_total",
                      "Mapped uploads validated, by outcome (ready or failed)", ["outcome"])
VALIDATED_ROWS = Counter("paysheet_upload_validated_rows_total",
                         "Data rows checked by upload validation")
VALIDATION_PROBLEMS = Counter("paysheet_upload_validation_problems_total",
                              "Problems found by upload validation (row/column errors)")
for _outcome in ("ready", "failed"):
    VALIDATIONS.labels(_outcome)


def observe_received(size: int, seconds: float) -> None:
    if size > 0:
        UPLOAD_BYTES.inc(size)
        UPLOAD_SECONDS.inc(max(seconds, 0.0))


def observe_validation(ok: bool, rows: int, problems: int) -> None:
    VALIDATIONS.labels("ready" if ok else "failed").inc()
    VALIDATED_ROWS.inc(rows)
    VALIDATION_PROBLEMS.inc(problems)
