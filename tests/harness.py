"""Real processes for end-to-end tests: the simulator, the bridge, consumers; free ports; polling."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import zmq

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def until(condition: Callable[[], object], timeout: float = 8.0) -> bool:
    """Poll `condition` until it holds (True) or `timeout` passes (False): for asserting with a message."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


class Process:
    """A child process whose output goes to a file, so it can never block on a full pipe. It leads its own
    process group, and stopping it stops the group: what it started (a traced bridge under strace, the
    demo's bridge and printer) cannot outlive the test."""

    def __init__(
        self,
        name: str,
        args: list[str],
        workdir: Path,
        program: str = sys.executable,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(
            [program, *args], cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # whatever it started and left behind
        self._log.close()


def _port_taken(proc: Process) -> bool:
    """The process died because a port picked as free was taken meanwhile (free_port() can only guess)."""
    return proc.proc.poll() is not None and "already in use" in proc.output


class Simulator(Process):
    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        rate: float = 20,
        journal: Path | None = None,
        bar_seconds: float = 5,
        extra: list[str] | None = None,
    ) -> None:
        self.journal = journal or workdir / "journal.jsonl"
        for _ in range(3):  # another process may take a port between free_port() and the bind
            self.port = port or free_port()
            self.control_port = free_port()
            args = ["-m", "bridge.simulator", "--port", str(self.port), "--rate", str(rate), "--journal",
                    str(self.journal), "--bar-seconds", str(bar_seconds), "--control", str(self.control_port),
                    *(extra or [])]  # fmt: skip
            super().__init__(f"simulator-{self.port}", args, workdir)
            wait_for(lambda: self.proc.poll() is not None or self._serving(), 10, "the simulator")
            if not _port_taken(self) or port is not None:
                break
            self._log.close()
        assert self.proc.poll() is None, f"the simulator did not start:\n{self.output[-2000:]}"

    def _serving(self) -> bool:
        return self._listening(self.port) and self._listening(self.control_port)

    @staticmethod
    def _listening(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                return sock.getsockname()[1] != port  # not a TCP self-connect to a port nobody listens on
        except OSError:
            return False

    def fault(self, name: str, **args: Any) -> None:
        """Inject a fault through the simulator's control port (docs/simulator.md, Faults)."""
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=5) as sock:
            sock.sendall(json.dumps({"fault": name, "args": args}).encode() + b"\n")
            answer = json.loads(sock.makefile("rb").readline() or b"{}")
        assert answer.get("ok"), f"fault {name} refused: {answer}"

    def journal_rows(self) -> list[dict[str, Any]]:
        if not self.journal.exists():
            return []
        return [json.loads(line) for line in self.journal.read_text().splitlines() if line.strip()]

    def requests(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Journal rows of requests (faults left out), of one kind if given."""
        rows = [r for r in self.journal_rows() if "request" in r]
        return [r for r in rows if kind is None or r["request"] == kind]


class Bridge(Process):
    def __init__(self, workdir: Path, tws_port: int, extra: list[str] | None = None, wait_ready: bool = True) -> None:
        self.ctx = zmq.Context()
        for _ in range(3):  # another process may take a port between free_port() and the bind
            self.pub = f"tcp://127.0.0.1:{free_port()}"
            self.rep = f"tcp://127.0.0.1:{free_port()}"
            self.metrics_port = free_port()
            args = ["-m", "bridge", "--tws-port", str(tws_port), "--pub", self.pub, "--rep", self.rep]
            args += ["--metrics", f"127.0.0.1:{self.metrics_port}", *(extra or [])]
            super().__init__(f"bridge-{self.metrics_port}", args, workdir)
            wait_for(lambda: self.proc.poll() is not None or self.request({"op": "ping"}, timeout=0.5), 15,
                     "bridge serving requests")  # fmt: skip
            if not _port_taken(self):
                break
            self._log.close()
        assert self.proc.poll() is None, f"the bridge did not start:\n{self.output[-2000:]}"
        if not wait_ready:
            return
        wait_for(lambda: self.request({"op": "status"}, timeout=0.5).get("tws", {}).get("connected"), 30, "bridge up")

    def request(self, body: dict[str, Any] | bytes, timeout: float = 5.0) -> dict[str, Any]:
        """One REQ round trip on a fresh socket (so a timeout never wedges the next call)."""
        sock = self.ctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
        sock.connect(self.rep)
        try:
            sock.send(body if isinstance(body, bytes) else msgpack.packb(body))
            return msgpack.unpackb(sock.recv())
        except zmq.Again:
            return {}
        finally:
            sock.close()

    def subscriber(self, *topics: str) -> zmq.Socket:
        sock = self.ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, 5000)
        sock.connect(self.pub)
        for topic in topics:
            sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
        return sock

    def metrics(self) -> dict[str, float]:
        return scrape(self.metrics_port)

    def stop(self) -> None:
        super().stop()
        self.ctx.destroy(linger=0)


def scrape(port: int) -> dict[str, float]:
    """The bridge's own series (twsbridge_*) from its /metrics page, by name with labels."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("twsbridge_"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def recv(sock: zmq.Socket) -> tuple[str, dict[str, Any]]:
    topic, payload = sock.recv_multipart()
    return topic.decode(), msgpack.unpackb(payload)


@contextlib.contextmanager
def history_pair(workdir: Path, scale: float = 0.01) -> Iterator[tuple[Simulator, Bridge]]:
    """A simulator and a bridge with IB's historical pacing windows both scaled by `scale`, so the
    rules hold as TWS keeps them but a 10-minute window passes in seconds; both stopped after."""
    extra = ["--history-time-scale", str(scale)]
    sim = Simulator(workdir, extra=extra)
    try:
        bridge = Bridge(workdir, sim.port, extra=extra)
        try:
            yield sim, bridge
        finally:
            bridge.stop()
    finally:
        sim.stop()
