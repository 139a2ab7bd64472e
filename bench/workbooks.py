"""Workbook reading benchmark (run by bench/uploads.py, or alone):

    python bench/workbooks.py [--rows 200000] [--bomb-gb 1.18]

1. An XLSX of `--rows` rows (the 13 columns of the CSV benchmark) read side by side, each in
   a fresh process: openpyxl read-only (how uploads were read before) and Paysheet's reader
   (limits check + calamine). Prints seconds, peak RSS growth and the ratio (budget >= 5x).
2. A 4 MB-class XLSX whose sheet has no <dimension> and `--bomb-gb` GB of XML (styled empty
   cells down to the last rows): sniffed in a fresh process; budget: processed or refused
   within 30 s, RSS growth <= 300 MB.
Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RATIO_BUDGET, BOMB_SECONDS, BOMB_RSS_MB = 5.0, 30.0, 300
HEADER = ["Employee ID", "Full Name", "Email", "Fund Code", "Job Level", "Team", "Cost Center",
          "Location", "Bonus Eligible", "Base Salary (USD)", "Perf Score 2025", "Hire Date",
          "Termination Date"]

MEASURE = r"""
import json, sys, time
sys.path.insert(0, {root!r})
def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])
{imports}
{prepare}
before = rss("VmRSS:")
started, cpu = time.perf_counter(), time.process_time()
outcome = "read"
try:
    count = {body}
except Exception as error:
    outcome, count = f"refused: {{error}}", 0
print(json.dumps({{"seconds": time.perf_counter() - started, "rows": count,
                  "cpu": time.process_time() - cpu,
                  "outcome": outcome, "rss_growth_mb": (rss("VmHWM:") - before) / 1024}}))
"""

# (imports, preparation not measured, measured expression)
OPENPYXL = ("from openpyxl import load_workbook", "",
            "sum(1 for _ in load_workbook(open({path!r}, 'rb'), read_only=True, "
            "data_only=True).worksheets[0].iter_rows(values_only=True))")
PAYSHEET = ("from pathlib import Path\n"
            "from server.modules.uploads.parsing import sniff, iter_records",
            "fmt = sniff(Path({path!r}))",
            "sum(1 for _ in iter_records(Path({path!r}), fmt))")
SNIFF = ("from pathlib import Path\nfrom server.modules.uploads.parsing import sniff", "",
         "len(sniff(Path({path!r})).columns)")


def measure(reader: tuple[str, str, str], path: Path) -> dict:
    """Seconds (wall and CPU) and peak RSS growth of one read, in a fresh process."""
    imports, prepare, body = reader
    code = MEASURE.format(root=str(ROOT), imports=imports,
                          prepare=prepare.format(path=str(path)),
                          body=body.format(path=str(path)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def make_xlsx(rows: int, path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Employees")
    sheet.append(HEADER)
    start = date(2010, 1, 1)
    for i in range(rows):
        sheet.append([f"E{i:07d}", f"Employee {i}", f"e{i}@example-fund-manager.com",
                      f"F{i % 40:02d}", ("analyst", "vp", "md")[i % 3], f"T{i % 25:02d}",
                      f"CC-{i % 25}", ("London", "New York", "Singapore")[i % 3],
                      "Y" if i % 4 else "N", 50_000 + (i % 997) * 101.25, 1 + (i % 9) / 2,
                      start + timedelta(days=i % 4000), None])
    book.save(path)


def make_bomb(gigabytes: float, path: Path, width: int = 60) -> int:
    """An XLSX whose only sheet has no <dimension>: a header, then styled empty cells."""
    letters = [chr(65 + i // 26 - 1) + chr(65 + i % 26) if i >= 26 else chr(65 + i)
               for i in range(width)]
    target, written = int(gigabytes * 1e9), 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", (
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="xml" ContentType="application/xml"/></Types>'))
        archive.writestr("xl/workbook.xml", (
            '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/'
            'spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/'
            'officeDocument/2006/relationships"><sheets><sheet name="Data" sheetId="1" '
            'r:id="rId1"/></sheets></workbook>'))
        archive.writestr("xl/_rels/workbook.xml.rels", (
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
            'openxmlformats.org/officeDocument/2006/relationships/worksheet" '
            'Target="worksheets/sheet1.xml"/></Relationships>'))
        info = zipfile.ZipInfo("xl/worksheets/sheet1.xml")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as sheet:
            head = (b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/'
                    b'spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr">'
                    b"<is><t>Employee ID</t></is></c></row>")
            sheet.write(head)
            template = ('<row r="%d">' + "".join(f'<c r="{x}%d" s="1"/>' for x in letters)
                        + "</row>")
            row = 2
            while written < target and row <= 1_048_576:
                block = "".join(template % ((r,) * (width + 1))
                                for r in range(row, min(row + 2000, 1_048_577))).encode()
                sheet.write(block)
                written += len(block)
                row += 2000
            sheet.write(b"</sheetData></worksheet>")
    return written


def run(rows: int, bomb_gb: float) -> None:
    with tempfile.TemporaryDirectory(prefix="paysheet-xlsx-bench-") as tmp:
        path = Path(tmp) / "employees.xlsx"
        started = time.perf_counter()
        make_xlsx(rows, path)
        print(f"XLSX: {rows:,} rows, {path.stat().st_size / 2**20:.1f} MB, written in "
              f"{time.perf_counter() - started:.1f} s")
        sniffed = measure(SNIFF, path)
        ours = measure(PAYSHEET, path)
        theirs = measure(OPENPYXL, path)
        ratio = theirs["cpu"] / ours["cpu"]
        print(f"  openpyxl read-only: {theirs['cpu']:.1f} s CPU ({theirs['seconds']:.1f} s "
              f"wall), RSS +{theirs['rss_growth_mb']:.0f} MB ({theirs['rows']:,} rows)")
        print(f"  paysheet read (calamine): {ours['cpu']:.1f} s CPU ({ours['seconds']:.1f} s "
              f"wall), RSS +{ours['rss_growth_mb']:.0f} MB ({ours['rows']:,} data rows)")
        print(f"  paysheet sniff at upload (limits check, sheets, header): {sniffed['cpu']:.1f} s "
              f"CPU ({sniffed['seconds']:.1f} s wall), RSS +{sniffed['rss_growth_mb']:.0f} MB")
        print(f"  ratio (CPU) {ratio:.1f}x (budget >= {RATIO_BUDGET:.0f}x): "
              f"{'OK' if ratio >= RATIO_BUDGET else 'OVER BUDGET'}")
        bomb = Path(tmp) / "formatted.xlsx"
        started = time.perf_counter()
        xml = make_bomb(bomb_gb, bomb)
        print(f"dimension-less sheet: {xml / 1e9:.2f} GB of sheet XML in a "
              f"{bomb.stat().st_size / 2**20:.1f} MB file (made in "
              f"{time.perf_counter() - started:.0f} s)")
        found = measure(SNIFF, bomb)
        within = found["cpu"] <= BOMB_SECONDS and found["rss_growth_mb"] <= BOMB_RSS_MB
        print(f"  {found['outcome'][:160]}")
        print(f"  {found['cpu']:.1f} s CPU ({found['seconds']:.1f} s wall), RSS "
              f"+{found['rss_growth_mb']:.0f} MB (budget "
              f"{BOMB_SECONDS:.0f} s, +{BOMB_RSS_MB} MB): {'OK' if within else 'OVER BUDGET'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--bomb-gb", type=float, default=1.18)
    args = parser.parse_args()
    run(args.rows, args.bomb_gb)


if __name__ == "__main__":
    main()
