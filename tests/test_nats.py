"""The NATS relay with a real nats-server (JetStream): remote consumers get what local ones get.

Real processes: the simulator, the bridge, `python -m bridge.relay`, `nats-server -js`; the test
process is the remote consumer, on nats-py only (no ZeroMQ), next to a local ZeroMQ consumer.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

from bridge.subjects import REQUEST_SUBJECT, subject
from tests.harness import Bridge, Process, free_port, recv, scrape, wait_for

nats = pytest.importorskip("nats", reason="nats-py is not installed (pip install -e '.[test]')")
NATS_SERVER = shutil.which("nats-server")
pytestmark = pytest.mark.skipif(
    NATS_SERVER is None, reason="nats-server is not installed (Debian: apt-get install nats-server; .ci/run does)"
)


class NatsServer(Process):
    def __init__(self, workdir: Path, port: int | None = None, extra: list[str] | None = None) -> None:
        self.port = port or free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        store = workdir / "jetstream"
        args = ["-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(store), *(extra or [])]
        super().__init__(f"nats-{self.port}", args, workdir, program=str(NATS_SERVER))
        wait_for(lambda: "Server is ready" in self.output, 15, "nats-server ready")


class Relay(Process):
    def __init__(
        self, workdir: Path, bridge: Bridge, url: str, name: str = "relay", env: dict[str, str] | None = None
    ) -> None:
        self.metrics_port = free_port()
        super().__init__(name, ["-m", "bridge.relay", "--nats", url, "--pub", bridge.pub, "--rep", bridge.rep,
                                "--metrics", f"127.0.0.1:{self.metrics_port}"], workdir, env=env)  # fmt: skip
        wait_for(lambda: "relaying" in self.output, 15, "the relay up")

    def metrics(self) -> dict[str, float]:
        return scrape(self.metrics_port)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NatsServer]:
    s = NatsServer(tmp_path)
    yield s
    s.stop()


@pytest.fixture
def relay(tmp_path: Path, bridge: Bridge, server: NatsServer) -> Iterator[Relay]:
    r = Relay(tmp_path, bridge, server.url)
    yield r
    r.stop()


async def _request(nc: Any, body: bytes) -> dict[str, Any]:
    return msgpack.unpackb((await nc.request(REQUEST_SUBJECT, body, timeout=10)).data)


async def stored_seqs(url: str, subject_: str) -> list[int]:
    """The bus seqs of the messages the stream holds for `subject_` now, in stream order (data keeps
    coming meanwhile: reading stops at the stream's end as it was when asked)."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    end = (await js.stream_info("TWSBRIDGE")).state.last_seq
    psub = await js.pull_subscribe(subject_)
    seqs: list[int] = []
    try:
        while True:
            for m in await psub.fetch(500, timeout=2):
                if m.metadata.sequence.stream > end:
                    raise StopAsyncIteration
                seqs.append(int(m.headers["Twsbridge-Seq"]))
    except (nats.errors.TimeoutError, StopAsyncIteration):
        pass
    await nc.close()
    return seqs


def test_a_nats_consumer_subscribes_and_gets_what_a_zeromq_consumer_gets(
    bridge: Bridge, server: NatsServer, relay: Relay
) -> None:
    async def remote() -> tuple[dict[str, Any], list[tuple[int, bytes]]]:
        nc = await nats.connect(server.url)
        reply = await _request(nc, msgpack.packb({"op": "subscribe", "instrument": "BTC.CRYPTO", "lease": 60}))
        seen: list[tuple[int, bytes]] = []

        async def keep(msg: Any) -> None:
            assert msg.headers["Twsbridge-Topic"] == reply["topic"]
            seen.append((int(msg.headers["Twsbridge-Seq"]), msg.data))

        sub = await nc.subscribe(subject(reply["topic"]), cb=keep)
        await asyncio.sleep(3)
        await sub.unsubscribe()
        await nc.close()
        return reply, seen

    local = bridge.subscriber("quote/BTC.CRYPTO")
    reply, seen = asyncio.run(remote())
    assert reply["ok"] and reply["topic"] == "quote/BTC.CRYPTO.PAXOS.USD", reply
    assert len(seen) > 20, "ticks over NATS"
    by_seq: dict[int, bytes] = {}
    while len(by_seq) < 2000:
        try:
            _, payload = local.recv_multipart()
        except Exception:
            break
        by_seq[msgpack.unpackb(payload)["seq"]] = payload
        if max(by_seq) >= seen[-1][0]:
            break
    common = [(seq, body) for seq, body in seen if seq in by_seq]
    assert len(common) > 20 and all(by_seq[seq] == body for seq, body in common), "same payloads, same seqs"
    seqs = [seq for seq, _ in seen]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "nothing lost or reordered over NATS"


def test_a_late_joiner_gets_the_last_values_from_the_stream(bridge: Bridge, server: NatsServer, relay: Relay) -> None:
    assert bridge.request({"op": "subscribe", "instrument": "ETH.CRYPTO", "lease": 60})["ok"]
    time.sleep(2)

    async def late() -> list[Any]:
        from nats.js.api import ConsumerConfig, DeliverPolicy

        nc = await nats.connect(server.url)
        js = nc.jetstream()
        psub = await js.pull_subscribe(
            "twsbridge.quote.>", config=ConsumerConfig(deliver_policy=DeliverPolicy.LAST_PER_SUBJECT)
        )
        msgs = await psub.fetch(10, timeout=5)
        await nc.close()
        return msgs

    msgs = asyncio.run(late())
    assert {m.subject for m in msgs} == {"twsbridge.quote.ETH-CRYPTO-PAXOS-USD"}
    first = msgpack.unpackb(msgs[0].data)
    assert first["instrument"] == "ETH.CRYPTO.PAXOS.USD" and first["seq"] > 5, "the picture: the latest message"
    seqs = [msgpack.unpackb(m.data)["seq"] for m in msgs]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "then live updates, stitched by seq"


def test_two_relays_store_each_message_once(tmp_path: Path, bridge: Bridge, server: NatsServer, relay: Relay) -> None:
    second = Relay(tmp_path, bridge, server.url, name="relay-2")
    subject = "twsbridge.quote.BTC-CRYPTO-PAXOS-USD"
    try:
        assert bridge.request({"op": "subscribe", "instrument": "BTC.CRYPTO", "lease": 60})["ok"]
        wait_for(lambda: second.metrics().get("twsbridge_relay_messages_total", 0) > 50, 15, "both relaying")
        # The relays' counts include state messages: wait for the quotes the assertion below counts.
        wait_for(lambda: len(asyncio.run(stored_seqs(server.url, subject))) > 50, 30, "50 quotes in the stream")
    finally:
        second.stop()

    seqs = asyncio.run(stored_seqs(server.url, subject))
    assert len(seqs) > 50 and len(seqs) == len(set(seqs)), "JetStream kept one copy of each message"


def test_nats_going_away_does_not_disturb_local_consumers(bridge: Bridge, server: NatsServer, relay: Relay) -> None:
    local = bridge.subscriber("quote/")
    assert bridge.request({"op": "subscribe", "instrument": "BTC.CRYPTO", "lease": 60})["ok"]
    recv(local)
    server.stop()
    wait_for(lambda: relay.metrics().get("twsbridge_relay_nats_connected") == 0, 15, "the relay sees NATS gone")
    seqs = []
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        seqs.append(recv(local)[1]["seq"])
    assert len(seqs) > 20 and seqs == list(range(seqs[0], seqs[0] + len(seqs))), "local data flows on, no gap"


def test_the_request_subject_refuses_garbage_like_the_request_socket(server: NatsServer, relay: Relay) -> None:
    async def ask() -> list[dict[str, Any]]:
        nc = await nats.connect(server.url)
        replies = [
            await _request(nc, body) for body in (b"\xff\x00 junk", msgpack.packb([1]), msgpack.packb({"op": "x"}))
        ]
        replies.append(await _request(nc, msgpack.packb({"op": "ping"})))
        await nc.close()
        return replies

    *bad, pong = asyncio.run(ask())
    assert [r["code"] for r in bad] == ["bad_request"] * 3
    assert pong["ok"] and "pong" in pong


def test_a_restarted_relay_carries_on_and_the_stream_keeps_what_it_had(
    tmp_path: Path, bridge: Bridge, server: NatsServer, relay: Relay
) -> None:
    assert bridge.request({"op": "subscribe", "instrument": "BTC.CRYPTO", "lease": 60})["ok"]
    wait_for(lambda: relay.metrics().get("twsbridge_relay_messages_total", 0) > 30, 15, "relaying")
    relay.stop()
    again = Relay(tmp_path, bridge, server.url, name="relay-again")
    try:
        wait_for(lambda: again.metrics().get("twsbridge_relay_messages_total", 0) > 30, 15, "relaying again")
        assert again.metrics()["twsbridge_relay_lag_seconds"] < 5
    finally:
        again.stop()

    seqs = asyncio.run(stored_seqs(server.url, "twsbridge.quote.BTC-CRYPTO-PAXOS-USD"))
    assert len(seqs) == len(set(seqs)) and seqs == sorted(seqs), "no duplicate, in order"
    assert seqs[0] == 1, "what the first relay stored is still there"
    gap = [b - a for a, b in itertools.pairwise(seqs) if b - a > 1]
    assert len(gap) <= 1, "one window while no relay ran, and none elsewhere"


# -- the remote consumer: consumers.nats_client and the sample consumers' --nats ---------------------

USER, PASSWORD = "research", "s3cret-but-not-really"


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server that wants a user and password, as one reachable from other hosts should."""
    s = NatsServer(tmp_path, extra=["--user", USER, "--pass", PASSWORD])
    yield s
    s.stop()


@pytest.fixture
def locked_relay(tmp_path: Path, bridge: Bridge, locked: NatsServer) -> Iterator[Relay]:
    env = {"TWSBRIDGE_NATS_USER": USER, "TWSBRIDGE_NATS_PASSWORD": PASSWORD}  # no secret on a command line
    r = Relay(tmp_path, bridge, locked.url, env=env)
    yield r
    r.stop()


def test_a_printer_given_only_the_nats_url_and_credentials_gets_ticks_and_leaves(
    tmp_path: Path, bridge: Bridge, locked: NatsServer, locked_relay: Relay
) -> None:
    args = ["-m", "consumers.printer", "BTC.CRYPTO", "--nats", locked.url, "--nats-user", USER, "--seconds", "4"]
    args += ["--pub", "tcp://127.0.0.1:1", "--rep", "tcp://127.0.0.1:1"]  # no ZeroMQ path to the bridge at all
    printer = Process("printer", args, tmp_path, env={"TWSBRIDGE_NATS_PASSWORD": PASSWORD})
    try:
        assert printer.wait(20) == 0, printer.output
    finally:
        printer.stop()
    lines = printer.output.splitlines()
    assert any("BTC.CRYPTO.PAXOS.USD latest" in line for line in lines), printer.output
    ticks = [line for line in lines if " BTC.CRYPTO.PAXOS.USD  " in line]
    assert len(ticks) > 10, printer.output
    held = [s for s in bridge.request({"op": "list"})["subscriptions"] if "BTC.CRYPTO" in s["topic"]]
    assert held == [], "the printer gave its lease back when leaving: no TWS line kept for nobody"


def test_wrong_nats_credentials_are_one_clear_line(tmp_path: Path, locked: NatsServer) -> None:
    args = ["-m", "consumers.printer", "AAPL", "--nats", locked.url, "--nats-user", USER, "--nats-password", "nope"]
    printer = Process("printer", args, tmp_path)
    assert printer.wait(20) == 1
    out = printer.output.strip().splitlines()
    assert len(out) == 1 and out[0].startswith(f"printer: cannot connect to NATS at {locked.url}: ")
    assert "uthorization" in out[0], "says the credentials were refused"
    assert "Traceback" not in printer.output


def test_the_nats_client_stitches_the_subscribe_picture_to_the_stream(
    bridge: Bridge, locked: NatsServer, locked_relay: Relay
) -> None:
    from consumers.nats_client import NatsBusClient

    with NatsBusClient(locked.url, user=USER, password=PASSWORD) as bus:
        sub = bus.subscribe("BTC.CRYPTO", lease=60)
        assert sub.topic == "quote/BTC.CRYPTO.PAXOS.USD" and sub.latest, "the bridge's picture, as over ZeroMQ"
        snapshot = sub.reply["seq"]
        got = [bus.recv(5) for _ in range(30)]
        assert all(m is not None for m in got)
        seqs = [m.payload["seq"] for m in got if m is not None]
        assert seqs == list(range(snapshot + 1, snapshot + 31)), "from just after the picture, nothing missed"
        assert bus.lost == 0
        assert bus.ping() > 0 and bus.status()["tws"]["connected"]


def test_a_nats_consumer_that_dies_stops_holding_the_line(
    bridge: Bridge, locked: NatsServer, locked_relay: Relay
) -> None:
    from consumers.nats_client import NatsBusClient

    bus = NatsBusClient(locked.url, user=USER, password=PASSWORD)
    sub = bus.subscribe("ETH.CRYPTO", lease=2)
    assert bus.recv(5) is not None
    bus.close(unsubscribe=False)  # gone without a word, as a killed process would be

    def held() -> bool:
        return any(s["topic"] == sub.topic for s in bridge.request({"op": "list"})["subscriptions"])

    assert held()
    wait_for(lambda: not held(), 10, "the lease to lapse and the bridge to drop the line")


# -- deploy/nats/nats.conf, the compose file's NATS: roles kept apart --------------------------------

DEPLOY_CONF = Path(__file__).resolve().parent.parent / "deploy" / "nats" / "nats.conf"
ROLES = {"TWSBRIDGE_NATS_RELAY_PASSWORD": "relay-pw-1", "TWSBRIDGE_NATS_CONSUMER_PASSWORD": "consumer-pw-2"}


class DeployedNats(NatsServer):
    """nats-server on the deployment's own config file, its ports and store moved for the test."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        text = DEPLOY_CONF.read_text()
        assert 'store_dir: "/data"' in text, "the container's store, moved here"
        conf = workdir / "nats.conf"
        conf.write_text(text.replace('store_dir: "/data"', f'store_dir: "{workdir / "js"}"'))
        args = ["-c", str(conf), "-p", str(self.port), "-m", str(free_port())]
        Process.__init__(self, "nats-deployed", args, workdir, program=str(NATS_SERVER), env=ROLES)
        wait_for(lambda: "Server is ready" in self.output, 15, "nats-server ready")


def test_the_deployment_config_lets_each_role_do_its_part_and_no_more(tmp_path: Path, bridge: Bridge) -> None:
    server = DeployedNats(tmp_path)
    relay_env = {"TWSBRIDGE_NATS_USER": "relay", "TWSBRIDGE_NATS_PASSWORD": ROLES["TWSBRIDGE_NATS_RELAY_PASSWORD"]}
    relay = Relay(tmp_path, bridge, server.url, env=relay_env)
    consumer = {"user": "consumer", "password": ROLES["TWSBRIDGE_NATS_CONSUMER_PASSWORD"]}
    try:
        from consumers.nats_client import NatsBusClient

        with NatsBusClient(server.url, **consumer) as bus:  # the consumer's whole path: request, stream, leave
            sub = bus.subscribe("BTC.CRYPTO", lease=30)
            assert all(bus.recv(5) is not None for _ in range(5)), "ticks through the stream with consumer rights"
            bus.unsubscribe(sub.id)

        async def forge() -> list[str]:
            errors: list[str] = []

            async def note(exc: Exception) -> None:
                errors.append(str(exc))

            nc = await nats.connect(server.url, error_cb=note, **consumer)
            await nc.publish("twsbridge.quote.BTC-CRYPTO-PAXOS-USD", msgpack.packb({"seq": 10**9, "bid": 0.01}))
            js = nc.jetstream(timeout=2)
            with pytest.raises(nats.errors.TimeoutError):  # the server drops the request, and says so
                await js.purge_stream("TWSBRIDGE")
            await nc.flush()
            await asyncio.sleep(0.5)
            await nc.close()
            return errors

        errors = asyncio.run(forge())
        refused = " ".join(errors).lower()  # nats-py lower-cases the server's -ERR text
        assert 'permissions violation for publish to "twsbridge.quote.' in refused, errors
        assert 'permissions violation for publish to "$js.api.stream.purge.twsbridge"' in refused, errors
        assert 10**9 not in asyncio.run(stored_seqs_as(server.url, "twsbridge.quote.BTC-CRYPTO-PAXOS-USD", consumer))
        assert "Permissions Violation" not in relay.output, "the relay's own rights are enough for its work"
    finally:
        relay.stop()
        server.stop()


async def stored_seqs_as(url: str, subject_: str, auth: dict[str, str]) -> list[int]:
    nc = await nats.connect(url, **auth)
    js = nc.jetstream()
    sub = await js.subscribe(subject_, stream="TWSBRIDGE", ordered_consumer=True)
    seqs: list[int] = []
    try:
        while True:
            seqs.append(msgpack.unpackb((await sub.next_msg(timeout=1)).data)["seq"])
    except nats.errors.TimeoutError:
        pass
    await nc.close()
    return seqs


def test_one_nats_client_flooding_lookups_does_not_queue_another_one_behind_it(
    bridge: Bridge, server: NatsServer, relay: Relay
) -> None:
    """Each NATS connection is its own peer at the bridge: one client pipelining 40 lookups (TWS takes
    them at 45 per 1.2 s) meets its own cap of 32 and queues behind itself, and another client's
    subscribe made just after is answered among the first, not after the flood."""
    order: list[str] = []

    async def flood_and_ask() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        flooder, other = await nats.connect(server.url), await nats.connect(server.url)
        bodies = [msgpack.packb({"op": "subscribe", "instrument": f"NOSUCH{i}"}) for i in range(40)]
        flood = [asyncio.ensure_future(_request(flooder, body)) for body in bodies]
        for f in flood:
            f.add_done_callback(lambda _: order.append("flood"))
        await asyncio.sleep(0.1)  # the flood is at the bridge first
        mine = await _request(other, msgpack.packb({"op": "subscribe", "instrument": "AAPL", "lease": 30}))
        order.append("other")
        answers = await asyncio.gather(*flood)
        await flooder.close()
        await other.close()
        return answers, mine

    answers, mine = asyncio.run(flood_and_ask())
    assert mine["ok"], mine
    codes = [a.get("code") for a in answers]
    assert codes.count("busy") >= 1 and not any(a["ok"] for a in answers), "the flooder met its own cap"
    ahead = order.index("other")
    assert ahead < 20, f"{ahead} of the flood's 40 replies came before the other client's (one shared lane: ~33)"


def test_tls_when_the_url_says_so_with_the_servers_ca(tmp_path: Path, bridge: Bridge) -> None:
    """A NATS server with TLS: relay and printer reach it with tls:// and the CA file; a plaintext URL
    is refused at once, in one line."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs openssl to make a certificate")
    cert, key = tmp_path / "nats-cert.pem", tmp_path / "nats-key.pem"
    made = subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                           str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert made.returncode == 0, made.stderr
    server = NatsServer(tmp_path, extra=["--tls", "--tlscert", str(cert), "--tlskey", str(key)])
    url = f"tls://127.0.0.1:{server.port}"
    relay = Relay(tmp_path, bridge, url, env={"TWSBRIDGE_NATS_TLS_CA": str(cert)})
    try:
        args = ["-m", "consumers.printer", "BTC.CRYPTO", "--nats", url, "--nats-tls-ca", str(cert), "--count", "5"]
        printer = Process("printer-tls", args, tmp_path)
        assert printer.wait(20) == 0, printer.output
        assert sum(" BTC.CRYPTO.PAXOS.USD  " in line for line in printer.output.splitlines()) == 5, printer.output
        plain = Process("printer-plain", ["-m", "consumers.printer", "AAPL", "--nats", server.url], tmp_path)
        assert plain.wait(20) == 1
        assert plain.output.count("\n") == 1 and "cannot connect to NATS" in plain.output, plain.output
    finally:
        relay.stop()
        server.stop()
