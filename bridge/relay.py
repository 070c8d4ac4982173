"""`python -m bridge.relay --nats URL`: the bus carried onto NATS JetStream for other hosts.

A process of its own, not a bridge option: NATS being slow or down must never touch the bridge's
hot path, and the bridge keeps no dependency on a NATS client. The relay is a consumer of the bus
like any other:

- every message on the PUB socket (data topics and `state`) is published to the subject of its
  topic (`bridge.subjects`), payload unchanged, with headers `Twsbridge-Topic`, `Twsbridge-Seq`
  and `Nats-Msg-Id` (epoch:topic:seq), into a JetStream stream that keeps the last N messages
  per subject within a bounded age and size, and drops duplicates by message id (a restarted
  relay, or two relays, add nothing twice);
- requests on `twsbridge_req` (NATS request/reply, one msgpack map, the same ops and replies as
  the REQ socket) are forwarded to the bridge's request socket and answered, each NATS client
  connection in a lane of its own there (`bridge.relay_lanes`), so the bridge's fairness holds;
- between the SUB socket and NATS sits a bounded buffer: when NATS cannot keep up or is away,
  the newest messages are dropped and counted, never the bridge slowed.

docs/nats.md is the consumer's side.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

import msgpack
import zmq
import zmq.asyncio
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from .logsafe import escape
from .natsconn import CREDS_ENV, PASSWORD_ENV, TLS_CA_ENV, URL_ENV, USER_ENV, NatsUnavailable, connect_options
from .natsconn import connect as nats_connect
from .relay_lanes import Lanes, requester
from .subjects import PREFIX, REQUEST_SUBJECT, message_id, subject
from .waits import wait_event

log = logging.getLogger("tws-bridge.relay")

REPLY_TIMEOUT = 8.0  # the bridge answers within 7 s (docs/bus.md)
MAX_IN_FLIGHT = 2000  # NATS requests waiting for the bridge at once; beyond, `busy` at once
BUSY = msgpack.packb(
    {"ok": False, "code": "busy", "error": f"the relay has {MAX_IN_FLIGHT} requests in flight; retry in a moment"}
)


@dataclass(frozen=True)
class RelaySettings:
    nats: str
    pub: str = "tcp://127.0.0.1:5555"
    rep: str = "tcp://127.0.0.1:5556"
    stream: str = "TWSBRIDGE"
    per_subject: int = 1000  # messages kept per subject
    max_age: float = 24 * 3600.0  # seconds
    max_bytes: int = 1 << 30
    duplicate_window: float = 120.0  # seconds JetStream remembers message ids
    buffer: int = 100_000  # messages between the bus and NATS
    user: str | None = None
    password: str | None = None
    creds: str | None = None
    tls_ca: str | None = None
    metrics: str = "127.0.0.1:9109"


class RelayError(Exception):
    """The relay cannot start; the message says why."""


class RelayMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.nats_connected = Gauge("twsbridge_relay_nats_connected", "1 while connected to NATS.", registry=r)
        self.relayed = Counter("twsbridge_relay_messages", "Bus messages published to NATS.", registry=r)
        self.dropped = Counter(
            "twsbridge_relay_dropped_messages",
            "Bus messages the relay did not carry: seq gaps on its SUB socket (its buffer was full), or NATS's "
            "outgoing buffer full while NATS was away.",
            registry=r,
        )
        self.requests = Counter("twsbridge_relay_requests", "Requests forwarded from NATS.", ["outcome"], registry=r)
        self.lag = Gauge(
            "twsbridge_relay_lag_seconds",
            "Age of the last message handed to NATS: from the bridge reading it to the relay publishing it.",
            registry=r,
        )


class Relay:
    def __init__(self, settings: RelaySettings, metrics: RelayMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or RelayMetrics()
        self._ctx = zmq.asyncio.Context()
        self._last_seq: dict[str, int] = {}
        self._epoch = ""
        self._lanes: Lanes
        self._answering: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        import nats  # noqa: F401  # the relay's own dependency (pip install tws-bridge[nats]); missing: exit 2

        s = self.settings
        try:  # waits for a NATS that is not up yet; refused credentials or TLS end the relay, saying why
            nc = await nats_connect(
                s.nats, timeout=None, name="tws-bridge relay", reconnect_time_wait=1, connect_timeout=5,
                disconnected_cb=self._down, reconnected_cb=self._up, error_cb=self._error, **self._auth(),
            )  # fmt: skip
        except NatsUnavailable as exc:
            raise RelayError(escape(str(exc))) from None
        self.metrics.nats_connected.set(1)
        await self._ensure_stream(nc)
        # A plain (not asyncio) SUB socket read in batches: per-message futures cost more than NATS.
        sub = zmq.Context.instance().socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.RCVHWM, s.buffer)  # the bound: beyond it ZeroMQ drops, and seq gaps count it
        sub.connect(s.pub)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        self._lanes = Lanes(self._ctx, s.rep)
        tasks: list[asyncio.Task[None]] = []
        status = msgpack.unpackb(await self._ask("", msgpack.packb({"op": "status"})))
        self._epoch = status.get("epoch", "") if isinstance(status, dict) else ""
        if not self._epoch:
            log.warning("the bridge at %s did not answer 'status': message ids wait for its first state message", s.rep)
        requests = await nc.subscribe(REQUEST_SUBJECT, cb=self._forward)
        tasks.append(asyncio.create_task(self._pump(sub, nc)))
        log.info("relaying %s to %s (stream %s), requests on %s", s.pub, escape(s.nats), s.stream, REQUEST_SUBJECT)
        await stop.wait()
        await requests.unsubscribe()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for answering in list(self._answering):
            answering.cancel()
        await nc.drain()
        self._lanes.close()
        self._ctx.term()

    def _auth(self) -> dict[str, Any]:
        s = self.settings
        return connect_options(s.nats, s.user, s.password, s.creds, s.tls_ca)

    async def _ensure_stream(self, nc: Any) -> None:
        from nats.js.api import StreamConfig

        s = self.settings
        config = StreamConfig(
            name=s.stream, subjects=[f"{PREFIX}.>"], max_msgs_per_subject=s.per_subject, max_age=s.max_age,
            max_bytes=s.max_bytes, duplicate_window=s.duplicate_window,
        )  # fmt: skip
        js = nc.jetstream()
        try:
            await js.add_stream(config)
        except Exception:  # it exists (maybe with other limits): take ours
            await js.update_stream(config)

    async def _pump(self, sub: zmq.Socket, nc: Any) -> None:
        """Bus to NATS: drain what the SUB socket holds, publish each, wait on its descriptor."""
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        loop.add_reader(sub.getsockopt(zmq.FD), readable.set)
        try:
            while True:
                readable.clear()
                carried = 0
                while sub.getsockopt(zmq.EVENTS) & zmq.POLLIN:  # the FD signals edges: drain to empty
                    topic, payload = sub.recv_multipart(zmq.NOBLOCK)
                    await self._carry(nc, topic.decode(), payload)
                    carried += 1
                    if carried % 256 == 0:
                        await asyncio.sleep(0)  # let NATS's writer and the request handler run
                if not sub.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                    await wait_event(readable, 1.0)
        finally:
            loop.remove_reader(sub.getsockopt(zmq.FD))
            sub.close()

    async def _carry(self, nc: Any, topic: str, payload: bytes) -> None:
        seq, epoch, recv_ns = _fields(payload)
        if epoch:
            self._epoch = epoch
        last = self._last_seq.get(topic)
        if last is not None and seq > last + 1:
            self.metrics.dropped.inc(seq - last - 1)  # the SUB socket's bound was reached
        if seq:
            self._last_seq[topic] = seq
        headers = {"Twsbridge-Topic": topic, "Twsbridge-Seq": str(seq)}
        if self._epoch and seq:
            headers["Nats-Msg-Id"] = message_id(self._epoch, topic, seq)
        try:
            await nc.publish(subject(topic), payload, headers=headers)
        except Exception:  # NATS away long enough to fill nats-py's outgoing buffer
            self.metrics.dropped.inc()
            return
        self.metrics.relayed.inc()
        if recv_ns:
            self.metrics.lag.set(max(0.0, (time.time_ns() - recv_ns) / 1e9))

    async def _forward(self, msg: Any) -> None:
        """A NATS request, answered on a task of its own: nats-py runs a subscription's callbacks one at a
        time, and one slow request (a contract lookup) must not hold up every other client's."""
        if len(self._answering) >= MAX_IN_FLIGHT:
            self.metrics.requests.labels("busy").inc()
            if msg.reply:
                await msg.respond(BUSY)
            return
        task = asyncio.create_task(self._answer(msg))
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)

    async def _answer(self, msg: Any) -> None:
        reply = await self._ask(requester(msg.reply or ""), msg.data)
        if msg.reply:
            with contextlib.suppress(Exception):  # the requester's connection is gone
                await msg.respond(reply)

    async def _ask(self, key: str, body: bytes) -> bytes:
        """A request in `key`'s lane to the bridge's request socket, and the bridge's reply."""
        try:
            reply = await self._lanes.ask(key, body, REPLY_TIMEOUT)
        except TimeoutError:
            self.metrics.requests.labels("timeout").inc()
            return msgpack.packb({"ok": False, "code": "timeout", "error": "the bridge did not answer the relay"})
        self.metrics.requests.labels("answered").inc()
        return reply

    async def _down(self) -> None:
        self.metrics.nats_connected.set(0)
        log.warning("NATS connection lost; buffering up to %d messages", self.settings.buffer)

    async def _up(self) -> None:
        self.metrics.nats_connected.set(1)
        log.info("NATS connection back")

    async def _error(self, exc: Exception) -> None:
        log.warning("NATS: %s", escape(str(exc)))


def _fields(payload: bytes) -> tuple[int, str, int]:
    """The payload's seq, the bridge's epoch (state messages carry it) and recv_ns; zeros if absent."""
    try:
        body = msgpack.unpackb(payload)
    except Exception:
        return 0, "", 0
    if not isinstance(body, dict):
        return 0, "", 0
    seq, epoch, recv_ns = body.get("seq"), body.get("epoch"), body.get("recv_ns")
    return (
        seq if isinstance(seq, int) else 0,
        epoch if isinstance(epoch, str) else "",
        recv_ns if isinstance(recv_ns, int) else 0,
    )


def parse_args(argv: list[str] | None) -> RelaySettings:
    p = argparse.ArgumentParser(prog="python -m bridge.relay", description=__doc__.split("\n\n")[0])
    env = os.environ.get
    p.add_argument("--nats", default=env(URL_ENV), help=f"NATS server URL, e.g. nats://127.0.0.1:4222 (tls:// for "
                   f"TLS; ${URL_ENV})")  # fmt: skip
    p.add_argument("--pub", default=RelaySettings.pub, help="the bridge's data endpoint (%(default)s)")
    p.add_argument("--rep", default=RelaySettings.rep, help="the bridge's request endpoint (%(default)s)")
    p.add_argument("--stream", default=RelaySettings.stream, help="JetStream stream name (%(default)s)")
    p.add_argument("--per-subject", type=int, default=RelaySettings.per_subject, help="messages kept per subject")
    p.add_argument("--max-age", type=float, default=RelaySettings.max_age, help="seconds a message is kept")
    p.add_argument("--max-bytes", type=int, default=RelaySettings.max_bytes, help="the stream's size bound")
    p.add_argument("--buffer", type=int, default=RelaySettings.buffer, help="messages held while NATS is slow")
    p.add_argument("--user", default=env(USER_ENV), help=f"NATS user, with a password (${USER_ENV})")
    p.add_argument("--password", default=env(PASSWORD_ENV), help=f"NATS password (better: ${PASSWORD_ENV})")
    p.add_argument("--creds", default=env(CREDS_ENV), help=f"NATS credentials file, JWT + nkey (${CREDS_ENV})")
    p.add_argument("--tls-ca", default=env(TLS_CA_ENV), help=f"CA file for a TLS NATS server (${TLS_CA_ENV})")
    p.add_argument("--metrics", default=RelaySettings.metrics, help="host:port for Prometheus, '' for none")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    a = p.parse_args(argv)
    if not a.nats:
        p.error(f"--nats URL is required (or ${URL_ENV})")
    for name in ("per_subject", "buffer", "max_bytes"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if a.max_age <= 0:
        p.error("--max-age must be more than 0")
    logging.basicConfig(level=a.log_level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    fields = {k: v for k, v in vars(a).items() if k != "log_level"}
    return RelaySettings(**fields)


async def _main(settings: RelaySettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    relay = Relay(settings)
    if settings.metrics:
        host, _, port = settings.metrics.rpartition(":")
        start_http_server(int(port), host or "127.0.0.1", registry=relay.metrics.registry)
    await relay.run(stop)


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    try:
        asyncio.run(_main(settings))
    except ModuleNotFoundError:
        print("python -m bridge.relay: needs the NATS client: pip install 'tws-bridge[nats]'", file=sys.stderr)
        return 2
    except (RelayError, OSError) as exc:
        print(f"python -m bridge.relay: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
