"""The messy-file corpus (tests/uploads/messy_files.py) through the API: every file is read
into exactly the clean file's values, or refused / failed with a message naming the fix;
no value is read differently from the file without a warning."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tests.uploads.conftest import API, add_catalog
from tests.uploads.messy_files import CASES, CATALOG, HEADER, MAPPING, text_table, to_csv
from tests.uploads.sealed import opened_typed


def _upload(uc, headers, data: bytes, filename: str):
    return uc.post(f"{API}/uploads", headers=headers,
                   files={"file": (filename, data, "application/octet-stream")},
                   data={"kind": "employees"})


def _validate(uc, headers, upload_id: str) -> dict:
    response = uc.post(f"{API}/uploads/{upload_id}/map", headers=headers, json=MAPPING)
    assert response.status_code == 202, response.text
    return uc.get(f"{API}/uploads/{upload_id}/validation", headers=headers).json()


def _parquet(uc, headers, settings, tenant_id, upload_id: str) -> pl.DataFrame:
    """The ready upload's typed data (its content-addressed object)."""
    sha256 = uc.get(f"{API}/uploads/{upload_id}", headers=headers).json()["parquet_sha256"]
    return pl.read_parquet(opened_typed(settings, tenant_id, Path(settings.data_dir) / "uploads"
                                        / str(tenant_id) / "objects" / f"{sha256}.parquet"))


_CLEAN: list[pl.DataFrame] = []  # the clean file's typed data, read once per worker


@pytest.fixture
def corpus_tenant(make_tenant, database):
    tenant = make_tenant()
    add_catalog(database, tenant.id, CATALOG)
    return tenant


@pytest.fixture
def clean(uc, corpus_tenant, uploads_settings) -> pl.DataFrame:
    if not _CLEAN:
        headers = corpus_tenant.users["hr"].headers
        upload_id = _upload(uc, headers, to_csv(text_table()), "clean.csv").json()["id"]
        report = _validate(uc, headers, upload_id)
        assert report["status"] == "ready", report
        _CLEAN.append(_parquet(uc, headers, uploads_settings, corpus_tenant.id, upload_id))
    return _CLEAN[0]


def test_the_corpus_is_big_and_varied() -> None:
    assert len(CASES) >= 30
    assert {c.outcome for c in CASES} == {"same", "refused", "problems"}
    assert len({c.filename.rsplit(".", 1)[1] for c in CASES}) >= 6


def _changed_columns(preview: dict) -> set[str]:
    """Mapped columns whose preview cells differ from the clean table's text."""
    clean = {row[0]: dict(zip(HEADER, row, strict=True)) for row in text_table()[1:]}
    names = [c["name"] for c in preview["columns"]]
    changed = set()
    for row in preview["rows"]:
        cells = dict(zip(names, row["cells"], strict=False))
        ref = " ".join(cells.get("Employee ID", "").split())
        for column in HEADER:
            if ref in clean and cells.get(column, "") != clean[ref][column]:
                changed.add(column)
    return changed


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_messy_file(uc, corpus_tenant, uploads_settings, clean, case) -> None:
    headers = corpus_tenant.users["hr"].headers
    response = _upload(uc, headers, case.make(), case.filename)
    if case.outcome == "refused":
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert all(word in detail for word in case.words), detail
        return
    assert response.status_code == 201, response.text
    upload_id = response.json()["id"]
    report = _validate(uc, headers, upload_id)
    if case.outcome == "problems":
        assert report["status"] == "failed", report["summary"]
        said = " ".join(p["message"] + " " + p["hint"] for p in report["problems"])
        assert all(word in said for word in case.words), report["problems"]
        return
    assert report["status"] == "ready", report["problems"]
    typed = _parquet(uc, headers, uploads_settings, corpus_tenant.id, upload_id)
    assert typed.columns == clean.columns
    for column in clean.columns:  # value by value
        assert typed.get_column(column).to_list() == clean.get_column(column).to_list(), column
    warnings = report["summary"]["warnings"]
    kinds = {w["kind"] for w in warnings}
    assert set(case.warns) <= kinds, warnings
    assert all(w["count"] > 0 and w["samples"] and w["message"] for w in warnings)
    preview = uc.get(f"{API}/uploads/{upload_id}/preview", headers=headers).json()
    warned = {w["column"] for w in warnings}
    unexplained = _changed_columns(preview) - warned
    if preview["format"]["format"] == "csv":
        assert not unexplained, (unexplained, warnings)
