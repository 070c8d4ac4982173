"""The NATS relay with a real nats-server (JetStream): remote consumers get what local ones get.

Real processes: the simulator, the bridge, `python -m bridge.relay`, `nats-server -js`; the test
process is the remote consumer, on nats-py only (no ZeroMQ), next to a local ZeroMQ consumer.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
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
    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        store = workdir / "jetstream"
        super().__init__(f"nats-{self.port}", ["-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(store)],
                         workdir, program=str(NATS_SERVER))  # fmt: skip
        wait_for(lambda: "Server is ready" in self.output, 15, "nats-server ready")


class Relay(Process):
    def __init__(self, workdir: Path, bridge: Bridge, url: str, name: str = "relay") -> None:
        self.metrics_port = free_port()
        super().__init__(name, ["-m", "bridge.relay", "--nats", url, "--pub", bridge.pub, "--rep", bridge.rep,
                                "--metrics", f"127.0.0.1:{self.metrics_port}"], workdir)  # fmt: skip
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
    """The bus seqs of every message the stream holds for `subject_`, in stream order."""
    nc = await nats.connect(url)
    psub = await nc.jetstream().pull_subscribe(subject_)
    seqs: list[int] = []
    try:
        while True:
            seqs += [int(m.headers["Twsbridge-Seq"]) for m in await psub.fetch(500, timeout=2)]
    except nats.errors.TimeoutError:
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
    try:
        assert bridge.request({"op": "subscribe", "instrument": "BTC.CRYPTO", "lease": 60})["ok"]
        wait_for(lambda: second.metrics().get("twsbridge_relay_messages_total", 0) > 50, 15, "both relaying")
    finally:
        second.stop()

    seqs = asyncio.run(stored_seqs(server.url, "twsbridge.quote.BTC-CRYPTO-PAXOS-USD"))
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
