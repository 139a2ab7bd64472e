// Large ranges are read and written in row chunks: Excel on the web refuses a request
// (payload) above about 5 MB, so no single load or write may carry more than LIMIT_BYTES.

export const LIMIT_BYTES = 4 * 1024 * 1024;
const BYTES_PER_CELL = 64; // a generous estimate of one cell's share of a request

/** Rows per request so that rows × columns × BYTES_PER_CELL stays under the limit. */
export function rowsPerChunk(columns, limitBytes = LIMIT_BYTES, bytesPerCell = BYTES_PER_CELL) {
  return Math.max(1, Math.floor(limitBytes / (Math.max(1, columns) * bytesPerCell)));
}

export function columnLetter(index) {
  // 1 → A, 27 → AA
  let letters = "";
  for (let n = index; n > 0; n = Math.floor((n - 1) / 26)) {
    letters = String.fromCharCode(65 + ((n - 1) % 26)) + letters;
  }
  return letters;
}

/** Values of rows firstRow..lastRow, columns 1..columns of `sheet`, one sync per chunk. */
export async function readRows(context, sheet, firstRow, lastRow, columns, chunkRows) {
  const size = chunkRows || rowsPerChunk(columns);
  const last = columnLetter(columns);
  const rows = [];
  for (let start = firstRow; start <= lastRow; start += size) {
    const end = Math.min(lastRow, start + size - 1);
    const range = sheet.getRange(`A${start}:${last}${end}`);
    range.load("values");
    await context.sync();
    rows.push(...range.values);
  }
  return rows;
}

/** Write a 2-D array at (firstRow, column letter) in chunks of rows, one sync per chunk. */
export async function writeRows(context, sheet, firstRow, columnStart, values, chunkRows) {
  if (values.length === 0) return;
  const width = values[0].length;
  const size = chunkRows || rowsPerChunk(width);
  const startIndex = columnIndex(columnStart);
  const endLetter = columnLetter(startIndex + width - 1);
  for (let offset = 0; offset < values.length; offset += size) {
    const part = values.slice(offset, offset + size);
    const top = firstRow + offset;
    sheet.getRange(`${columnStart}${top}:${endLetter}${top + part.length - 1}`).values = part;
    await context.sync();
  }
}

export function columnIndex(letters) {
  let index = 0;
  for (const ch of letters) index = index * 26 + (ch.charCodeAt(0) - 64);
  return index;
}
