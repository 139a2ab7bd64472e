import assert from "node:assert/strict";
import { test } from "node:test";

import { canSeeInquiries, finalizeBlock, inquiryLines } from "../src/inquiries.js";

const INQUIRIES = [
  { status: "open", employee_ref: "E1", step: "deferred", input_key: null,
    question: "Is the threshold right?", answer: null, resolution: null },
  { status: "resolved", employee_ref: "E2", step: null, input_key: "variable_pay",
    question: "Salary?", answer: "checking", resolution: "corrected and re-run" },
];

test("each inquiry is one line naming employee, step or input, state and outcome", () => {
  assert.deepEqual(inquiryLines(INQUIRIES), [
    "[open] E1, step deferred: Is the threshold right?",
    "[resolved] E2, input variable_pay: Salary? — corrected and re-run",
  ]);
  assert.deepEqual(inquiryLines(undefined), []);
});

test("only open or answered inquiries block the finalize", () => {
  assert.match(finalizeBlock(INQUIRIES), /^1 unresolved inquiry blocks finalize/);
  const two = [...INQUIRIES, { ...INQUIRIES[0], status: "answered" }];
  assert.match(finalizeBlock(two), /^2 unresolved inquiries block/);
  assert.equal(finalizeBlock([INQUIRIES[1]]), "");
});

test("readonly users do not see inquiries", () => {
  assert.equal(canSeeInquiries({ permissions: ["runs.read"] }), false);
  assert.equal(canSeeInquiries({ permissions: ["inquiries.read"] }), true);
});
