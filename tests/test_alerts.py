"""The shipped alert rules are valid and fire when they should (promtool's rule unit tests)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.harness import ROOT

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="needs promtool (Debian package prometheus; .ci/run installs it)"
)
RULES = ROOT / "deploy/prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL or "promtool", *args], cwd=RULES, capture_output=True, text=True, timeout=60)


def test_alert_rules_are_valid() -> None:
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_pass_their_unit_tests() -> None:
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_that_expects_it_to_fire() -> None:
    alerts = set(re.findall(r"^\s+- alert: (\w+)$", (RULES / "alerts.yml").read_text(), re.M))
    # Cases that expect no alert are written on one line ({alertname: X, ..., exp_alerts: []});
    # a case written as a block lists the alerts it expects.
    block = r"^\s+- alertname: (\w+)\n.*\n\s+exp_alerts:\n\s+- exp_labels"
    firing = set(re.findall(block, (RULES / "alerts_test.yml").read_text(), re.M))
    assert alerts - firing == set()
    assert {"TwsBridgeDown", "TwsBridgeTwsDown", "TwsBridgeNoData", "TwsBridgeReconnectStorm",
            "TwsBridgeRequestsRefused", "TwsBridgeBadRequests"} <= alerts  # fmt: skip
