"""Signed export bundles: reproducible, verifiable offline, and every tampering is caught."""

from __future__ import annotations

import base64
import io
import json
import zipfile

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from openpyxl import load_workbook

from engine.backends.base import EvalResult
from engine.hashing import results_csv
from server.modules.reports.bundle import (
    MANIFEST,
    SIGNATURE,
    build_bundle,
    safe_member_name,
    sha256,
    verify_bundle,
)
from server.modules.reports.export import export_files, manifest_run, rows_from_frame
from server.modules.reports.files import deterministic_zip
from server.modules.reports.render import statement_pdf
from server.modules.reports.statement import build_statement
from tests.reports.conftest import BRANDING, HOSTILE, HOSTILE_REF, Sample, run_info

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
EVENTS = [{"id": 1, "action": "run.create", "entity": "plan_run", "signature": "ab" * 32},
          {"id": 2, "action": "run.finalize", "entity": "plan_run", "signature": "cd" * 32}]


def _bundle(sample: Sample, statements: dict[str, bytes]) -> bytes:
    rows = rows_from_frame(sample.results)
    files = export_files(sample.plan, rows, statements, EVENTS)
    run = run_info("finalized")
    return build_bundle(files, manifest_run(run, sample.plan, "tenant-1", files), KEY)


@pytest.fixture(scope="module")
def statements(sample: Sample) -> dict[str, bytes]:
    refs = ["E0000001", HOSTILE_REF]
    return {ref: statement_pdf(build_statement(sample.plan, sample.tape(ref),
                                               run_info("finalized"), BRANDING))
            for ref in refs}


@pytest.fixture(scope="module")
def bundle(sample: Sample, statements: dict[str, bytes]) -> bytes:
    return _bundle(sample, statements)


def _members(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def test_bundle_verifies_and_lists_every_file(bundle: bytes) -> None:
    report = verify_bundle(bundle, KEY.public_key())
    assert report.ok, report.problems
    manifest = report.manifest
    assert manifest is not None
    names = [name for name, _ in _members(bundle)]
    assert names[-2:] == [MANIFEST, SIGNATURE]
    assert sorted(entry["path"] for entry in manifest["files"]) == sorted(names[:-2])
    assert {"results.csv", "results.xlsx", "audit_events.json", "statements/E0000001.pdf"} <= set(
        names)
    assert manifest["run"]["snapshot_hash"] == "a1" * 32
    assert manifest["run"]["results_hash"] == "b2" * 32
    assert json.loads(dict(_members(bundle))["audit_events.json"]) == EVENTS


def test_bundle_is_identical_when_exported_twice(sample: Sample, statements: dict[str, bytes],
                                                 bundle: bytes) -> None:
    assert _bundle(sample, statements) == bundle


def _rezip(members: list[tuple[str, bytes]]) -> bytes:
    return deterministic_zip(members)


def test_any_changed_byte_of_any_file_fails(bundle: bytes) -> None:
    members = _members(bundle)
    for index, (name, payload) in enumerate(members):
        for position in sorted({0, len(payload) // 2, len(payload) - 1}):
            changed = bytearray(payload)
            changed[position] ^= 0x01
            tampered = list(members)
            tampered[index] = (name, bytes(changed))
            report = verify_bundle(_rezip(tampered), KEY.public_key())
            assert not report.ok, f"{name} byte {position} changed, still verifies"


def test_raw_archive_corruption_fails(bundle: bytes) -> None:
    for position in range(40, len(bundle) - 200, max(1, len(bundle) // 97)):
        corrupted = bytearray(bundle)
        corrupted[position] ^= 0xFF
        report = verify_bundle(bytes(corrupted), KEY.public_key())
        with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
            in_data = any(info.header_offset + 30 + len(info.filename) <= position
                          < info.header_offset + 30 + len(info.filename) + info.compress_size
                          for info in archive.infolist())
        if in_data:
            assert not report.ok, f"byte {position} of the archive changed, still verifies"


def test_added_removed_or_wrong_key_fail(bundle: bytes) -> None:
    members = _members(bundle)
    extra = verify_bundle(_rezip([("evil.csv", b"=cmd"), *members]), KEY.public_key())
    assert "evil.csv: in the archive but not in the manifest" in extra.problems
    missing = verify_bundle(_rezip([m for m in members if m[0] != "results.csv"]),
                            KEY.public_key())
    assert "results.csv: listed in the manifest but missing" in missing.problems
    other_key = Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key()
    assert not verify_bundle(bundle, other_key).ok
    assert not verify_bundle(b"not a zip", KEY.public_key()).ok


def test_results_csv_is_the_canonical_csv_for_plain_data(sample: Sample) -> None:
    plain = sample.results.filter(sample.results["employee_ref"] != HOSTILE_REF)
    files = export_files(sample.plan, rows_from_frame(plain), {}, [])
    canonical = results_csv(sample.plan, EvalResult(plain))
    assert files["results.csv"] == canonical
    run = run_info("finalized")
    run = type(run)(**{**run.__dict__, "results_hash": sha256(canonical)})
    assert manifest_run(run, sample.plan, "t", files)["results_csv_matches_results_hash"]


def test_hostile_cells_are_neutralised_in_results(sample: Sample) -> None:
    rows = rows_from_frame(sample.results)
    rows[0]["employee_ref"] = HOSTILE
    files = export_files(sample.plan, rows, {}, [])
    assert b"\"'" + HOSTILE.replace('"', '""').encode() + b'"' in files["results.csv"]
    workbook = load_workbook(io.BytesIO(files["results.xlsx"]))
    refs = [row[0] for row in workbook.active.iter_rows(min_row=2)]
    assert any(cell.value == "'" + HOSTILE and cell.data_type == "s" for cell in refs)
    assert all(cell.data_type == "n" for row in workbook.active.iter_rows(min_row=2, max_col=4,
                                                                            min_col=3)
               for cell in row)


def test_unsafe_entry_names_fail(bundle: bytes) -> None:
    for name in ("../evil.csv", "/abs.csv", "a/./b.csv", "statements\\x.pdf"):
        report = verify_bundle(_rezip([(name, b"x"), *_members(bundle)]), KEY.public_key())
        assert f"unsafe entry name {name!r}" in report.problems


@pytest.mark.parametrize("ref", ["../../etc/passwd", "=cmd|x", "a/b", "émile", ""])
def test_statement_file_names_are_safe(ref: str) -> None:
    name = safe_member_name(ref)
    assert "/" not in name and ".." not in name and name
    assert name != safe_member_name(ref + "x")


def test_verify_bundle_cli(bundle: bytes, tmp_path) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from typer.testing import CliRunner

    from server.cli import app

    runner = CliRunner()
    good, bad = tmp_path / "bundle.zip", tmp_path / "tampered.zip"
    good.write_bytes(bundle)
    members = _members(bundle)
    bad.write_bytes(_rezip([(n, p + b" " if n == "results.csv" else p) for n, p in members]))
    pem = tmp_path / "key.pem"
    pem.write_bytes(KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    raw = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    inline = base64.b64encode(raw).decode()

    ok = runner.invoke(app, ["verify-bundle", str(good), "--public-key", str(pem)])
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output and "a1" * 32 in ok.output
    assert runner.invoke(app, ["verify-bundle", str(good), "--public-key", inline]).exit_code == 0
    tampered = runner.invoke(app, ["verify-bundle", str(bad), "--public-key", str(pem)])
    assert tampered.exit_code == 1
    assert "results.csv: SHA-256 does not match the manifest" in tampered.output
    wrong = runner.invoke(app, ["verify-bundle", str(good), "--public-key", "bm90IGEga2V5"])
    assert wrong.exit_code == 2 and "32 bytes" in wrong.output
