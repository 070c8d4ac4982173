"""Shared fixtures (a simulator process, a bridge process in front of it) and test settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.harness import Bridge, Simulator

# No per-example deadline: on a loaded 2-core CI machine a pause is not a bug.
settings.register_profile("tws-bridge", deadline=None)
settings.load_profile("tws-bridge")


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
