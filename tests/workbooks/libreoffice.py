"""Re-save a workbook through LibreOffice Calc (headless), a real spreadsheet application.

The profile is the test's own (parallel workers never share one) and tells Calc to
recalculate every formula when it loads an .xlsx (`OOXMLRecalcMode` 0, "always"), so the
values in the saved copy are LibreOffice's, not the cached ones it was given.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

PROFILE = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry"
 xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode"
 oor:op="fuse"><value>0</value></prop></item>
</oor:items>
"""


def soffice() -> str:
    """The LibreOffice binary; the test fails (never skips) without it (.ci/run installs
    Debian's libreoffice-calc)."""
    found = shutil.which("soffice") or shutil.which("libreoffice")
    assert found, "LibreOffice (soffice) is not installed: apt-get install libreoffice-calc"
    return found


def resave(path: Path, work: Path) -> Path:
    """`path` opened, recalculated and saved as .xlsx by LibreOffice; returns the copy."""
    profile = work / "lo-profile"
    (profile / "user").mkdir(parents=True, exist_ok=True)
    (profile / "user" / "registrymodifications.xcu").write_text(PROFILE)
    out = work / "lo-out"
    out.mkdir(exist_ok=True)
    done = subprocess.run(
        [soffice(), f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore",
         "--convert-to", "xlsx:Calc MS Excel 2007 XML", "--outdir", str(out), str(path)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    saved = out / path.name
    assert done.returncode == 0 and saved.exists(), done.stdout + done.stderr
    return saved
