"""Shared fixtures: a simulator process and a bridge process in front of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Bridge, Simulator


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    s = Simulator(tmp_path, rate=20, bar_seconds=0.2)
    yield s
    s.stop()


@pytest.fixture
def bridge(tmp_path: Path, sim: Simulator) -> Iterator[Bridge]:
    b = Bridge(tmp_path, sim.port)
    yield b
    b.stop()
