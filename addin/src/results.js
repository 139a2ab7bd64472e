// A run's results as a Results sheet (no DOM, no network): one row per employee the signed-in
// user may see (the server answers only those), the payout, the change against the plan's
// previous finalized run, the diagnostics, then every step's value. Decimals stay exact text
// until the cell: the change is computed on decimal text (BigInt), never on floats.

import { difference, normaliseDecimal } from "./vectors.js";

export const RESULTS_SHEET = "Results";

/** Text that Excel would read as a formula (= + - @, or a leading tab/CR) gets the quote
 * prefix, so user and data text stays text: `=cmd|' /C calc'!A0` shows as typed. */
export function safeText(value) {
  const text = String(value ?? "");
  return /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
}

/** A decimal text as a cell number (display only; the exact text is in the audit file). */
function cellNumber(text) {
  const normal = text === null || text === undefined ? null : normaliseDecimal(text);
  return normal === null ? "" : Number(normal);
}

/** {header, rows} of the Results sheet. `results` are GET /runs/{id}/results items,
 * `previous` a Map employee_ref → payout text of the previous finalized run (or null). */
export function resultsTable(results, payoutStep, steps, previous = null) {
  const header = ["Employee", `Payout (${payoutStep})`, "Previous finalized payout",
    "Change", "Diagnostics", ...steps];
  const rows = results.map((row) => {
    const payout = row.values?.[payoutStep] ?? null;
    const before = previous ? previous.get(row.employee_ref) ?? null : null;
    const change = payout !== null && before !== null ? difference(payout, before, null) : null;
    const notes = (row.diagnostics || []).map((d) => `${d.step}: ${d.code}`).join("; ");
    return [safeText(row.employee_ref), cellNumber(payout),
      before === null ? (previous ? "new" : "") : cellNumber(before),
      change === null ? "" : cellNumber(change), safeText(notes),
      ...steps.map((step) => {
        const value = row.values?.[step];
        if (value === null || value === undefined) return "";
        if (typeof value === "boolean") return value;
        return normaliseDecimal(value) === null ? safeText(value) : cellNumber(value);
      })];
  });
  return { header, rows };
}

/** The fund/pool summary below the results: one row per group of each allocate step, from
 * the run's totals (`pools`): [[step, group, employees, pool, allocated, unallocated, paid]]. */
export function poolSummary(totals) {
  const header = ["Pool step", "Group (fund)", "Employees", "Pool", "Allocated", "Unallocated",
    "Paid"];
  const rows = [];
  for (const pool of totals?.pools || []) {
    for (const group of pool.groups || []) {
      const key = group.key === "__all__" || group.key === null ? "(all)" : group.key;
      rows.push([safeText(pool.step), safeText(key), group.headcount,
        cellNumber(group.pool_amount), cellNumber(group.allocated),
        cellNumber(group.unallocated), cellNumber(group.paid)]);
    }
  }
  return { header, rows };
}

/** A tape (GET /runs/{id}/results?employee_ref=) as lines for the pane. */
export function tapeLines(tape) {
  return tape.steps.map((step) => {
    const guard = step.condition ? ` [if ${step.condition}: ${step.condition_value}]` : "";
    const result = step.result === null || step.result === undefined ? "null"
      : normaliseDecimal(step.result) ?? String(step.result);
    const notes = step.diagnostics.length
      ? ` (${step.diagnostics.map((d) => d.code).join(", ")})` : "";
    return `${step.step} = ${step.expr}${guard} → ${result}${notes}`;
  });
}
