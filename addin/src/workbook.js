// Reading the plan workbook into an ENGINE.md §1 plan document, and writing the server's
// answers (statuses, messages, highlights, plan id and hash, test results) back into it.
// Same sheet layout as the server (templates/plan_layout.json) and the same reading rules
// as server/modules/workbooks/reader.py.

import { columnLetter, readRows, writeRows } from "./chunks.js";
import { locate, planFieldRow, tableColumn } from "./diagnostics.js";
import { GROUP_TITLE } from "./vectors.js";

export const ERROR_FILL = "#F8CBAD";
const TRUE_WORDS = { true: true, yes: true, 1: true, false: false, no: false, 0: false };

/** A cell value as the text the author typed; empty → null. Numbers never stay floats. */
export function cellText(value) {
  if (value === null || value === undefined) return null;
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") return numberText(value);
  const text = String(value).trim();
  return text === "" ? null : text;
}

export function numberText(value) {
  if (Number.isInteger(value) && Math.abs(value) < 1e21) return value.toFixed(0);
  const text = String(value);
  if (!text.includes("e")) return text;
  return value.toFixed(10).replace(/0+$/, "").replace(/\.$/, "");
}

function lastRow(layout) {
  return 1 + layout.max_rows;
}

async function readTable(context, layout, name) {
  const sheet = context.workbook.worksheets.getItem(name);
  const columns = layout.sheets[name].columns;
  const values = await readRows(context, sheet, 2, lastRow(layout), columns.length);
  const items = [];
  const rows = [];
  values.forEach((cells, offset) => {
    const item = {};
    columns.forEach((column, index) => {
      if (column.editable) item[column.key] = cellText(cells[index]);
    });
    if (Object.values(item).some((v) => v !== null)) {
      items.push(item);
      rows.push(2 + offset);
    }
  });
  return { items, rows };
}

function problem(errors, layout, sheet, row, key, message) {
  const column = tableColumn(layout, sheet, key);
  errors.push({ sheet, row, column, cell: `${sheet}!${column}${row}`, code: "invalid_value",
    message });
}

function choice(errors, layout, sheet, row, item, key, fallback) {
  const spec = layout.sheets[sheet].columns.find((c) => c.key === key);
  const value = item[key];
  if (value === null) {
    if (fallback === undefined) problem(errors, layout, sheet, row, key, `${spec.header} is empty`);
    return fallback ?? null;
  }
  if (!spec.choices.map((c) => c.toLowerCase()).includes(value.toLowerCase())) {
    problem(errors, layout, sheet, row, key,
      `${spec.header} must be one of ${spec.choices.join(", ")}, got '${value}'`);
    return null;
  }
  return value.toLowerCase();
}

function typedText(dtype, text) {
  if (text === null) return null;
  return dtype === "text" && text === '""' ? "" : text;
}

function inputOf(item, row, errors, layout) {
  const required = item.required === null ? true : TRUE_WORDS[item.required.toLowerCase()];
  if (required === undefined) {
    problem(errors, layout, "Inputs", row, "required",
      `Required must be TRUE or FALSE, got '${item.required}'`);
  }
  const dtype = choice(errors, layout, "Inputs", row, item, "dtype");
  return { key: item.key, label: item.label, dtype,
    scope: choice(errors, layout, "Inputs", row, item, "scope", "employee"),
    required: required ?? true, default: typedText(dtype, item.default) };
}

function parameterOf(item, row, errors, layout) {
  const dtype = choice(errors, layout, "Parameters", row, item, "dtype");
  if (item.value === null) problem(errors, layout, "Parameters", row, "value", "Value is empty");
  return { key: item.key, dtype, value: typedText(dtype, item.value) };
}

function stepOf(item, row, errors, layout) {
  let order = null;
  if (item.order === null || !/^-?\d+$/.test(item.order)) {
    problem(errors, layout, "Steps", row, "order",
      item.order === null ? "Order is empty" : `Order must be a whole number, got '${item.order}'`);
  } else {
    order = Number.parseInt(item.order, 10);
  }
  return { order, name: item.name, expr: item.expr ?? "", condition: item.condition,
    default: item.default, notes: item.notes ?? "" };
}

/** {document, rows, errors, planId}: the plan as the workbook holds it. */
export async function readPlan(context, layout) {
  const planSheet = context.workbook.worksheets.getItem("Plan");
  const fields = layout.sheets.Plan.fields;
  const header = await readRows(context, planSheet, 2, 1 + fields.length, 2);
  const value = (key) => cellText(header[planFieldRow(layout, key) - 2][1]);
  const version = Number.parseInt(value("version") ?? "1", 10);
  const document = {
    name: value("name"), version: Number.isNaN(version) ? 1 : version,
    effective_from: value("effective_from"), effective_to: value("effective_to"),
    currency: value("currency"), payout: value("payout"),
  };
  const errors = [];
  const rows = {};
  for (const [part, sheet, make] of [["inputs", "Inputs", inputOf],
    ["parameters", "Parameters", parameterOf], ["steps", "Steps", stepOf]]) {
    const table = await readTable(context, layout, sheet);
    document[part] = table.items.map((item, i) => make(item, table.rows[i], errors, layout));
    rows[part] = table.rows;
  }
  return { document, rows, errors, planId: value("plan_id") };
}

async function unprotected(context, sheet, work) {
  sheet.protection.unprotect();
  await context.sync();
  try {
    await work();
  } finally {
    sheet.protection.protect({ allowFormatColumns: true });
    await context.sync();
  }
}

/** Status/Message of every row, offending cells highlighted; returns the located list. */
export async function writeDiagnostics(context, layout, document, rows, diagnostics, located) {
  const found = located || diagnostics.map((d) => locate(layout, document, rows, d));
  const byRow = new Map();
  for (const item of found) {
    const key = `${item.sheet}:${item.row}`;
    byRow.set(key, [...(byRow.get(key) || []), item.message]);
  }
  for (const [part, name] of [["inputs", "Inputs"], ["parameters", "Parameters"],
    ["steps", "Steps"]]) {
    const sheet = context.workbook.worksheets.getItem(name);
    const columns = layout.sheets[name].columns;
    const statusColumn = tableColumn(layout, name, "status");
    const used = new Set(rows[part] || []);
    const values = [];
    for (let row = 2; row <= lastRow(layout); row += 1) {
      const messages = byRow.get(`${name}:${row}`);
      if (messages) values.push(["error", messages.join("; ")]);
      else values.push([used.has(row) ? "ok" : "", ""]);
    }
    const editable = columns.filter((c) => c.editable).length;
    await unprotected(context, sheet, async () => {
      sheet.getRange(`A2:${columnLetter(editable)}${lastRow(layout)}`).format.fill.clear();
      await writeRows(context, sheet, 2, statusColumn, values);
      for (const item of found.filter((f) => f.sheet === name)) {
        sheet.getRange(`${item.column}${item.row}`).format.fill.color = ERROR_FILL;
      }
      await context.sync();
    });
  }
  const plan = context.workbook.worksheets.getItem("Plan");
  const planMessages = found.filter((f) => f.sheet === "Plan");
  await unprotected(context, plan, async () => {
    const editableRows = layout.sheets.Plan.fields.map((f, i) => (f.editable ? 2 + i : null))
      .filter((r) => r !== null);
    for (const row of editableRows) plan.getRange(`B${row}`).format.fill.clear();
    for (const item of planMessages) {
      plan.getRange(`B${item.row}`).format.fill.color = ERROR_FILL;
    }
    plan.getRange(`B${planFieldRow(layout, "message")}`).values = [[
      planMessages.map((f) => f.message).join("; ")]];
    await context.sync();
  });
  return found;
}

/** Write plan id, status, hash and version (server-owned cells) into the Plan sheet. */
export async function writePlanMeta(context, layout, meta) {
  const plan = context.workbook.worksheets.getItem("Plan");
  await unprotected(context, plan, async () => {
    for (const key of ["plan_id", "status", "plan_hash", "version"]) {
      if (meta[key] !== undefined) {
        plan.getRange(`B${planFieldRow(layout, key)}`).values = [[meta[key] ?? ""]];
      }
    }
    await context.sync();
  });
}

/** Test vectors: [{row, case, inputs: {key: text}, expected: {step: text}, group}]; a
 * column titled "Group" puts rows with the same value into one population. */
export async function readTests(context, layout) {
  const spec = layout.sheets.Tests;
  const sheet = context.workbook.worksheets.getItem("Tests");
  const width = spec.fixed.length + spec.free_columns;
  const [header] = await readRows(context, sheet, 1, 1, width);
  const values = await readRows(context, sheet, 2, 1 + spec.max_rows, width);
  const titles = header.slice(spec.fixed.length).map(cellText);
  const vectors = [];
  values.forEach((cells, offset) => {
    const inputs = {};
    const expected = {};
    let group = null;
    titles.forEach((title, index) => {
      const text = cellText(cells[spec.fixed.length + index]);
      if (title === null || text === null) return;
      if (title === GROUP_TITLE) group = text;
      else if (title.toLowerCase().startsWith("expect ")) expected[title.slice(7).trim()] = text;
      else inputs[title] = text;
    });
    if (Object.keys(inputs).length || Object.keys(expected).length) {
      const row = 2 + offset;
      vectors.push({ row, case: cellText(cells[0]) || `row ${row}`, inputs, expected, group });
    }
  });
  return vectors;
}

/** Status/Message (columns B:C) of each test row: [{row, passed, message}]. */
export async function writeTestResults(context, layout, results) {
  const sheet = context.workbook.worksheets.getItem("Tests");
  await unprotected(context, sheet, async () => {
    const last = 1 + layout.sheets.Tests.max_rows;
    const values = [];
    const byRow = new Map(results.map((r) => [r.row, r]));
    for (let row = 2; row <= last; row += 1) {
      const result = byRow.get(row);
      values.push(result ? [result.passed ? "pass" : "fail", result.message] : ["", ""]);
    }
    await writeRows(context, sheet, 2, "B", values);
    for (const result of results) {
      sheet.getRange(`B${result.row}`).format.fill.color = result.passed ? "#C6EFCE" : ERROR_FILL;
    }
    await context.sync();
  });
}
