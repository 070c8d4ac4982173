"""Shared fixtures (a simulator process, a bridge process in front of it) and test settings."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.harness import Bridge, Simulator

# No per-example deadline: on a loaded 2-core CI machine a pause is not a bug.
settings.register_profile("tws-bridge", deadline=None)
settings.load_profile("tws-bridge")


PR_SET_CHILD_SUBREAPER = 36


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *_descendants(child)]
    return found


def _alive(pid: int) -> str | None:
    """The command line of a running (not zombie) process, None when it is gone or a zombie."""
    try:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return None
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except (OSError, IndexError):
        return None


@pytest.fixture(scope="session", autouse=True)
def no_process_outlives_the_suite() -> Iterator[None]:
    """A process a test started and lost (a bridge orphaned when its tracer died) would keep running after
    the suite, holding ports and keeping CI waiting. The suite adopts orphans (a child subreaper) and at
    the end kills whatever is left and fails, naming it."""
    libc = ctypes.CDLL(None, use_errno=True)
    adopting = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    yield
    if not adopting:
        return
    left = {pid: cmd for pid in _descendants(os.getpid()) if (cmd := _alive(pid))}
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"processes outlived the tests that started them (killed now): {left}"


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
