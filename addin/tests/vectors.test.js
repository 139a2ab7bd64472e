import assert from "node:assert/strict";
import { test } from "node:test";

import { compare, normaliseDecimal, requestRows, sameValue } from "../src/vectors.js";

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
      message: "bonus: expected 21, got 20.0000000000; bonus: division_by_zero" },
  ]);
});
