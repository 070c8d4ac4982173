"""The C consumer in examples/c, written from docs/bus.md alone, against a real bridge.

It is compiled here with the line in examples/c/README.md; the test skips only when there is no C
compiler or the libzmq / msgpack-c headers are missing (.ci/run installs them).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
import zmq

from tests.harness import ROOT, Bridge, free_port, wait_for

SOURCE = ROOT / "examples" / "c" / "bus_printer.c"
CFLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-O2"]
# Debian's libmsgpack-dev (msgpack-c 4) ships libmsgpackc; msgpack-c 6 renamed it libmsgpack-c.
MSGPACK_LIBS = ["-lmsgpackc", "-lmsgpack-c"]
DATA_LINE = re.compile(r"^(quote/\S+) (\S+) seq=(\d+)")


@pytest.fixture(scope="module")
def bus_printer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (cc) on PATH")
    exe = tmp_path_factory.mktemp("c") / "bus_printer"
    errors = []
    for lib in MSGPACK_LIBS:
        cmd = [cc, *CFLAGS, str(SOURCE), "-o", str(exe), "-lzmq", lib]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if done.returncode == 0:
            return exe
        errors.append(done.stderr)
        if re.search(r"(zmq|msgpack)\.h: No such file", done.stderr):
            pytest.skip("libzmq3-dev / libmsgpack-dev headers missing (.ci/run installs them)")
    pytest.fail("bus_printer.c does not compile cleanly:\n" + "\n".join(errors))


@pytest.fixture(scope="module", autouse=True)
def no_bridge(bus_printer: Path) -> Iterator[tuple[subprocess.Popen[str], float]]:
    """bus_printer against an endpoint nobody serves, started first: its 8 s request timeout then
    runs while the other tests do, and test_no_bridge_times_out_with_exit_1 (last) collects it."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    cmd = [str(bus_printer), "--rep", endpoint, "--pub", endpoint, "AAPL"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield proc, time.monotonic()
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


def run(exe: Path, *args: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout)


def test_streams_both_instruments_then_unsubscribes(bus_printer: Path, bridge: Bridge) -> None:
    done = run(bus_printer, "--rep", bridge.rep, "--pub", bridge.pub, "--count", "30", "BTC.CRYPTO", "AAPL")
    assert done.returncode == 0, done.stderr
    lines = [m for m in map(DATA_LINE.match, done.stdout.splitlines()) if m]
    assert len(lines) >= 30, done.stdout
    topics = {m.group(1) for m in lines}
    assert topics == {"quote/BTC.CRYPTO.PAXOS.USD", "quote/AAPL.STK.SMART.USD"}, done.stdout
    seqs: dict[str, list[int]] = {}
    for m in lines:
        seqs.setdefault(m.group(1), []).append(int(m.group(3)))
    assert all(s == sorted(s) and len(set(s)) == len(s) for s in seqs.values()), seqs
    for topic in topics:
        prices = re.findall(rf"^{re.escape(topic)} tick_price seq=\d+ tick=\w+ price=(\S+)", done.stdout, re.M)
        assert prices and all(float(p) > 0 for p in prices), (topic, done.stdout)
    assert bridge.request({"op": "list"})["subscriptions"] == []


def test_unknown_instrument_is_a_clear_error(bus_printer: Path, bridge: Bridge) -> None:
    done = run(bus_printer, "--rep", bridge.rep, "--pub", bridge.pub, "--count", "5", "NOSUCH")
    assert done.returncode == 1
    assert "unknown_instrument" in done.stderr and "200" in done.stderr, done.stderr
    assert done.stdout == ""


def test_renews_lease_and_unsubscribes_on_sigterm(bus_printer: Path, bridge: Bridge, tmp_path: Path) -> None:
    out = (tmp_path / "printer.out").open("w+")
    proc = subprocess.Popen(
        [str(bus_printer), "--rep", bridge.rep, "--pub", bridge.pub, "--lease", "2", "EUR.CASH"],
        stdout=out,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: bridge.request({"op": "list"}).get("subscriptions"), 5, "the subscription")
        time.sleep(3.2)  # past the 2 s lease: only the renewals every 2/3 s keep it alive
        assert proc.poll() is None
        assert len(bridge.request({"op": "list"})["subscriptions"]) == 1
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "no longer knows" not in err, err
    out.seek(0)
    assert sum(1 for line in out if line.startswith("quote/EUR.CASH.IDEALPRO.USD ")) > 5
    assert bridge.request({"op": "list"})["subscriptions"] == []


class FakeBridge:
    """A request socket and a data socket that answer and publish badly typed things."""

    TOPIC = b"quote/FAKE.STK.SMART.USD"

    def __init__(self) -> None:
        self.ctx = zmq.Context()
        self.rep = f"tcp://127.0.0.1:{free_port()}"
        self.pub = f"tcp://127.0.0.1:{free_port()}"
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.bind(self.rep)
        self.publisher = self.ctx.socket(zmq.PUB)
        self.publisher.bind(self.pub)
        self.requests: list[object] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        odd: list[list[bytes]] = [
            [self.TOPIC, b"\xc1not msgpack"],
            [self.TOPIC, msgpack.packb([1, 2, 3])],
            [self.TOPIC, msgpack.packb({"seq": 1})[:-1]],  # truncated
            [self.TOPIC],  # one frame
            [self.TOPIC, msgpack.packb({"seq": 2, "event": "x"}), b"extra frame"],
            [self.TOPIC + b"/delayed", msgpack.packb({"seq": 99, "event": "tick_price", "price": 1.0})],
            [self.TOPIC, msgpack.packb({"seq": "3", "event": 7, "price": [1], "size": {"a": 1}, 5: 6})],
            [self.TOPIC, msgpack.packb({"seq": 6, "event": "tick_price", "tick": None, "price": None, "size": -2})],
            [self.TOPIC, msgpack.packb({"seq": 2**64 - 1, "event": "tick_string", "value": "a\nb"})],
            [self.TOPIC, msgpack.packb({})],
        ]
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        while not self.stopping.is_set():
            if poller.poll(10):
                *envelope, body = self.router.recv_multipart()
                try:
                    request = msgpack.unpackb(body)
                except Exception:
                    request = None
                self.requests.append(request)
                op = request.get("op") if isinstance(request, dict) else None
                if op == "subscribe":
                    reply = {"ok": True, "id": "fake-id", "topic": self.TOPIC.decode(), "lease": "x", "seq": "y"}
                    reply["latest"] = 5
                else:
                    reply = {"ok": True}
                self.router.send_multipart([*envelope, msgpack.packb(reply)])
            for frames in odd:
                self.publisher.send_multipart(frames)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.ctx.destroy(linger=0)


@pytest.fixture
def fake_bridge() -> Iterator[FakeBridge]:
    fake = FakeBridge()
    yield fake
    fake.close()


def test_survives_odd_replies_and_payloads(bus_printer: Path, fake_bridge: FakeBridge) -> None:
    done = run(bus_printer, "--rep", fake_bridge.rep, "--pub", fake_bridge.pub, "--count", "12", "FAKE")
    assert done.returncode == 0, (done.returncode, done.stderr)
    lines = [line for line in done.stdout.splitlines() if line.startswith("quote/")]
    assert len(lines) == 12
    assert all(line.split(" ")[0] == FakeBridge.TOPIC.decode() for line in lines)  # not the /delayed one
    assert "tick_price seq=6 tick=- price=- size=-2" in done.stdout
    assert "value=a\\x0ab" in done.stdout
    assert {"op": "unsubscribe", "id": "fake-id"} in fake_bridge.requests


def test_no_bridge_times_out_with_exit_1(no_bridge: tuple[subprocess.Popen[str], float]) -> None:
    proc, start = no_bridge
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 1
    assert "no reply from the bridge" in err, err
    assert time.monotonic() - start > 7.5  # it waited the documented 8 s
