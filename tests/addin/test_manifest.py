"""manifest.xml against the Office add-in manifest XML schema v1.1 (offline structural check;
see ../shared/data/office-manifest-xsd/README.md for what it cannot catch)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from lxml import etree

ROOT = Path(__file__).resolve().parents[2]
XSD_DIR = Path("shared") / "data" / "office-manifest-xsd"
NS = {"o": "http://schemas.microsoft.com/office/appforoffice/1.1"}


def _schema_dir() -> Path:
    # shared/ sits beside the checkout (CI) or beside the worktrees' parent (developers)
    for candidate in (ROOT.parent / XSD_DIR, ROOT.parent.parent / XSD_DIR):
        if (candidate / "OfficeAppManifestV1_1.xsd").exists():
            return candidate
    raise AssertionError("the Office manifest XSDs (shared/data/office-manifest-xsd) are missing")


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(_schema_dir() / "OfficeAppManifestV1_1.xsd")))


@pytest.fixture(scope="module")
def manifest() -> etree._ElementTree:
    return etree.parse(str(ROOT / "manifest.xml"))


def test_manifest_is_a_valid_task_pane_manifest(schema, manifest):
    assert schema.validate(manifest), schema.error_log


def test_manifest_points_at_the_servers_task_pane(manifest):
    source = manifest.find("o:DefaultSettings/o:SourceLocation", NS).get("DefaultValue")
    assert source.startswith("https://") and source.endswith("/addin/taskpane.html")
    assert manifest.getroot().get("{http://www.w3.org/2001/XMLSchema-instance}type") == (
        "TaskPaneApp")
    assert [h.get("Name") for h in manifest.findall("o:Hosts/o:Host", NS)] == ["Workbook"]
    icons = [e.get("DefaultValue") for e in manifest.iter() if e.get("DefaultValue", "")
             .endswith(".png")]
    for icon in icons:
        assert (ROOT / "addin" / icon.split("/addin/", 1)[1]).exists(), icon


def test_the_schema_check_rejects_a_broken_manifest(schema, manifest):
    broken = copy.deepcopy(manifest)
    root = broken.getroot()
    root.insert(0, etree.Element(f"{{{NS['o']}}}Bogus"))
    assert not schema.validate(broken)
    missing = copy.deepcopy(manifest)
    missing.getroot().remove(missing.find("o:DefaultSettings", NS))
    assert not schema.validate(missing)


def test_addin_files_are_served_but_not_its_dev_files(client):
    page = client.get("/addin/taskpane.html")
    assert page.status_code == 200 and 'src="src/taskpane.js"' in page.text
    module = client.get("/addin/src/workbook.js")
    assert module.status_code == 200 and "javascript" in module.headers["content-type"]
    assert client.get("/addin/assets/icon-32.png").status_code == 200
    for private in ("package.json", "package-lock.json", "tests/workbook.test.js",
                    "node_modules/office-addin-mock/package.json"):
        assert client.get(f"/addin/{private}").status_code == 404, private


def test_support_and_learn_more_point_at_the_help_page_served_with_the_addin(manifest):
    support = manifest.find("o:SupportUrl", NS).get("DefaultValue")
    learn_more = [e.get("DefaultValue") for e in manifest.iter()
                  if e.get("id") == "Paysheet.LearnMore.Url"]
    for url in (support, *learn_more):
        assert url.endswith("/addin/help.html"), url
    assert len(learn_more) == 1
    page = (ROOT / "addin" / "help.html").read_text()
    assert "<title>Paysheet in Excel: help</title>" in page and "Home → Add-ins" in page


def test_icons_are_real_pictures_of_the_declared_sizes(manifest):
    from PIL import Image

    for resid, size in (("Paysheet.Icon16", 16), ("Paysheet.Icon32", 32),
                        ("Paysheet.Icon80", 80)):
        url = next(e.get("DefaultValue") for e in manifest.iter() if e.get("id") == resid)
        with Image.open(ROOT / "addin" / url.split("/addin/", 1)[1]) as image:
            assert image.size == (size, size), url
            colours = image.convert("RGBA").getcolors(maxcolors=100_000)
            assert colours is not None and len(colours) > 8, f"{url}: a placeholder"
