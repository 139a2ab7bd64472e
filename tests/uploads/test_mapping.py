"""Mapping suggestions: accuracy on a labelled corpus, presets, history, and the API."""

from __future__ import annotations

import io
import json

import psycopg

from server.modules.uploads.mapping import Remembered, remembered_key, suggest, tokens
from tests.uploads.conftest import API, add_catalog, multipart
from tests.uploads.mapping_corpus import LAYOUTS, TARGETS, labelled_pairs


def _top1(memory=None) -> tuple[int, int, list[tuple[str, str, str | None]]]:
    correct, total, misses = 0, 0, []
    for layout in LAYOUTS:
        chosen = {s.key: s.column for s in suggest(TARGETS, list(layout), memory)}
        for header, key in layout.items():
            if key is None:
                continue
            total += 1
            if chosen[key] == header:
                correct += 1
            else:
                misses.append((header, key, chosen[key]))
    return correct, total, misses


def test_corpus_is_big_enough() -> None:
    pairs = labelled_pairs()
    assert len(pairs) >= 60
    assert len({key for _, key in pairs}) >= 12


def test_top1_accuracy_is_at_least_90_percent() -> None:
    correct, total, misses = _top1()
    assert correct / total >= 0.90, misses


def test_columns_that_feed_nothing_stay_mostly_unmapped() -> None:
    wrongly_used = 0
    for layout in LAYOUTS:
        chosen = {s.column for s in suggest(TARGETS, list(layout)) if s.column}
        wrongly_used += sum(1 for h, k in layout.items() if k is None and h in chosen)
    assert wrongly_used <= 2


def test_presets_make_a_known_layout_perfect() -> None:
    memory: dict[str, list[Remembered]] = {}
    for layout in LAYOUTS:
        for header, key in layout.items():
            if key is not None:
                memory.setdefault(remembered_key(header), []).append(
                    Remembered(key, "preset:all", 1.0))
    correct, total, misses = _top1(memory)
    assert correct == total, misses


def test_normalisation_examples() -> None:
    assert tokens("Base Salary (USD)") == ["base", "salary"]
    assert tokens("Perf Score 2025") == ["performance", "score"]
    assert tokens("EMP_ID") == ["employee", "id"]
    assert tokens("employeeId") == ["employee", "id"]
    assert tokens("Target Bonus %") == ["target", "bonus", "pct"]


def test_each_suggestion_has_confidence_and_alternatives() -> None:
    found = {s.key: s for s in suggest(TARGETS, ["Staff No", "Fund", "Fund Return", "Pool"])}
    assert found["employee_ref"].column == "Staff No"
    assert 0.5 <= found["employee_ref"].confidence <= 0.95
    assert found["fund_ref"].column == "Fund"
    assert [a.column for a in found["fund_return"].alternatives][:1] == ["Fund"]


def _plan(database, tenant_id, inputs) -> str:
    with psycopg.connect(database.migrate, autocommit=True) as conn:
        conn.execute("set role paysheet_owner")
        document = {"name": "P", "inputs": inputs}
        return str(conn.execute(
            "insert into comp.bonus_plans (tenant_id, name, version, document) "
            "values (%s, 'P', 1, %s) returning id", (tenant_id, json.dumps(document))
        ).fetchone()[0])


def test_api_suggests_for_plan_inputs_then_presets_reach_100_percent(uc, make_tenant,
                                                                     database) -> None:
    tenant = make_tenant()
    headers = tenant.users["hr"].headers
    catalog = [{"key": t.key, "label": t.label, "dtype": "text"} for t in TARGETS
               if t.key not in ("employee_ref", "fund_ref")]
    add_catalog(database, tenant.id, catalog)
    plan_id = _plan(database, tenant.id, [
        {"key": "base_salary", "label": "Base salary", "dtype": "decimal"},
        {"key": "performance_score", "label": "Performance score", "dtype": "decimal"},
        {"key": "fte", "label": "Full-time equivalent", "dtype": "decimal"}])
    header = ["Personnel Nr", "Fixed Pay", "Perf. Mgmt Score", "Working Hours %"]
    data = (",".join(header) + "\nE1,100,3,1\n").encode()
    upload_id = multipart(uc, headers, data).json()["id"]
    response = uc.get(f"{API}/uploads/{upload_id}/mapping-suggestions",
                      params={"plan_id": plan_id}, headers=headers)
    assert response.status_code == 200, response.text
    chosen = {s["key"]: s["column"] for s in response.json()["suggestions"]}
    assert list(chosen) == ["employee_ref", "fund_ref", "base_salary", "performance_score", "fte"]
    assert chosen["fte"] == "Working Hours %"  # a seeded alias of full-time equivalent
    truth = {"employee_ref": "Personnel Nr", "base_salary": "Fixed Pay",
             "performance_score": "Perf. Mgmt Score", "fte": "Working Hours %"}
    saved = uc.post(f"{API}/uploads/{upload_id}/map", headers=headers, json=truth,
                    params={"plan_id": plan_id, "preset_name": "Payroll export"})
    assert saved.status_code == 202, saved.text
    again = multipart(uc, headers, data, filename="next-month.csv").json()["id"]
    suggestions = uc.get(f"{API}/uploads/{again}/mapping-suggestions",
                         params={"plan_id": plan_id}, headers=headers).json()["suggestions"]
    chosen = {s["key"]: (s["column"], s["source"]) for s in suggestions if s["column"]}
    assert chosen == {key: (column, "preset:Payroll export") for key, column in truth.items()}


def test_presets_are_listed_renamed_deleted_and_audited(uc, make_tenant, database) -> None:
    tenant = make_tenant()
    headers = tenant.users["hr"].headers
    upload_id = multipart(uc, headers, b"ID,Team\nE1,T1\n").json()["id"]
    uc.post(f"{API}/uploads/{upload_id}/map", headers=headers, json={"employee_ref": "ID"},
            params={"preset_name": "Minimal"})
    presets = uc.get(f"{API}/mapping-presets", headers=headers).json()
    assert [(p["name"], p["mapping"], p["kind"]) for p in presets] == [
        ("Minimal", {"employee_ref": "ID"}, "employees")]
    preset_id = presets[0]["id"]
    renamed = uc.patch(f"{API}/mapping-presets/{preset_id}", headers=headers,
                       json={"name": "HR export"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "HR export"
    assert uc.get(f"{API}/mapping-presets", params={"kind": "funds"},
                  headers=headers).json() == []
    assert uc.delete(f"{API}/mapping-presets/{preset_id}", headers=headers).status_code == 204
    assert uc.get(f"{API}/mapping-presets", headers=headers).json() == []
    audit = uc.get(f"{API}/audit", params={"entity": "mapping_preset"},
                   headers=tenant.users["admin"].headers).json()["items"]
    assert [e["action"] for e in audit] == ["preset.delete", "preset.rename", "preset.create"]
    upload_audit = uc.get(f"{API}/audit", params={"entity_id": upload_id},
                          headers=tenant.users["admin"].headers).json()["items"]
    assert [e["action"] for e in upload_audit][:3] == [
        "upload.rows", "upload.validate", "upload.map"]


def test_past_mappings_are_remembered(uc, make_tenant) -> None:
    headers = make_tenant().users["hr"].headers
    data = io.BytesIO(b"Matricule,Equipe\nE1,T1\n").getvalue()
    first = multipart(uc, headers, data).json()["id"]
    uc.post(f"{API}/uploads/{first}/map", headers=headers, json={"employee_ref": "Matricule"})
    second = multipart(uc, headers, data).json()["id"]
    suggestions = uc.get(f"{API}/uploads/{second}/mapping-suggestions",
                         headers=headers).json()["suggestions"]
    ref = next(s for s in suggestions if s["key"] == "employee_ref")
    assert (ref["column"], ref["source"], ref["confidence"]) == ("Matricule", "history", 0.99)


CONFIDENT = 0.8


def test_fresh_corpus_top1_is_at_least_95_percent_and_never_confidently_wrong() -> None:
    from tests.uploads import mapping_corpus_fresh as fresh

    assert len(fresh.labelled_pairs()) >= 150
    correct, total, misses, confident_wrong = 0, 0, [], []
    for layout in fresh.LAYOUTS:
        found = {s.key: s for s in suggest(TARGETS, list(layout))}
        for header, key in layout.items():
            if key is not None:
                total += 1
                correct += found[key].column == header
                if found[key].column != header:
                    misses.append((header, key, found[key].column))
        confident_wrong += [(s.column, s.key, s.confidence) for s in found.values()
                            if s.column and layout.get(s.column) != s.key
                            and s.confidence >= CONFIDENT]
    assert correct / total >= 0.95, misses
    assert confident_wrong == []


def test_seeded_aliases_name_the_common_hr_headers() -> None:
    found = {s.key: (s.column, s.source) for s in suggest(
        TARGETS, ["DOJ", "Employment Start Date", "End of Employment", "Appraisal Score"])}
    assert found["start_date"] in {("DOJ", "alias"), ("Employment Start Date", "alias")}
    assert found["leave_date"] == ("End of Employment", "alias")
    assert found["performance_score"] == ("Appraisal Score", "alias")


def test_tenant_aliases_are_edited_used_and_kept_to_the_tenant(uc, make_tenant,
                                                               database) -> None:
    tenant, other = make_tenant(), make_tenant()
    headers = tenant.users["hr"].headers
    add_catalog(database, tenant.id, [{"key": "base_salary", "label": "Base salary",
                                       "dtype": "decimal"}])
    response = uc.put(f"{API}/mapping-aliases/base_salary", headers=headers,
                      json=["Kohle  ", "Brutto Jahr", "Kohle"])
    assert response.status_code == 200 and response.json() == ["Brutto Jahr", "Kohle"]
    assert uc.get(f"{API}/mapping-aliases", headers=headers).json() == {
        "base_salary": ["Brutto Jahr", "Kohle"]}
    assert uc.get(f"{API}/mapping-aliases",
                  headers=other.users["hr"].headers).json() == {}
    unknown = uc.put(f"{API}/mapping-aliases/nope", headers=headers, json=["x"])
    assert unknown.status_code == 422 and "not an input" in unknown.text
    assert uc.put(f"{API}/mapping-aliases/base_salary", headers=tenant.users["readonly"].headers,
                  json=["x"]).status_code == 403
    upload_id = multipart(uc, headers, b"Staff ID,Kohle\nE1,100\n").json()["id"]
    found = {s["key"]: s for s in uc.get(f"{API}/uploads/{upload_id}/mapping-suggestions",
                                         headers=headers).json()["suggestions"]}
    assert (found["base_salary"]["column"], found["base_salary"]["source"],
            found["base_salary"]["confidence"]) == ("Kohle", "alias", 0.97)
