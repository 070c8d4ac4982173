"""`python -m bridge.healthcheck` (the image's HEALTHCHECK), against real bridge processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bridge.healthcheck import local_endpoint
from tests.harness import Bridge, free_port


def healthcheck(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.healthcheck", *args], capture_output=True, text=True, timeout=30
    )


def test_healthy_when_the_bridge_answers_and_tws_is_connected(bridge: Bridge) -> None:
    result = healthcheck("--rep", bridge.rep)
    assert result.returncode == 0, result.stderr
    assert "TWS is connected" in result.stdout


def test_unhealthy_in_one_line_when_nothing_answers() -> None:
    result = healthcheck("--rep", f"tcp://127.0.0.1:{free_port()}", "--timeout", "0.5")
    assert result.returncode == 1
    assert result.stderr.startswith("unhealthy: no reply from the bridge")
    assert len(result.stderr.strip().splitlines()) == 1


def test_bridge_up_without_tws_is_unhealthy_unless_bridge_only_is_asked(tmp_path: Path) -> None:
    bridge = Bridge(tmp_path, free_port(), wait_ready=False)  # nothing listens on its TWS port
    try:
        result = healthcheck("--rep", bridge.rep)
        assert result.returncode == 1
        assert "TWS not connected" in result.stderr
        assert healthcheck("--rep", bridge.rep, "--bridge-only").returncode == 0
    finally:
        bridge.stop()


def test_the_environment_endpoint_is_used_and_a_wildcard_bind_is_reached_on_loopback(bridge: Bridge) -> None:
    port = bridge.rep.rpartition(":")[2]
    env_rep = f"tcp://0.0.0.0:{port}"  # what the image sets TWSBRIDGE_REP to
    result = subprocess.run(
        [sys.executable, "-m", "bridge.healthcheck"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"TWSBRIDGE_REP": env_rep, "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert local_endpoint("tcp://*:5556") == "tcp://127.0.0.1:5556"
    assert local_endpoint("tcp://10.0.0.5:5556") == "tcp://10.0.0.5:5556"
    assert local_endpoint("ipc:///run/bridge.sock") == "ipc:///run/bridge.sock"
