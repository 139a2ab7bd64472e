// Test vectors: the Tests sheet's rows as POST …/evaluate rows, and the comparison of the
// engine's values with the expected ones (decimals compared as exact decimal text).
//
// Each vector is its own population: aggregates (sum_over, count_over, allocate) see only
// that row, so a second vector in the same fund cannot change the first one's pool share.
// Rows that share a value in the "Group" column are evaluated together, as one population.
// Values and differences are shown in the step's display format (cents for round2, allocate
// and the payout; n places for round(x, n); otherwise without trailing zeros), never with
// the engine's 10 places of noise.

export const GROUP_TITLE = "Group";

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

const SCALE = 10;

/** An exact decimal text as a BigInt of 10^-10 units, or null when it is not a decimal. */
function units(text) {
  const normal = normaliseDecimal(text);
  if (normal === null) return null;
  const negative = normal.startsWith("-");
  const [whole, fraction = ""] = normal.replace("-", "").split(".");
  if (fraction.length > SCALE) return null;
  const value = BigInt(whole + fraction.padEnd(SCALE, "0"));
  return negative ? -value : value;
}

/** Units of 10^-10 as decimal text with `places` decimals (half-even), or trimmed (null). */
function fromUnits(value, places) {
  const negative = value < 0n;
  let magnitude = negative ? -value : value;
  let decimals = SCALE;
  if (places !== null && places < SCALE) {
    const step = 10n ** BigInt(SCALE - places);
    const [quotient, rest] = [magnitude / step, magnitude % step];
    const twice = rest * 2n;
    const up = twice > step || (twice === step && quotient % 2n === 1n);
    magnitude = quotient + (up ? 1n : 0n);
    decimals = places;
  }
  const digits = magnitude.toString().padStart(decimals + 1, "0");
  const whole = digits.slice(0, digits.length - decimals);
  const fraction = digits.slice(digits.length - decimals);
  let text = decimals ? `${whole}.${fraction}` : whole;
  if (places === null) text = normaliseDecimal(text);
  const zero = /^[0.]+$/.test(text);
  return negative && !zero ? `-${text}` : text;
}

/** The decimals each step is shown with: {step: places}, null meaning "as many as needed". */
export function stepPlaces(document) {
  const places = {};
  for (const step of document?.steps ?? []) {
    const expr = String(step.expr ?? "");
    const rounded = /^\s*round\s*\([\s\S]*,\s*(\d+)\s*\)\s*$/.exec(expr);
    if (step.name === document.payout || /^\s*(round2|allocate)\s*\(/.test(expr)) {
      places[step.name] = 2;
    } else if (rounded) {
      places[step.name] = Number(rounded[1]);
    } else {
      places[step.name] = null;
    }
  }
  return places;
}

/** A value in its step's display format (decimals only; other values as they are). */
export function shown(value, places = null) {
  if (value === null || value === undefined) return "null";
  const amount = typeof value === "boolean" ? null : units(value);
  return amount === null ? String(value) : fromUnits(amount, places);
}

/** got - expected in the step's format with its sign, or null when not two decimals. */
export function difference(got, expected, places = null) {
  const [a, b] = [units(got), units(expected)];
  if (a === null || b === null || typeof got === "boolean") return null;
  const text = fromUnits(a - b, places);
  return text.startsWith("-") ? text : `+${text}`;
}

/** The vectors grouped into populations: [[vector, …], …] in sheet order. */
export function populations(vectors) {
  const groups = new Map();
  for (const vector of vectors) {
    const key = vector.group ? `group:${vector.group}` : `row:${vector.row}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(vector);
  }
  return [...groups.values()];
}

/** Request rows: each vector's inputs, with an employee_ref of its own if it has none. */
export function requestRows(vectors) {
  return vectors.map((v) => ({ employee_ref: `T${v.row}`, ...v.inputs }));
}

function mismatch(step, want, got, places) {
  const diff = difference(got, want, places);
  const text = `${step}: expected ${shown(want, places)}, got ${shown(got, places)}`;
  return diff === null ? text : `${text} (difference ${diff})`;
}

/** [{row, passed, message}] from the vectors and the evaluate response(s). */
export function compare(vectors, response, places = {}) {
  const responses = Array.isArray(response) ? response : [response];
  const byRef = new Map(responses.flatMap((r) => r.rows).map((r) => [r.employee_ref, r]));
  return vectors.map((vector) => {
    const ref = vector.inputs.employee_ref ?? `T${vector.row}`;
    const result = byRef.get(ref);
    if (!result) return { row: vector.row, passed: false, message: "no result" };
    const wrong = Object.entries(vector.expected)
      .filter(([step, want]) => !sameValue(result.values[step], want))
      .map(([step, want]) => mismatch(step, want, result.values[step], places[step] ?? null));
    const notes = result.diagnostics.map((d) => `${d.step}: ${d.code}`);
    const passed = wrong.length === 0;
    const message = [...wrong, ...notes].join("; ") || "all expected values match";
    return { row: vector.row, passed, message };
  });
}
