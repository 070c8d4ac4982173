"""A small client for the tws-bridge bus (docs/bus.md), so a consumer is about ten lines.

    with BusClient() as bus:
        bus.stop_on_signals()                 # Ctrl-C / SIGTERM end the loop below cleanly
        sub = bus.subscribe("BTC.CRYPTO")
        print(sub.latest)
        for topic, payload in bus:            # leases are renewed inside this loop
            print(topic, payload)
    # leaving the block unsubscribes

Everything runs on the caller's thread: ZeroMQ sockets are not thread-safe, so lease renewal happens
inside recv() rather than in a background thread. Keep calling recv() (or iterating) at least every
lease/3 seconds, or the bridge drops the subscription.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgpack
import zmq

from bridge.curve import CurveError, client_options
from consumers.config import default_pub, default_rep
from consumers.errors import BridgeError, BridgeTimeout, Stopped
from consumers.history_requests import HistoryRequests

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 8.0  # the bridge answers within 7 s (docs/bus.md)
DEFAULT_LEASE = 30
RENEW_RETRY_S = 1.0
RENEW_MIN_WAIT = 0.02  # s: a recv() with less time left leaves a due renewal to a later call (while it may wait)
URGENT_RENEW_WAIT = 0.5  # s: how long a late renewal may hold up a recv() that asked for less
MAX_TOPIC_NAMES = 10_000  # decoded topic names kept; beyond that a topic is decoded per message
CLOSE_TIMEOUT = 0.5  # unsubscribing when leaving: a live bridge answers in milliseconds; a gone one never
INF = float("inf")
SIGNAL_CHECK = 0.1  # s: how late recv() may notice a stop signal while no message comes


RENEW_BATCH = 3000  # MAX_RENEW_IDS in docs/bus.md, Limits


@dataclass
class Subscription:
    """One lease on a bridge data stream; `id` may change if the bridge restarts (we resubscribe)."""

    id: str
    topic: str
    instrument: str
    lease: int
    latest: dict[str, Any]
    kind: str = "quote"
    market_data_type: str = "live"
    generic_ticks: str = ""
    requested: str | dict[str, Any] = ""
    reply: dict[str, Any] = field(default_factory=dict, repr=False)
    view: dict[str, Any] = field(default_factory=dict)  # conflate / fields, for a conflated view


def _renewal_times(now: float, lease: float) -> tuple[float, float]:
    """When a lease's renewal is due (a third in), and when it may no longer wait for a recv()
    with time to spare (half way: the other half is left for a renewal that fails and is retried)."""
    return now + lease / 3, now + lease / 2


class Message:
    """A data message. It unpacks as `(topic, payload)`; `lost` counts messages missed on this topic
    just before it, `raw` holds the payload bytes exactly as published (for recorders).

    A class with slots, not a tuple subclass with attributes: one is built per message, and the
    tuple's attribute dict made that cost three times as much (0.6 against 0.2 us)."""

    __slots__ = ("lost", "payload", "raw", "topic")

    def __init__(self, topic: str, payload: dict[str, Any], lost: int = 0, raw: bytes = b"") -> None:
        self.topic = topic
        self.payload = payload
        self.lost = lost
        self.raw = raw

    def __iter__(self) -> Iterator[Any]:
        return iter((self.topic, self.payload))

    def __getitem__(self, index: int) -> Any:
        return (self.topic, self.payload)[index]

    def __len__(self) -> int:
        return 2

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Message):
            return self.topic == other.topic and self.payload == other.payload
        if isinstance(other, tuple):
            return (self.topic, self.payload) == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # the payload is a dict

    def __repr__(self) -> str:
        return f"Message({self.topic!r}, {self.payload!r}, lost={self.lost})"


def _curve_options(server_key: str | os.PathLike[str] | None, client_key: str | os.PathLike[str] | None) -> dict:
    """Socket options for CURVE from ZeroMQ certificate files (python -m bridge.keys writes them)."""
    if server_key is None and client_key is None:
        return {}
    if server_key is None or client_key is None:
        raise BridgeError("bad_keys", "CURVE needs both the bridge's public key file and this client's secret key file")
    try:
        return client_options(os.fspath(server_key), os.fspath(client_key))
    except CurveError as exc:
        raise BridgeError("bad_keys", str(exc)) from None


def reply_of(raw: bytes, where: str) -> dict[str, Any]:
    """A bridge reply (`where` it came, for errors): the map if `ok`, else BridgeError with its code."""
    try:
        reply = msgpack.unpackb(raw, raw=False)
    except Exception as exc:
        raise BridgeError("bad_reply", f"reply {where} is not msgpack: {exc}") from None
    if not isinstance(reply, dict):
        raise BridgeError("bad_reply", f"reply {where} is not a map: {reply!r}")
    if reply.get("ok") is not True:
        raise BridgeError(str(reply.get("code", "unknown")), str(reply.get("error", "request failed")), reply)
    return reply


class BusClient(HistoryRequests):
    """Requests over a REQ socket, data over a SUB socket, leases renewed inside recv().

    History and reference data (history(), ticks(), head_timestamp(), details(), option_chain(),
    search()) come from HistoryRequests: consumers/history_requests.py."""

    def __init__(
        self,
        pub: str | None = None,
        rep: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        context: zmq.Context | None = None,
        server_key: str | os.PathLike[str] | None = None,
        client_key: str | os.PathLike[str] | None = None,
    ) -> None:
        """`server_key` (the bridge's public key file) and `client_key` (this client's secret key file)
        turn on CURVE, for a bridge started with --curve-secret-key (docs/bus.md, Security)."""
        self.pub = pub or default_pub()
        self.rep = rep or default_rep()
        self.timeout = timeout
        self._curve = _curve_options(server_key, client_key)
        self._own_ctx = context is None
        self._ctx = context or zmq.Context()
        self._req: zmq.Socket | None = None
        self._sub = self._socket(zmq.SUB)
        try:  # both endpoints now, so a malformed one is one clear error here rather than a traceback later
            self._sub.connect(self.pub)
            self._new_req()
        except zmq.ZMQError as exc:
            self._reset_req()
            self._sub.close(linger=0)
            if self._own_ctx:
                self._ctx.term()
            raise BridgeError(
                "bad_endpoint",
                f"cannot connect to {self.pub} / {self.rep}: {exc} (endpoints look like tcp://HOST:PORT)",
            ) from None
        self._init_state()

    def _init_state(self) -> None:
        """What every transport keeps: subscriptions, wanted topics, seqs, renewal time, stop flag, signals."""
        self.subscriptions: dict[str, Subscription] = {}
        self._topics: Counter[str] = Counter()  # exact topics we asked for (prefix SUB lets variants in)
        self._prefixes: Counter[str] = Counter()  # raw prefixes from listen()
        self._last_seq: dict[str, int] = {}
        self._snapshot_seq: dict[str, int] = {}  # topic -> seq its subscribe reply's `latest` reflects
        self.lost = 0
        self._next_renew = INF  # when a renewal is due
        self._renew_by = INF  # when it may no longer wait for a recv() with time to spare
        self._stop_flag = False
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._saved_signals: dict[int, Any] = {}
        self._saved_wakeup_fd: int | None = None
        self._closed = False
        self._rcvtimeo = -1  # the SUB socket's receive timeout (ms) as last set
        self._topic_names: dict[bytes, str] = {}  # topic frame -> its text, decoded once
        self._wanted_topics: dict[str, bool] = {}  # _wanted's answers, until the topics asked for change

    # -- requests ---------------------------------------------------------------------------

    def request(self, msg: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Send one request, wait for its reply; raise BridgeError on `ok: false`, BridgeTimeout on silence."""
        timeout = self.timeout if timeout is None else timeout
        req = self._new_req() if self._req is None else self._req
        try:
            req.send(msgpack.packb(msg, use_bin_type=True), zmq.NOBLOCK)
            if not self._wait_reply(req, timeout):
                raise BridgeTimeout(
                    "timeout",
                    f"no reply from the bridge at {self.rep} within {timeout:g} s to {msg.get('op')!r}: "
                    "is tws-bridge running? (pass --rep or set TWSBRIDGE_REP if it listens elsewhere)",
                )
            raw = req.recv()
        except BaseException as exc:
            # A REQ socket that sent and never got its reply can send no more: start a fresh one.
            self._reset_req()
            if isinstance(exc, zmq.Again):
                raise BridgeTimeout("timeout", f"cannot send to the bridge at {self.rep}") from None
            raise
        return reply_of(raw, f"from {self.rep}")

    def _socket(self, kind: int) -> zmq.Socket:
        sock = self._ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        for option, value in self._curve.items():
            sock.setsockopt(option, value)
        return sock

    def _wait_reply(self, req: zmq.Socket, timeout: float) -> bool:
        """True once the reply is there, False on timeout; a stop signal meanwhile raises Stopped.

        Waiting on the signal wakeup fd too means Ctrl-C never waits out a bridge that is gone. A
        request made after the stop (the unsubscribes when closing) is not interrupted.
        """
        poller = zmq.Poller()
        poller.register(req, zmq.POLLIN)
        wake = self._wake_r.fileno() if self._wake_r is not None and not self._stop_flag else None
        if wake is not None:  # zmq's poll reports plain sockets by their fd
            poller.register(wake, zmq.POLLIN)
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return False
            events = dict(poller.poll(int(left * 1000) + 1))
            if req in events:
                return True
            if wake is not None and wake in events:
                self._drain_wake()
                if self._stop_flag:
                    raise Stopped("stopped", "stopped while waiting for the bridge")

    def _new_req(self) -> zmq.Socket:
        self._req = self._socket(zmq.REQ)
        self._req.connect(self.rep)
        return self._req

    def _reset_req(self) -> None:
        if self._req is not None:
            self._req.close(linger=0)
            self._req = None

    def subscribe(
        self,
        instrument: str | dict[str, Any],
        kind: str = "quote",
        market_data_type: str = "live",
        generic_ticks: str = "",
        lease: int = DEFAULT_LEASE,
        *,
        conflate: float | None = None,
        fields: list[str] | None = None,
    ) -> Subscription:
        """Ask the bridge for a stream; short forms like "AAPL" go unchanged, the bridge resolves them.

        With `conflate` (seconds), the stream's latest values instead of every message: one `latest`
        message at most every `conflate` seconds, only when something changed, with just `fields`
        if given (e.g. ["bid", "ask"]). The bridge does the folding once for every consumer of it."""
        view = {k: v for k, v in (("conflate", conflate), ("fields", fields)) if v is not None}
        with self._subscribing(kind):
            reply = self._subscribe_request(instrument, kind, market_data_type, generic_ticks, lease, view)
            return self._subscription(reply, instrument, kind, market_data_type, generic_ticks, lease, view)

    @contextlib.contextmanager
    def _subscribing(self, kind: str) -> Iterator[None]:
        """While a subscribe is asked: no message the bridge publishes after its reply may be missed.

        The topic is known only from the reply, and a SUB filter added then reaches the bridge a
        moment later: messages published in between would be lost. So take the whole kind while
        asking, and narrow to the exact topic once it is known (filters apply in order).
        """
        early = f"{kind}/".encode()
        self._sub.setsockopt(zmq.SUBSCRIBE, early)
        try:
            yield
        finally:
            self._sub.setsockopt(zmq.UNSUBSCRIBE, early)

    def _subscribe_request(
        self,
        instrument: str | dict[str, Any],
        kind: str,
        market_data_type: str,
        generic_ticks: str,
        lease: int,
        view: dict[str, Any],
    ) -> dict[str, Any]:
        return self.request(
            {
                "op": "subscribe",
                "instrument": instrument,
                "kind": kind,
                "generic_ticks": generic_ticks,
                "market_data_type": market_data_type,
                "lease": lease,
                **view,
            }
        )

    def _subscription(
        self,
        reply: dict[str, Any],
        instrument: str | dict[str, Any],
        kind: str,
        market_data_type: str,
        generic_ticks: str,
        lease: int,
        view: dict[str, Any],
    ) -> Subscription:
        try:
            sub = Subscription(
                id=str(reply["id"]),
                topic=str(reply["topic"]),
                instrument=str(reply.get("instrument") or ""),
                lease=int(reply.get("lease") or lease),
                latest=dict(reply.get("latest") or {}),
                kind=kind,
                market_data_type=market_data_type,
                generic_ticks=generic_ticks,
                requested=instrument,
                reply=reply,
                view=view,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BridgeError("bad_reply", f"subscribe reply lacks {exc}: {reply!r}") from None
        self.subscriptions[sub.id] = sub
        snapshot = reply.get("seq")
        if isinstance(snapshot, int) and snapshot > 0:
            # Messages already queued with seq <= snapshot are in `latest`; count gaps from there.
            self._snapshot_seq[sub.topic] = snapshot
            self._last_seq[sub.topic] = snapshot
        self._add_topic(sub.topic)
        # Sooner of the existing schedule and this lease's: never push older leases' renewal later.
        due, by = _renewal_times(time.monotonic(), sub.lease)
        self._next_renew, self._renew_by = min(self._next_renew, due), min(self._renew_by, by)
        return sub

    def unsubscribe(self, id: str, timeout: float | None = None) -> None:
        """Give a lease back; the bridge cancels the TWS request when no one else holds it."""
        sub = self.subscriptions.pop(id, None)
        if sub is not None:
            self._drop_topic(sub.topic)
        if not self.subscriptions:
            self._next_renew = self._renew_by = INF
        self.request({"op": "unsubscribe", "id": id}, timeout)

    def renew(self, timeout: float | None = None) -> dict[str, Any]:
        """Renew every lease now; ids the bridge no longer knows (it restarted) are subscribed again."""
        if not self.subscriptions:
            return {"ok": True, "renewed": [], "unknown": []}
        ids = list(self.subscriptions)
        reply: dict[str, Any] = {"ok": True, "renewed": [], "unknown": []}
        for at in range(0, len(ids), RENEW_BATCH):  # the bridge takes at most 3000 ids per renew (docs/bus.md)
            part = self.request({"op": "renew", "ids": ids[at : at + RENEW_BATCH]}, timeout)
            reply["renewed"] += part.get("renewed") or []
            reply["unknown"] += part.get("unknown") or []
        for old in reply["unknown"]:
            sub = self.subscriptions.pop(old, None)
            if sub is None:
                continue
            self._drop_topic(sub.topic)
            log.warning("bridge forgot subscription %s (%s); subscribing again", old, sub.topic)
            try:
                new = self.subscribe(sub.requested, sub.kind, sub.market_data_type, sub.generic_ticks, sub.lease,
                                     **sub.view)  # fmt: skip
            except BridgeError as exc:
                log.warning("could not subscribe %s again: %s; will retry", sub.topic, exc)
                self.subscriptions[old] = sub  # keep it so the next renewal retries
                self._add_topic(sub.topic)
                continue
            sub.id, sub.topic, sub.latest, sub.reply = new.id, new.topic, new.latest, new.reply
            self.subscriptions[new.id] = sub  # same object the caller holds, now with the new id
        return reply

    def status(self) -> dict[str, Any]:
        """The bridge's view of TWS and its subscriptions."""
        return self.request({"op": "status"})

    def ping(self) -> int:
        """The bridge's clock in Unix ns; raises BridgeTimeout if the bridge is not there."""
        return int(self.request({"op": "ping"})["pong"])

    def list_subscriptions(self) -> list[dict[str, Any]]:
        """Every TWS request the bridge holds, shared or not."""
        return list(self.request({"op": "list"}).get("subscriptions") or [])

    # -- data -------------------------------------------------------------------------------

    def listen(self, prefix: str) -> None:
        """Receive a topic prefix without a subscription ("" = everything, "state" = state changes)."""
        self._count_prefix(prefix)
        self._sub.setsockopt(zmq.SUBSCRIBE, prefix.encode())

    def _add_topic(self, topic: str) -> None:
        self._count_topic(topic, 1)
        self._sub.setsockopt(zmq.SUBSCRIBE, topic.encode())

    def _drop_topic(self, topic: str) -> None:
        self._count_topic(topic, -1)
        self._sub.setsockopt(zmq.UNSUBSCRIBE, topic.encode())

    # What is wanted, counted once for every transport: a topic asked for by several subscriptions
    # stays wanted until the last one goes.
    def _count_prefix(self, prefix: str) -> None:
        self._prefixes[prefix] += 1
        self._wanted_topics.clear()

    def _count_topic(self, topic: str, delta: int) -> bool:
        """Count one more (+1) or one fewer (-1) ask for `topic`; whether it is still wanted."""
        self._topics[topic] += delta
        self._wanted_topics.clear()
        if self._topics[topic] > 0:
            return True
        del self._topics[topic]
        return False

    def _wanted(self, topic: str) -> bool:
        # A SUB prefix also matches the /delayed and /g... variants of a topic; hand out only what was asked.
        wanted = topic in self._topics or any(topic.startswith(p) for p in self._prefixes)
        if len(self._wanted_topics) < MAX_TOPIC_NAMES:
            self._wanted_topics[topic] = wanted
        return wanted

    def _schedule_renew(self, now: float) -> None:
        if self.subscriptions:
            lease = min(s.lease for s in self.subscriptions.values())
            self._next_renew, self._renew_by = _renewal_times(now, lease)
        else:
            self._next_renew = self._renew_by = INF

    def _renew_if_due(self, deadline: float | None = None) -> None:
        """Renew when due, waiting for the bridge no longer than recv()'s own deadline allows.

        A call about to return leaves the renewal to a later one with time to spare, but only until
        half the lease has passed: a consumer that only ever polls (recv(0), recv(0.01)) gives none,
        and its subscription would lapse. From then on the renewal may wait URGENT_RENEW_WAIT
        whatever the call asked (a local bridge answers in a millisecond; a busy one may take longer
        than a polling call gives it)."""
        now = time.monotonic()
        if now < self._next_renew:
            return
        timeout = self.timeout if deadline is None else min(self.timeout, deadline - now)
        if timeout < URGENT_RENEW_WAIT and now >= self._renew_by:
            timeout = min(self.timeout, URGENT_RENEW_WAIT)  # late: hold this call up rather than lose the lease
        elif timeout < RENEW_MIN_WAIT:
            return
        try:
            self.renew(timeout)
        except BridgeError as exc:
            if self._stop_flag:
                return
            # A call that gave the bridge less than URGENT_RENEW_WAIT to answer ran out of time: no
            # sign of trouble while half the lease is left, so no warning (a busy bridge would
            # otherwise draw one a second from a polling consumer). One that fails later warns.
            early = isinstance(exc, BridgeTimeout) and timeout < URGENT_RENEW_WAIT and now < self._renew_by
            log.log(logging.DEBUG if early else logging.WARNING, "lease renewal failed: %s; retrying in %g s",
                    exc, RENEW_RETRY_S)  # fmt: skip
            self._next_renew = time.monotonic() + RENEW_RETRY_S
            return
        self._schedule_renew(now)

    def recv(self, timeout: float | None = None) -> Message | None:
        """Next wanted message, or None on timeout or once stopped by a signal. Renews leases while waiting."""
        now = time.monotonic()  # one clock read per message: the renewal check is inline
        deadline = None if timeout is None else now + timeout
        while not self._stop_flag:
            renew_at = self._next_renew
            if now >= renew_at:
                self._renew_if_due(deadline)
                now = time.monotonic()
                renew_at = self._next_renew if self._next_renew > now else self._renew_by  # else left for later
            until = renew_at if deadline is None or deadline > renew_at else deadline
            msg = self._wait_message(until - now if until > now else 0.0)
            if msg is not None:
                return msg
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return None
        return None

    def _wait_message(self, wait: float) -> Message | None:
        """The transport's part of recv(): a wanted message within `wait` seconds (inf: until one comes),
        or None after the wait, a signal's wake-up, or a message that was not ours.

        One blocking read with the socket's receive timeout, which returns at once when a message is
        queued. At a few thousand messages a second in small bursts, a wake-up costs more than the
        messages it brings, and zmq_poll() with its readiness checks plus the read that fails at the
        end of each burst cost about a third more than a bare blocking read (bench/consumer.py --paced
        750: 39 against 29.5 us per message); setting the receive timeout is a system call too. So the
        timeout is a power of two of milliseconds no longer than the wait, set only when that changes,
        and recv() waits again for the rest. A stop signal cuts the read short (_cut_wait); in case
        the signal lands on another thread, which cannot interrupt it, the wait is in SIGNAL_CHECK slices."""
        if self._wake_r is not None and wait > SIGNAL_CHECK:
            wait = SIGNAL_CHECK
        ms = wait * 1000.0 + 1.0
        current = self._rcvtimeo
        if not (current <= ms < 2 * current or (current == -1 and ms == INF)):  # else it stays: no call
            timeout = -1 if ms == INF else 1 << int(ms).bit_length() - 1
            self._sub.setsockopt(zmq.RCVTIMEO, timeout)
            self._rcvtimeo = timeout
        try:  # not contextlib.suppress: building one per message costs more than the read's checks
            return self._read(0)
        except zmq.Again:
            return None

    def recv_batch(self, timeout: float | None = None, limit: int = 1000) -> list[Message]:
        """Every wanted message already queued (up to `limit`), waiting like recv() for the first.
        Empty on timeout or once stopped. For a consumer that handles messages in bursts; not a
        saving: the read that ends each batch raises zmq.Again (about 6 us in pyzmq), more than
        recv() spends on the few messages a wake-up brings at TWS's rates (consumers/README.md)."""
        first = self.recv(timeout)
        if first is None:
            return []
        out = [first]
        read = self._read
        with contextlib.suppress(zmq.Again):
            while len(out) < limit:
                msg = read(zmq.NOBLOCK)
                if msg is not None:
                    out.append(msg)
        return out

    def pending(self) -> Iterator[Message]:
        """Messages already queued locally, without waiting: drain these after a stop so none are dropped."""
        while True:
            try:
                msg = self._read(zmq.NOBLOCK)
            except zmq.Again:
                return
            if msg is not None:
                yield msg

    def _read(self, flags: int) -> Message | None:
        """Parse one queued message; None if it is malformed or not ours. Raises zmq.Again if none queued.

        The bridge publishes [topic, payload] and nothing else, so both frames are read without
        asking ZeroMQ whether more follow: that question (RCVMORE) costs more than the two reads.
        A message of another shape shows up as a payload that does not unpack (a topic never
        does), and only then are frames counted to get back in step."""
        sub = self._sub
        topic = sub.recv(flags)
        try:
            raw = sub.recv(zmq.NOBLOCK)  # a message's frames arrive together
        except zmq.Again:
            log.warning("ignoring a 1-frame message: the bus sends [topic, payload]")
            return None
        name = self._topic_names.get(topic)
        if name is None:
            name = topic.decode("utf-8", "replace")
            if len(self._topic_names) < MAX_TOPIC_NAMES:
                self._topic_names[topic] = name
        msg = self._message(name, raw)
        if msg is None and sub.get(zmq.RCVMORE):
            skipped = len(sub.recv_multipart())
            log.warning("a message on the bus was not [topic, payload]; skipped %d frames to get back in step", skipped)
        return msg

    def _message(self, topic: str, raw: bytes) -> Message | None:
        """A received payload as a Message; None if unwanted, malformed, or already in a subscribe's picture.
        Counts the messages lost before it (`lost`): seq restarting lower means the bridge restarted."""
        wanted = self._wanted_topics.get(topic)
        if wanted is None:
            wanted = self._wanted(topic)
        if not wanted:
            return None
        try:
            payload = msgpack.unpackb(raw)
        except Exception as exc:
            log.warning("ignoring undecodable payload on %s: %s", topic, exc)
            return None
        if type(payload) is not dict:
            log.warning("ignoring non-map payload on %s", topic)
            return None
        seq = payload.get("seq")
        if type(seq) is not int:
            return Message(topic, payload, 0, raw)
        if self._snapshot_seq:
            snapshot = self._snapshot_seq.get(topic)
            if snapshot is not None:
                if seq <= snapshot:
                    return None  # older than the picture the subscribe reply gave
                del self._snapshot_seq[topic]
        last = self._last_seq.get(topic)
        self._last_seq[topic] = seq
        lost = 0
        if last is not None and seq > last + 1:
            lost = seq - last - 1
            self.lost += lost
        return Message(topic, payload, lost, raw)

    def __iter__(self) -> Iterator[Message]:
        while True:
            msg = self.recv()
            if msg is None:
                return
            yield msg

    # -- signals ----------------------------------------------------------------------------

    def stop_on_signals(self, signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> None:
        """Let SIGINT/SIGTERM end recv() and iteration cleanly (a second signal interrupts at once).

        The handler only sets a flag; a wakeup fd makes the waiting poll return, so a signal never
        lands in the middle of a request or a database write. Main thread only.
        """
        if self._wake_r is None:
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
            self._saved_wakeup_fd = signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        for sig in signals:
            self._saved_signals[sig] = signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._stop_flag:
            raise KeyboardInterrupt
        self._stop_flag = True
        self._cut_wait()

    def _cut_wait(self) -> None:
        """End recv()'s wait after a stop signal. Python runs the handler when ZeroMQ's read returns
        EINTR, before pyzmq resumes the read: a receive timeout of 0 makes that read end at once,
        unless a message is already there."""
        if not self._closed:
            with contextlib.suppress(zmq.ZMQError):
                self._sub.setsockopt(zmq.RCVTIMEO, 0)
                self._rcvtimeo = 0

    def _drain_wake(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_r is not None and self._wake_r.recv(64):
                pass

    def stop(self) -> None:
        """End recv()/iteration from the consumer's own code (e.g. after --count messages)."""
        self._stop_flag = True

    @property
    def stopped(self) -> bool:
        return self._stop_flag

    def _restore_signals(self) -> None:
        for sig, handler in self._saved_signals.items():
            signal.signal(sig, handler)
        self._saved_signals.clear()
        if self._wake_r is not None:
            signal.set_wakeup_fd(self._saved_wakeup_fd if self._saved_wakeup_fd is not None else -1)
            self._wake_r.close()
            if self._wake_w is not None:
                self._wake_w.close()
            self._wake_r = self._wake_w = None

    # -- lifetime ---------------------------------------------------------------------------

    def close(self, unsubscribe: bool = True, timeout: float = CLOSE_TIMEOUT) -> None:
        """Unsubscribe every lease (giving up at the first timeout: the bridge is gone) and close sockets.

        Each unsubscribe waits at most `timeout`: a lease not given back ends by itself at the bridge.
        """
        if self._closed:
            return
        self._closed = True
        try:
            if unsubscribe:
                for id in list(self.subscriptions):
                    try:
                        self.unsubscribe(id, timeout)
                    except BridgeTimeout as exc:
                        log.warning("unsubscribe %s: %s", id, exc)
                        break
                    except BridgeError as exc:
                        log.warning("unsubscribe %s: %s", id, exc)
        finally:
            self._close_transport()
            self._restore_signals()

    def _close_transport(self) -> None:
        self._reset_req()
        self._sub.close(linger=0)
        if self._own_ctx:
            self._ctx.term()

    def __enter__(self) -> BusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
