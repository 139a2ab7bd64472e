// The active sheet's used range as a CSV file for an upload. Read in row chunks (Excel on
// the web refuses requests above about 5 MB); values and number formats are loaded together
// so a date cell (a serial number in a date format) becomes an ISO date, and a number
// becomes the text it is (never float noise).

import { columnIndex, columnLetter, rowsPerChunk } from "./chunks.js";
import { cellText } from "./workbook.js";

const EXCEL_EPOCH_MS = Date.UTC(1899, 11, 30);
const DAY_MS = 24 * 60 * 60 * 1000;

/** True for number formats that show a date (d, m and y codes; not a plain time or "0.00"). */
export function isDateFormat(format) {
  const bare = String(format || "").replace(/"[^"]*"|\[[^\]]*\]|\\./g, "").toLowerCase();
  return /[dy]/.test(bare);
}

/** Excel's serial day number → "YYYY-MM-DD" (the 1900 date system; whole days). */
export function serialToIso(serial) {
  return new Date(EXCEL_EPOCH_MS + Math.floor(serial) * DAY_MS).toISOString().slice(0, 10);
}

/** One cell as CSV field text. */
export function fieldText(value, format) {
  if (typeof value === "number" && isDateFormat(format)) return serialToIso(value);
  return cellText(value) ?? "";
}

function quoted(text) {
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Rows of fields → CSV text (RFC 4180, "\n" line ends); fully blank rows are left out. */
export function toCsv(rows) {
  return rows.filter((row) => row.some((field) => field !== ""))
    .map((row) => row.map(quoted).join(",")).join("\n").concat("\n");
}

function box(address) {
  const local = address.includes("!") ? address.slice(address.lastIndexOf("!") + 1) : address;
  const match = /^\$?([A-Z]+)\$?(\d+)(?::\$?([A-Z]+)\$?(\d+))?$/.exec(local);
  if (!match) throw new Error(`cannot read the used range '${address}'`);
  const [, c1, r1, c2 = c1, r2 = r1] = match;
  return { left: columnIndex(c1), top: Number(r1), right: columnIndex(c2), bottom: Number(r2) };
}

/** {name, csv, rows}: the active sheet's used range (header row included) as CSV. */
export async function activeSheetCsv(context, chunkRows) {
  const sheet = context.workbook.worksheets.getActiveWorksheet();
  const used = sheet.getUsedRange(true);
  sheet.load("name");
  used.load("address");
  await context.sync();
  const { left, top, right, bottom } = box(used.address);
  const width = right - left + 1;
  const size = chunkRows || rowsPerChunk(width * 2); // values and formats
  const rows = [];
  for (let start = top; start <= bottom; start += size) {
    const end = Math.min(bottom, start + size - 1);
    const range = sheet.getRange(`${columnLetter(left)}${start}:${columnLetter(right)}${end}`);
    range.load("values, numberFormat");
    await context.sync();
    range.values.forEach((cells, r) => {
      rows.push(cells.map((value, c) => fieldText(value, range.numberFormat[r][c])));
    });
  }
  if (rows.length < 2) throw new Error(`sheet '${sheet.name}' has no data rows under a header`);
  return { name: sheet.name, csv: toCsv(rows), rows: rows.length - 1 };
}
