"""The shipped systemd unit: valid, hardened (exposure at most 2.0), optional settings, and the
readiness protocol it relies on (Type=notify, WatchdogSec) spoken by a real bridge process."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
import zmq

from bridge import sdnotify
from tests.harness import ROOT, Process, Simulator, free_port, wait_for

UNIT = ROOT / "deploy/systemd/tws-bridge.service"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="needs systemd-analyze (Debian package systemd; .ci/run installs it)"
)


def unit_lines() -> list[str]:
    return [line.strip() for line in UNIT.read_text().splitlines() if line.strip() and not line.startswith("#")]


@needs_analyze
def test_unit_verifies(tmp_path: Path) -> None:
    # verify checks that ExecStart exists: point it at this checkout's entry point.
    entry = Path(sys.executable).parent / "tws-bridge"
    assert entry.exists(), "pip install -e . provides the tws-bridge entry point"
    unit = tmp_path / "tws-bridge.service"
    unit.write_text(UNIT.read_text().replace("/opt/tws-bridge/venv/bin/tws-bridge", str(entry)))
    result = subprocess.run([ANALYZE or "", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tws-bridge.service" not in result.stderr, result.stderr


@needs_analyze
def test_unit_exposure_is_at_most_2() -> None:
    cmd = [ANALYZE or "", "security", "--offline=yes", "--threshold=20", "--no-pager", str(UNIT)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    score = re.search(r"Overall exposure level for tws-bridge\.service: (\d+\.\d)", result.stdout)
    assert score is not None, result.stdout + result.stderr
    assert float(score.group(1)) <= 2.0, result.stdout
    assert result.returncode == 0, result.stdout + result.stderr  # --threshold=20 is 2.0


def test_unit_needs_no_settings_file_and_is_ready_by_notify() -> None:
    lines = unit_lines()
    env_files = [line.split("=", 1)[1] for line in lines if line.startswith("EnvironmentFile=")]
    assert env_files == ["-/etc/tws-bridge/env"], "a missing settings file must not stop the unit"
    assert not any("TWSBRIDGE_CONFIG" in line for line in lines), "a named config file is required to exist"
    assert "Type=notify" in lines
    assert any(line.startswith("WatchdogSec=") for line in lines)
    assert "ExecStart=/opt/tws-bridge/venv/bin/tws-bridge" in lines  # where the README installs it


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify"
    sock.bind(str(path))
    sock.settimeout(20)
    saved = {k: os.environ.get(k) for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    os.environ["NOTIFY_SOCKET"] = str(path)
    os.environ["WATCHDOG_USEC"] = "400000"  # WATCHDOG=1 every 0.2 s
    os.environ.pop("WATCHDOG_PID", None)  # as systemd does for a child that is the main process
    try:
        yield sock
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        sock.close()


def test_bridge_tells_systemd_it_is_ready_when_serving_then_feeds_the_watchdog(
    tmp_path: Path, notify_socket: socket.socket
) -> None:
    sim = Simulator(tmp_path)
    rep, metrics = free_port(), free_port()
    args = ["-m", "bridge", "--tws-port", str(sim.port), "--pub", f"tcp://127.0.0.1:{free_port()}",
            "--rep", f"tcp://127.0.0.1:{rep}", "--metrics", f"127.0.0.1:{metrics}"]  # fmt: skip
    bridge = Process("bridge", args, tmp_path)  # inherits NOTIFY_SOCKET, as a child of systemd would
    try:
        assert notify_socket.recv(4096) == b"READY=1", bridge.output
        for port in (rep, metrics):  # at READY=1, not later: both already listen
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        beats = [notify_socket.recv(4096) for _ in range(3)]
        assert beats == [b"WATCHDOG=1"] * 3
    finally:
        bridge.stop()
        sim.stop()
    assert bridge.proc.returncode == 0, bridge.output


def test_notify_outside_systemd_does_nothing_and_a_gone_socket_is_not_fatal(tmp_path: Path) -> None:
    assert sdnotify.notify("READY=1", environ={}) is False
    assert sdnotify.notify("READY=1", environ={"NOTIFY_SOCKET": str(tmp_path / "gone")}) is False
    assert sdnotify.watchdog_seconds({}) is None
    assert sdnotify.watchdog_seconds({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None  # not ours
    assert sdnotify.watchdog_seconds({"WATCHDOG_USEC": "30000000"}) == 15.0


def test_notify_reaches_an_abstract_socket() -> None:
    name = f"tws-bridge-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert sdnotify.notify("READY=1", environ={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(64) == b"READY=1"


def test_a_config_file_named_but_missing_is_a_one_line_error(tmp_path: Path) -> None:
    """Decided: the unit names no config file (its settings file is optional, systemd skips it);
    a file the user does name must exist, so a typo in its path is not silently ignored."""
    missing = tmp_path / "bridge.toml"
    result = subprocess.run([sys.executable, "-m", "bridge"], env={**os.environ, "TWSBRIDGE_CONFIG": str(missing)},
                            capture_output=True, text=True, timeout=30)  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [f"tws-bridge: cannot read config file {missing}: "
                                                  f"[Errno 2] No such file or directory: '{missing}'"]  # fmt: skip


def filter_set(analyze: str, group: str) -> set[str]:
    """A systemd syscall group (@system-service, ...) expanded to syscall names."""
    out = subprocess.run([analyze, "syscall-filter", group], capture_output=True, text=True, timeout=30).stdout
    names: set[str] = set()
    for line in out.splitlines()[1:]:
        entry = line.strip()
        if entry and not entry.startswith("#"):
            names |= filter_set(analyze, entry) if entry.startswith("@") else {entry}
    return names


@needs_analyze
@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace to record the bridge's system calls")
def test_the_bridge_stays_within_the_units_sandbox(tmp_path: Path) -> None:
    """No systemd runs here, so the sandbox is checked from the other side: every system call, socket
    family and memory mapping of a bridge at work is one the unit allows (a denied one kills it)."""
    trace = tmp_path / "trace"
    pub, rep, metrics = free_port(), free_port(), free_port()
    endpoints = ["--pub", f"tcp://127.0.0.1:{pub}", "--rep", f"tcp://127.0.0.1:{rep}"]
    endpoints += ["--metrics", f"127.0.0.1:{metrics}"]
    args = ["-f", "-qq", "-o", str(trace), sys.executable, "-m", "bridge", "--simulate", *endpoints]
    proc = Process("strace", args, tmp_path, program=shutil.which("strace") or "strace")
    ctx = zmq.Context()
    try:
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.RCVTIMEO, 30_000)
        sub.connect(f"tcp://127.0.0.1:{pub}")
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        req = ctx.socket(zmq.REQ)
        req.setsockopt(zmq.RCVTIMEO, 30_000)
        req.connect(f"tcp://127.0.0.1:{rep}")

        def ask(body: dict[str, object]) -> dict[str, object]:
            req.send(msgpack.packb(body))
            return msgpack.unpackb(req.recv())

        # strace slows the bridge several-fold: its simulator may take a while to accept it
        wait_for(lambda: ask({"op": "status"})["tws"]["connected"], 60, "the traced bridge connected to TWS")
        reply = ask({"op": "subscribe", "instrument": "AAPL"})
        assert reply["ok"], reply
        sub.recv_multipart()  # data flows
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=10) as r:
            assert b"process_open_fds" in r.read()
        children = Path(f"/proc/{proc.proc.pid}/task/{proc.proc.pid}/children").read_text().split()
        os.kill(int(children[0]), signal.SIGTERM)  # the bridge, as systemd would stop it
        assert proc.wait(30) == 0, proc.output
    finally:
        ctx.destroy(linger=0)
        proc.stop()
    text = trace.read_text()
    lines = unit_lines()
    analyze = ANALYZE or ""
    allowed: set[str] = set()
    for entry in (line.split("=", 1)[1] for line in lines if line.startswith("SystemCallFilter=")):
        groups = set().union(*(filter_set(analyze, g) if g.startswith("@") else {g} for g in entry.lstrip("~").split()))
        allowed = allowed - groups if entry.startswith("~") else allowed | groups
    used = set(re.findall(r"^\d+ +(\w+)\(", text, re.M))
    assert len(used) > 30
    assert used - allowed == set()
    families = next(line.split("=", 1)[1].split() for line in lines if line.startswith("RestrictAddressFamilies="))
    assert set(re.findall(r"\bsocket\((AF_\w+)", text)) <= set(families)
    assert "MemoryDenyWriteExecute=yes" in lines
    assert not re.search(r"PROT_WRITE\|PROT_EXEC|PROT_EXEC\|PROT_WRITE", text)


def test_readme_install_matches_the_unit() -> None:
    """The README's install block creates what the unit names: the venv's entry point, the user,
    the unit's place, and the optional settings file."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("### With systemd", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    lines = unit_lines()
    exec_start = next(line.split("=", 1)[1] for line in lines if line.startswith("ExecStart="))
    venv = exec_start.removesuffix("/bin/tws-bridge")
    assert f"python3 -m venv {venv}\n" in block
    assert f"{venv}/bin/pip install /path/to/tws-bridge " in block, "installs this checkout, not a package name"
    user = next(line.split("=", 1)[1] for line in lines if line.startswith("User="))
    assert re.search(rf"^useradd --system .* {user}$", block, re.M)
    assert "deploy/systemd/tws-bridge.service /etc/systemd/system/" in block
    assert "> /etc/tws-bridge/env" in block and "EnvironmentFile=-/etc/tws-bridge/env" in lines
    assert "systemctl enable --now tws-bridge" in block
    assert "pip install tws-bridge" not in readme + UNIT.read_text()
