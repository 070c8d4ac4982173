"""The soak's short day (bench/soak.py --short): every fault of a trading day, and nothing lost unmarked."""

from __future__ import annotations

import subprocess
import sys

from tests.harness import ROOT


def test_a_short_trading_day_loses_nothing_outside_marked_windows() -> None:
    run = subprocess.run(
        [sys.executable, "bench/soak.py", "--short"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    lines = run.stdout.strip().splitlines()
    assert lines and lines[-1] == "lost outside marked windows: 0", run.stdout[-3000:] + run.stderr[-2000:]
    assert run.returncode == 0, run.stdout[-3000:]
    assert "never back: 0" in run.stdout
