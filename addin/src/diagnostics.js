// Where a plan diagnostic belongs in the workbook. Same rules as the server's
// server/modules/workbooks/locate.py: a step's problem goes to its Steps row (the column of
// the field), payout and header problems to the Plan sheet, input and parameter problems to
// the row of the key the message quotes.

const STEP_FIELDS = { expr: "expr", condition: "condition", default: "default", name: "name",
  order: "order", notes: "notes" };
const PLAN_FIELDS = new Set(["name", "effective_from", "effective_to", "currency", "payout",
  "version"]);

export function tableColumn(layout, sheet, key) {
  const columns = layout.sheets[sheet].columns;
  const index = columns.findIndex((c) => c.key === key);
  if (index < 0) throw new Error(`${sheet} has no column '${key}'`);
  return String.fromCharCode(65 + index);
}

export function planFieldRow(layout, key) {
  const index = layout.sheets.Plan.fields.findIndex((f) => f.key === key);
  if (index < 0) throw new Error(`Plan has no field '${key}'`);
  return 2 + index;
}

function rowsByKey(items, rows, key) {
  const found = new Map();
  (items || []).forEach((item, index) => {
    if (rows && index < rows.length) found.set(String(item[key]), rows[index]);
  });
  return found;
}

/** {sheet, row, column, cell, code, message, step, field} for one API diagnostic. */
export function locate(layout, document, rows, diagnostic) {
  const { step, field } = diagnostic;
  let sheet = "Plan";
  let row = planFieldRow(layout, "message");
  let column = "B";
  const steps = rowsByKey(document.steps, rows.steps, "name");
  if (step != null && steps.has(step) && field !== "payout") {
    sheet = "Steps";
    row = steps.get(step);
    column = tableColumn(layout, "Steps", STEP_FIELDS[field] || "name");
  } else if (field === "inputs" || field === "parameters") {
    const target = field === "inputs" ? "Inputs" : "Parameters";
    const keys = rowsByKey(document[field], rows[field], "key");
    const quoted = [...String(diagnostic.message || "").matchAll(/'([^']+)'/g)].map((m) => m[1]);
    const name = quoted.find((q) => keys.has(q));
    if (name !== undefined) {
      sheet = target;
      row = keys.get(name);
      const valueProblem = field === "parameters"
        && ["invalid_value", "unknown_parameter"].includes(diagnostic.code);
      column = tableColumn(layout, target, valueProblem ? "value" : "key");
    }
  } else if (PLAN_FIELDS.has(field)) {
    row = planFieldRow(layout, field);
  }
  return { sheet, row, column, cell: `${sheet}!${column}${row}`, code: diagnostic.code,
    message: diagnostic.message, step: step ?? null, field: field ?? null };
}

/** A 422 problem's errors (loc like ["body", "steps", 3, "order"]) as located diagnostics. */
export function locateRequestErrors(layout, rows, errors) {
  return errors.map((error) => {
    const loc = (error.loc || []).filter((part) => part !== "body");
    const [part, index, key] = loc;
    const sheet = { inputs: "Inputs", parameters: "Parameters", steps: "Steps" }[part];
    if (sheet && Number.isInteger(index) && rows[part] && index < rows[part].length) {
      const keys = layout.sheets[sheet].columns.map((c) => c.key);
      const column = keys.includes(key) ? tableColumn(layout, sheet, key) : "A";
      const row = rows[part][index];
      return { sheet, row, column, cell: `${sheet}!${column}${row}`, code: error.type,
        message: error.msg, step: null, field: key ?? null };
    }
    const known = layout.sheets.Plan.fields.some((f) => f.key === part);
    const row = planFieldRow(layout, known ? part : "message");
    return { sheet: "Plan", row, column: "B", cell: `Plan!B${row}`, code: error.type,
      message: `${loc.join(".")}: ${error.msg}`, step: null, field: part ?? null };
  });
}
