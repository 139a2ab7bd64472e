// An Office.js stand-in holding a workbook in memory, strict about the Excel JS API's
// batching: a range's `values` can be read only after load("values") AND context.sync();
// writes, fills and protection changes are queued and applied at sync, in order; writing
// into a protected sheet fails the sync as Excel does. It records every sync's size, so
// tests can check that large ranges go in chunks. Browser-safe (used by the Chromium test).

const ADDRESS = /^([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?$/;

export function columnIndex(letters) {
  let index = 0;
  for (const ch of letters) index = index * 26 + (ch.charCodeAt(0) - 64);
  return index;
}

export function columnLetter(index) {
  let letters = "";
  for (let n = index; n > 0; n = Math.floor((n - 1) / 26)) {
    letters = String.fromCharCode(65 + ((n - 1) % 26)) + letters;
  }
  return letters;
}

function parse(address) {
  const match = ADDRESS.exec(address);
  if (!match) throw new Error(`bad address ${address}`);
  const [, c1, r1, c2 = c1, r2 = r1] = match;
  return { left: columnIndex(c1), top: Number(r1), right: columnIndex(c2), bottom: Number(r2) };
}

export class FakeSheet {
  constructor(name) {
    this.name = name;
    this.cells = new Map(); // "B5" -> value
    this.fills = new Map(); // "B5" -> colour
    this.formats = new Map(); // "B5" -> number format (default "General")
    this.protected = true;
    this.selectionHandlers = []; // registered by onSelectionChanged.add, effective at sync
  }

  /** The smallest range holding every non-empty cell ("A1:F25"), or "A1" when empty. */
  usedAddress() {
    if (this.cells.size === 0) return "A1";
    const boxes = [...this.cells.keys()].map((cell) => parse(cell));
    const left = Math.min(...boxes.map((b) => b.left));
    const top = Math.min(...boxes.map((b) => b.top));
    const right = Math.max(...boxes.map((b) => b.right));
    const bottom = Math.max(...boxes.map((b) => b.bottom));
    return `${columnLetter(left)}${top}:${columnLetter(right)}${bottom}`;
  }

  get(cell) {
    return this.cells.has(cell) ? this.cells.get(cell) : "";
  }

  set(cell, value) {
    if (value === "" || value === null || value === undefined) this.cells.delete(cell);
    else this.cells.set(cell, value);
  }
}

export class FakeWorkbook {
  constructor(names) {
    this.sheets = new Map(names.map((name) => [name, new FakeSheet(name)]));
    this.syncs = []; // per sync: {cells: number of cells loaded or written}
    this.active = names[0];
  }

  /** Add an unprotected sheet (a data sheet) and make it the active one. */
  addSheet(name) {
    const sheet = new FakeSheet(name);
    sheet.protected = false;
    this.sheets.set(name, sheet);
    this.active = name;
    return sheet;
  }

  sheet(name) {
    const sheet = this.sheets.get(name);
    if (!sheet) throw new Error(`ItemNotFound: no sheet '${name}'`);
    return sheet;
  }

  /** The user clicks `address` on sheet `name`: it becomes the selection, and the sheet's
   * onSelectionChanged handlers get Excel's event args ({address, worksheetId, type}). */
  async userSelects(name, address) {
    const sheet = this.sheet(name);
    this.active = name;
    this.selected = `${name}!${address}`;
    for (const handler of sheet.selectionHandlers) {
      await handler({ address, worksheetId: name, type: "WorksheetSelectionChanged" });
    }
  }
}

class FakeRange {
  constructor(context, sheet, address) {
    this._context = context;
    this._sheet = sheet;
    this._box = parse(address);
    this._loaded = null;
    this._formats = null;
    const range = this;
    this.format = { fill: {
      set color(colour) { context._queue({ kind: "fill", range, colour }); },
      clear() { context._queue({ kind: "fill", range, colour: null }); },
    } };
  }

  load(what) {
    const names = what.split(",").map((name) => name.trim());
    for (const name of names) {
      if (!["values", "numberFormat"].includes(name)) {
        throw new Error(`the stand-in loads values and numberFormat, not ${name}`);
      }
    }
    this._context._queue({ kind: "load", range: this, formats: names.includes("numberFormat") });
    return this;
  }

  get numberFormat() {
    if (this._formats === null) {
      throw new Error("PropertyNotLoaded: call load('numberFormat') and context.sync() first");
    }
    return this._formats;
  }

  get values() {
    if (this._loaded === null) {
      throw new Error("PropertyNotLoaded: call load('values') and context.sync() first");
    }
    return this._loaded;
  }

  set values(rows) {
    const { left, top, right, bottom } = this._box;
    if (rows.length !== bottom - top + 1 || rows.some((r) => r.length !== right - left + 1)) {
      throw new Error("InvalidArgument: the values do not match the range's size");
    }
    this._context._queue({ kind: "write", range: this, rows });
  }

  *cells() {
    const { left, top, right, bottom } = this._box;
    for (let row = top; row <= bottom; row += 1) {
      for (let col = left; col <= right; col += 1) yield [row - top, col - left, `${columnLetter(col)}${row}`];
    }
  }
}

class FakeContext {
  constructor(workbook) {
    this._workbook = workbook;
    this._pending = [];
    const context = this;
    this.workbook = { worksheets: {
      getItem(name) { return context._sheetProxy(name); },
      getActiveWorksheet() { return context._sheetProxy(workbook.active); },
      getItemOrNullObject(name) {
        return workbook.sheets.has(name) ? context._sheetProxy(name) : { isNullObject: true };
      },
      add(name) {
        if (workbook.sheets.has(name)) throw new Error(`ItemAlreadyExists: sheet '${name}'`);
        workbook.addSheet(name);
        return context._sheetProxy(name);
      },
    } };
  }

  _queue(operation) {
    this._pending.push(operation);
  }

  _sheetProxy(name) {
    const sheet = this._workbook.sheet(name);
    const context = this;
    let nameLoaded = false;
    return {
      get name() {
        if (!nameLoaded) throw new Error("PropertyNotLoaded: call load('name') and sync first");
        return name;
      },
      load(what) {
        if (what !== "name") throw new Error(`the stand-in loads a sheet's name, not ${what}`);
        context._queue({ kind: "call", run: () => { nameLoaded = true; } });
      },
      isNullObject: false,
      getRange(address) {
        if (address === undefined) {
          return { clear() {
            context._queue({ kind: "call", run: () => { sheet.cells.clear(); sheet.fills.clear(); } });
          } };
        }
        const range = new FakeRange(context, sheet, address);
        range.select = () => context._queue({ kind: "call", run: () => {
          context._workbook.active = name;
          context._workbook.selected = `${name}!${address}`;
        } });
        return range;
      },
      activate() {
        context._queue({ kind: "call", run: () => { context._workbook.active = name; } });
      },
      onSelectionChanged: {
        add(handler) {
          context._queue({ kind: "call", run: () => { sheet.selectionHandlers.push(handler); } });
          return { remove() {
            context._queue({ kind: "call", run: () => {
              sheet.selectionHandlers = sheet.selectionHandlers.filter((h) => h !== handler);
            } });
          } };
        },
      },
      getUsedRange() {
        const used = { _address: null,
          get address() {
            if (this._address === null) throw new Error("PropertyNotLoaded: load('address')");
            return `${name}!${this._address}`;
          },
          load(what) {
            if (what !== "address") throw new Error(`the stand-in loads address, not ${what}`);
            context._queue({ kind: "call", run: () => { used._address = sheet.usedAddress(); } });
          } };
        return used;
      },
      protection: {
        protect() { context._queue({ kind: "protect", sheet, on: true }); },
        unprotect() { context._queue({ kind: "protect", sheet, on: false }); },
      },
    };
  }

  async sync() {
    const operations = this._pending;
    this._pending = [];
    let cells = 0;
    for (const op of operations) {
      if (op.kind === "protect") {
        op.sheet.protected = op.on;
      } else if (op.kind === "call") {
        op.run();
      } else if (op.kind === "load") {
        const { bottom, top, right, left } = op.range._box;
        const rows = Array.from({ length: bottom - top + 1 }, () => Array(right - left + 1));
        const formats = rows.map((row) => [...row]);
        for (const [r, c, cell] of op.range.cells()) {
          rows[r][c] = op.range._sheet.get(cell);
          formats[r][c] = op.range._sheet.formats.get(cell) || "General";
        }
        op.range._loaded = rows;
        if (op.formats) op.range._formats = formats;
        cells += rows.length * rows[0].length * (op.formats ? 2 : 1);
      } else {
        const sheet = op.range._sheet;
        if (sheet.protected) {
          throw new Error(`AccessDenied: sheet '${sheet.name}' is protected`);
        }
        for (const [r, c, cell] of op.range.cells()) {
          if (op.kind === "write") {
            sheet.set(cell, op.rows[r][c]);
            cells += 1;
          } else if (op.colour === null) {
            sheet.fills.delete(cell);
          } else {
            sheet.fills.set(cell, op.colour);
          }
        }
      }
    }
    this._workbook.syncs.push({ cells });
  }
}

/** The `Excel` namespace of the stand-in: Excel.run(async (context) => …). */
export function fakeExcel(workbook) {
  return { run: async (work) => work(new FakeContext(workbook)) };
}

/** A workbook laid out like the plan template, filled from a plan document. */
export function planWorkbook(layout, document = {}) {
  const names = Object.keys(layout.sheets);
  const workbook = new FakeWorkbook(names);
  const plan = workbook.sheet("Plan");
  layout.sheets.Plan.header.forEach((title, index) => plan.set(`${columnLetter(index + 1)}1`, title));
  layout.sheets.Plan.fields.forEach((field, index) => {
    plan.set(`A${index + 2}`, field.label);
    const value = document[field.key];
    if (value !== undefined && value !== null) plan.set(`B${index + 2}`, value);
  });
  for (const [part, name] of [["inputs", "Inputs"], ["parameters", "Parameters"],
    ["steps", "Steps"]]) {
    const sheet = workbook.sheet(name);
    const columns = layout.sheets[name].columns;
    columns.forEach((column, index) => sheet.set(`${columnLetter(index + 1)}1`, column.header));
    (document[part] || []).forEach((item, offset) => {
      columns.forEach((column, index) => {
        if (!column.editable || item[column.key] === undefined || item[column.key] === null) return;
        sheet.set(`${columnLetter(index + 1)}${offset + 2}`, item[column.key]);
      });
    });
  }
  const tests = workbook.sheet("Tests");
  layout.sheets.Tests.fixed.forEach((column, index) => {
    tests.set(`${columnLetter(index + 1)}1`, column.header);
  });
  return workbook;
}
