"""CURVE on the bus (docs/bus.md, Security): allowed keys get in, strangers and plaintext get nothing.

Real processes throughout: the simulator, a bridge with CURVE on over TCP, key files written by
`python -m bridge.keys`, consumers on the sample client and the printer.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
import zmq

from consumers.client import BridgeTimeout, BusClient
from tests.harness import ROOT, Process, Simulator, free_port, scrape, wait_for


class CurvedBridge(Process):
    def __init__(self, workdir: Path, tws_port: int, keys: Path, allowed: Path) -> None:
        self.pub = f"tcp://127.0.0.1:{free_port()}"
        self.rep = f"tcp://127.0.0.1:{free_port()}"
        self.metrics_port = free_port()
        super().__init__(
            "curved-bridge",
            ["-m", "bridge", "--tws-port", str(tws_port), "--pub", self.pub, "--rep", self.rep, "--metrics",
             f"127.0.0.1:{self.metrics_port}", "--curve-secret-key", str(keys / "bridge.key_secret"),
             "--curve-clients", str(allowed)],
            workdir,
        )  # fmt: skip
        self.keys = keys

    def client(self, name: str, timeout: float = 5.0) -> BusClient:
        return BusClient(self.pub, self.rep, timeout=timeout, server_key=self.keys / "bridge.key",
                         client_key=self.keys / f"{name}.key_secret")  # fmt: skip

    def failures(self) -> dict[str, float]:
        return {k: v for k, v in scrape(self.metrics_port).items() if k.startswith("twsbridge_bus_handshake")}


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    keys, allowed = tmp_path / "keys", tmp_path / "allowed"
    made = subprocess.run([sys.executable, "-m", "bridge.keys", str(keys), "bridge", "alice", "mallory"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert (keys / "alice.key_secret").stat().st_mode & 0o077 == 0, "secret keys are private to their owner"
    allowed.mkdir()
    shutil.copy(keys / "alice.key", allowed)  # only alice's public key is let in
    return keys, allowed


@pytest.fixture
def curved(tmp_path: Path, sim: Simulator, keys: tuple[Path, Path]) -> Iterator[CurvedBridge]:
    bridge = CurvedBridge(tmp_path, sim.port, *keys)
    alice = bridge.client("alice", timeout=1)
    try:
        wait_for(lambda: _connected(alice), 30, "the bridge up, answering alice")
        yield bridge
    finally:
        alice.close()
        bridge.stop()


def _connected(bus: BusClient) -> bool:
    try:
        return bool(bus.status()["tws"]["connected"])
    except BridgeTimeout:
        return False


def test_an_allowed_consumer_subscribes_and_gets_ticks(curved: CurvedBridge) -> None:
    with curved.client("alice") as bus:
        sub = bus.subscribe("BTC.CRYPTO")
        msg = bus.recv(timeout=10)
        assert msg is not None and msg.topic == sub.topic


def test_an_unknown_key_gets_nothing_on_either_socket_and_is_counted(curved: CurvedBridge) -> None:
    with curved.client("alice") as alice, curved.client("mallory", timeout=2) as mallory:
        with pytest.raises(BridgeTimeout):
            mallory.request({"op": "ping"})
        alice.subscribe("BTC.CRYPTO")  # the line exists: there is something to see
        mallory.listen("")
        assert alice.recv(timeout=10) is not None
        assert mallory.recv(timeout=2) is None, "a stranger's SUB socket got data"
    refused = {k: v for k, v in curved.failures().items() if v}
    wait_for(
        lambda: _refused(curved, "rep", "auth") and _refused(curved, "pub", "auth"), 10, "refusals on both sockets"
    )
    assert all('reason="auth"' in k for k in refused), refused


def test_a_plaintext_consumer_gets_nothing(curved: CurvedBridge) -> None:
    ctx = zmq.Context()
    try:
        req = ctx.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.connect(curved.rep)
        req.send(msgpack.packb({"op": "ping"}))
        assert not req.poll(2000), "a plaintext client got a reply"
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.connect(curved.pub)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        assert not sub.poll(2000), "a plaintext subscriber got data"
    finally:
        ctx.destroy(linger=0)
    # ZeroMQ reports a plaintext peer as a protocol failure, at times without detail ("other").
    both = ("protocol", "other")
    wait_for(lambda: _refused(curved, "rep", *both) and _refused(curved, "pub", *both), 10, "refusals on both")


def _refused(bridge: CurvedBridge, socket: str, *reasons: str) -> float:
    wanted = {f'twsbridge_bus_handshake_failures_total{{reason="{r}",socket="{socket}"}}' for r in reasons}
    return sum(v for k, v in bridge.failures().items() if k in wanted)


def _printer(bridge: CurvedBridge, client_key: str, count: int) -> subprocess.CompletedProcess[str]:
    """The sample printer against the CURVE bridge, with the bridge's public key and `client_key`."""
    keys = bridge.keys
    return subprocess.run(
        [sys.executable, "-m", "consumers.printer", "BTC.CRYPTO", "--count", str(count), "--pub", bridge.pub,
         "--rep", bridge.rep, "--server-key", str(keys / "bridge.key"), "--client-key", str(keys / client_key)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_the_printer_takes_the_keys(curved: CurvedBridge) -> None:
    run = _printer(curved, "alice.key_secret", 3)
    assert run.returncode == 0, run.stderr
    assert "BTC.CRYPTO" in run.stdout


def test_a_public_key_file_in_place_of_a_secret_one_is_a_clear_error(curved: CurvedBridge) -> None:
    run = _printer(curved, "alice.key", 1)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "public key only" in run.stderr


def test_a_non_loopback_bind_needs_curve_or_an_explicit_flag(tmp_path: Path, sim: Simulator) -> None:
    args = [sys.executable, "-m", "bridge", "--tws-port", str(sim.port), "--pub", f"tcp://0.0.0.0:{free_port()}",
            "--rep", f"tcp://127.0.0.1:{free_port()}", "--metrics", ""]  # fmt: skip
    refused = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "can be reached from other hosts" in refused.stderr and "--allow-plaintext-remote" in refused.stderr
    allowed = Process("plain-remote", [*args[1:], "--allow-plaintext-remote"], tmp_path)
    try:
        wait_for(lambda: "without CURVE" in allowed.output, 15, "the warning")
        time.sleep(0.5)
        assert allowed.proc.poll() is None, "the bridge runs when asked to"
    finally:
        allowed.stop()


def test_the_healthcheck_takes_a_client_key_and_says_what_it_lacks(curved: CurvedBridge) -> None:
    """The Docker HEALTHCHECK with CURVE on: healthy with an allowed key from the environment, and
    without one an unhealthy line that names the missing settings."""

    def health(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "bridge.healthcheck", "--rep", curved.rep, "--timeout", "1"]
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=30, env={**os.environ, **env})

    keyed = health({"TWSBRIDGE_SERVER_KEY": str(curved.keys / "bridge.key"),
                    "TWSBRIDGE_CLIENT_KEY": str(curved.keys / "alice.key_secret")})  # fmt: skip
    assert keyed.returncode == 0 and keyed.stdout.startswith("healthy"), keyed.stdout + keyed.stderr
    bare = health({})
    assert bare.returncode == 1
    assert bare.stderr.strip().endswith("needs TWSBRIDGE_SERVER_KEY and TWSBRIDGE_CLIENT_KEY)"), bare.stderr
