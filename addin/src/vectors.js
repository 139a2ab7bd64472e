// Test vectors: the Tests sheet's rows as POST …/evaluate rows, and the comparison of the
// engine's values with the expected ones (decimals compared as exact decimal text).

/** "1234.5000000000" and "1234.5" are the same decimal; compare text, never floats. */
export function normaliseDecimal(text) {
  const match = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(String(text).trim());
  if (!match) return null;
  const [, sign, whole, fraction = ""] = match;
  const integer = whole.replace(/^0+(?=\d)/, "") || "0";
  const decimals = fraction.replace(/0+$/, "");
  const body = decimals ? `${integer}.${decimals}` : integer;
  return body === "0" ? "0" : `${sign === "-" ? "-" : ""}${body}`;
}

export function sameValue(actual, expected) {
  if (actual === null || actual === undefined) {
    return ["", "null"].includes(String(expected).trim().toLowerCase());
  }
  if (typeof actual === "boolean") return String(actual) === String(expected).toLowerCase();
  const left = normaliseDecimal(actual);
  const right = normaliseDecimal(expected);
  if (left !== null && right !== null) return left === right;
  return String(actual) === String(expected);
}

/** Request rows: each vector's inputs, with an employee_ref of its own if it has none. */
export function requestRows(vectors) {
  return vectors.map((v) => ({ employee_ref: `T${v.row}`, ...v.inputs }));
}

/** [{row, passed, message}] from the vectors and the evaluate response. */
export function compare(vectors, response) {
  const byRef = new Map(response.rows.map((r) => [r.employee_ref, r]));
  return vectors.map((vector) => {
    const ref = vector.inputs.employee_ref ?? `T${vector.row}`;
    const result = byRef.get(ref);
    if (!result) return { row: vector.row, passed: false, message: "no result" };
    const wrong = Object.entries(vector.expected)
      .filter(([step, want]) => !sameValue(result.values[step], want))
      .map(([step, want]) => `${step}: expected ${want}, got ${result.values[step] ?? "null"}`);
    const notes = result.diagnostics.map((d) => `${d.step}: ${d.code}`);
    const passed = wrong.length === 0;
    const message = [...wrong, ...notes].join("; ") || "all expected values match";
    return { row: vector.row, passed, message };
  });
}
