import assert from "node:assert/strict";
import { test } from "node:test";

import { compare, difference, normaliseDecimal, populations, requestRows, sameValue, shown,
  stepPlaces } from "../src/vectors.js";

test("decimals are compared as exact decimal text", () => {
  assert.equal(normaliseDecimal("1234.5000000000"), "1234.5");
  assert.equal(normaliseDecimal("-0.0000000000"), "0");
  assert.equal(normaliseDecimal("007.10"), "7.1");
  assert.equal(normaliseDecimal("abc"), null);
  assert.ok(sameValue("0.1000000000", "0.1"));
  assert.ok(!sameValue("0.1000000001", "0.1"));
  assert.ok(sameValue(true, "TRUE"));
  assert.ok(sameValue(null, ""));
  assert.ok(sameValue("md", "md"));
});

test("vectors become request rows and results are compared per step", () => {
  const vectors = [
    { row: 2, case: "a", inputs: { x: "1" }, expected: { bonus: "10" } },
    { row: 3, case: "b", inputs: { employee_ref: "E9", x: "2" }, expected: { bonus: "21" } },
  ];
  assert.deepEqual(requestRows(vectors), [{ employee_ref: "T2", x: "1" },
    { employee_ref: "E9", x: "2" }]);
  const response = { rows: [
    { employee_ref: "T2", values: { bonus: "10.0000000000" }, diagnostics: [] },
    { employee_ref: "E9", values: { bonus: "20.0000000000" },
      diagnostics: [{ step: "bonus", code: "division_by_zero" }] },
  ] };
  assert.deepEqual(compare(vectors, response), [
    { row: 2, passed: true, message: "all expected values match" },
    { row: 3, passed: false,
      message: "bonus: expected 21, got 20 (difference -1); bonus: division_by_zero" },
  ]);
});

test("each vector is its own population unless rows share a Group", () => {
  const vectors = [
    { row: 2, inputs: { x: "1" }, expected: {}, group: null },
    { row: 3, inputs: { x: "2" }, expected: {}, group: "fund A" },
    { row: 4, inputs: { x: "3" }, expected: {}, group: null },
    { row: 5, inputs: { x: "4" }, expected: {}, group: "fund A" },
  ];
  assert.deepEqual(populations(vectors).map((p) => p.map((v) => v.row)), [[2], [3, 5], [4]]);
});

test("values and differences are shown in the step's display format", () => {
  const document = { payout: "bonus", steps: [
    { name: "share", expr: "allocate(pool, w)" }, { name: "rate", expr: "round(x / 3, 4)" },
    { name: "raw", expr: "x / 3" }, { name: "bonus", expr: "share * 2" }] };
  const places = stepPlaces(document);
  assert.deepEqual(places, { share: 2, rate: 4, raw: null, bonus: 2 });
  assert.equal(shown("25000.0000000000", 2), "25000.00");
  assert.equal(shown("0.3333333333", null), "0.3333333333");
  assert.equal(shown("2.0000000000", null), "2");
  assert.equal(shown("0.1250000000", 2), "0.12"); // half-even, display only
  assert.equal(difference("25000.0000000000", "100", 2), "+24900.00");
  assert.equal(difference("0.3333000000", "0.3334", 4), "-0.0001");
  assert.equal(difference(true, "false", null), null);
  const vectors = [{ row: 2, inputs: {}, expected: { bonus: "100", rate: "0.3333" } }];
  const responses = [{ rows: [{ employee_ref: "T2", diagnostics: [],
    values: { bonus: "25000.0000000000", rate: "0.3333000000" } }] }];
  assert.deepEqual(compare(vectors, responses, places), [{ row: 2, passed: false,
    message: "bonus: expected 100.00, got 25000.00 (difference +24900.00)" }]);
});
