"""The Prometheus rules under deploy/prometheus: valid (`promtool check rules`), the SLO
file generated from server.observability.slo, and every alert unit-tested (`promtool test
rules`) firing at least once."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from server.observability.slo_rules import render
from tests.uploads.server_process import ROOT

PROMETHEUS = ROOT / "deploy" / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*_test.yml"))


def _promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: apt-get install prometheus (see .ci/run)"
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def _alerts(path: Path) -> set[str]:
    groups = yaml.safe_load(path.read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


def test_slo_rules_file_is_generated_from_the_slo_definitions() -> None:
    committed = (PROMETHEUS / "rules" / "slo.yml").read_text()
    assert committed == render(), (
        "deploy/prometheus/rules/slo.yml is stale: python -m server.observability.slo_rules "
        "> deploy/prometheus/rules/slo.yml")


def test_rule_files_are_valid() -> None:
    assert len(RULE_FILES) >= 2
    result = _promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    assert TEST_FILES
    result = _promtool("test", "rules", *[path.name for path in TEST_FILES],
                       cwd=PROMETHEUS / "tests")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(TEST_FILES), result.stdout


def test_every_alert_has_a_test_where_it_fires() -> None:
    alerts = set().union(*(_alerts(path) for path in RULE_FILES))
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert len(alerts) >= 17
    assert alerts - fired == set(), "alerts never shown firing in a promtool test"
    assert alerts - quiet == set(), "alerts never shown staying quiet in a promtool test"
    assert fired - alerts == set(), "tests name alerts that do not exist"


@pytest.mark.parametrize("rule_file, before, after", [
    ("paysheet.yml", "> 0.5 and on()", "> 1.5 and on()"),
    ("slo.yml", " * 0.001)", " * 0.01)"),
])
def test_a_weakened_rule_fails_its_unit_test(tmp_path: Path, rule_file: str, before: str,
                                             after: str) -> None:
    """The unit tests have teeth: loosen one threshold and promtool reports the failure."""
    copy = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS, copy)
    rules = copy / "rules" / rule_file
    text = rules.read_text()
    assert before in text
    rules.write_text(text.replace(before, after))  # every occurrence
    result = _promtool("test", "rules", *[path.name for path in TEST_FILES],
                       cwd=copy / "tests")
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr
