"""The bus client over NATS, for a consumer on another host: no ZeroMQ, only the NATS URL and credentials.

    with NatsBusClient("nats://bridge-host:4222", user="research", password=...) as bus:
        sub = bus.subscribe("AAPL")       # request/reply on twsbridge_req, through the relay
        print(sub.latest)                 # the bridge's picture, as over ZeroMQ
        for topic, payload in bus:        # JetStream, from just after that picture; leases renewed here
            print(topic, payload)

The same API as `BusClient` (the lease, renewal and gap logic is BusClient's own); only the transport
differs. NATS's client is asyncio, so it runs on a thread of its own: messages reach the caller's
thread through a queue, and requests are handed to that thread and waited for.

Data comes from the relay's JetStream stream through one ordered consumer per subject: JetStream
re-delivers what a dropped connection missed, in order. A subscription's consumer starts at the
stream position read just before the subscribe request, so every message the bridge published
after its reply's picture is delivered, and those already in the picture are skipped by their seq.
docs/nats.md has the protocol for other languages.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any

import msgpack

from bridge.natsconn import NatsUnavailable, connect_options
from bridge.natsconn import connect as nats_connect
from bridge.subjects import PREFIX, REQUEST_SUBJECT, subject
from bridge.subjects import topic as topic_of
from consumers.client import (
    DEFAULT_TIMEOUT,
    BridgeError,
    BridgeTimeout,
    BusClient,
    Message,
    Stopped,
    reply_of,
)

STREAM = "TWSBRIDGE"  # the relay's default --stream
CONNECT_TIMEOUT = 5.0
_WAKE = None  # put on the queue to wake recv() (a signal, stop())


class NatsBusClient(BusClient):
    """BusClient's API with requests over NATS request/reply and data from the relay's JetStream stream."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        user: str | None = None,
        password: str | None = None,
        creds: str | None = None,
        tls_ca: str | None = None,
        stream: str = STREAM,
    ) -> None:
        try:
            import nats  # noqa: F401  # the optional dependency: pip install 'tws-bridge[nats]'
        except ModuleNotFoundError:
            raise BridgeError("no_nats", "the NATS client is not installed: pip install 'tws-bridge[nats]'") from None
        self.url = url
        self.pub = self.rep = url  # what error messages and callers name as the bus's address
        self.timeout = timeout
        self.stream = stream
        self._init_state()
        self._inbox: queue.SimpleQueue[tuple[str, bytes, int] | None] = queue.SimpleQueue()
        self._stream_seen: dict[str, int] = {}  # topic -> last stream sequence handed out (overlapping listens)
        self._consumers: dict[str, Any] = {}  # NATS subject filter -> its JetStream subscription
        self._next_start: int | None = None  # stream sequence the next data consumer starts at
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="nats", daemon=True)
        self._thread.start()
        connect = nats_connect(
            url, timeout=CONNECT_TIMEOUT, name="tws-bridge consumer", connect_timeout=CONNECT_TIMEOUT,
            reconnect_time_wait=1, **connect_options(url, user, password, creds, tls_ca),
        )  # fmt: skip
        try:
            self._nc = self._call(connect, CONNECT_TIMEOUT + 1, interruptible=False)
        except NatsUnavailable as exc:
            self._stop_loop()
            raise BridgeError("unreachable", str(exc)) from None
        self._js = self._nc.jetstream()

    # -- the NATS thread --------------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, Any], timeout: float, interruptible: bool = True) -> Any:
        """Run `coro` on the NATS thread and wait for it; a stop signal meanwhile raises Stopped."""
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        end = time.monotonic() + timeout
        while True:
            try:
                return future.result(0.05)
            except concurrent.futures.TimeoutError:
                if interruptible and self._stop_flag and self._saved_signals:
                    future.cancel()
                    raise Stopped("stopped", "stopped while waiting for the bridge") from None
                if time.monotonic() > end:
                    future.cancel()
                    raise

    def _stop_loop(self) -> None:
        """End the NATS thread, its tasks cancelled and awaited (nothing left pending to complain)."""

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(cancel_all(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    # -- requests ---------------------------------------------------------------------------

    def request(self, msg: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """One request to the bridge through the relay; the same replies and errors as over ZeroMQ."""
        import nats.errors

        timeout = self.timeout if timeout is None else timeout
        body = msgpack.packb(msg, use_bin_type=True)
        try:
            answer = self._call(self._nc.request(REQUEST_SUBJECT, body, timeout=timeout), timeout + 1)
        except nats.errors.NoRespondersError:
            raise BridgeTimeout(
                "timeout",
                f"no relay answers {REQUEST_SUBJECT} on {self.url}: is python -m bridge.relay running there?",
            ) from None
        except (nats.errors.TimeoutError, concurrent.futures.TimeoutError, TimeoutError):
            raise BridgeTimeout(
                "timeout", f"no reply through NATS at {self.url} within {timeout:g} s to {msg.get('op')!r}"
            ) from None
        except nats.errors.Error as exc:
            raise BridgeTimeout("timeout", f"NATS at {self.url}: {exc}") from None
        return reply_of(answer.data, f"through {self.url}")

    @contextlib.contextmanager
    def _subscribing(self, kind: str) -> Iterator[None]:
        """The stream position read before asking: the new topic's consumer starts there (_add_topic)."""
        self._next_start = self._stream_end() + 1
        try:
            yield
        finally:
            self._next_start = None

    def _stream_end(self) -> int:
        import nats.js.errors

        try:
            info = self._call(self._js.stream_info(self.stream), self.timeout)
        except nats.js.errors.NotFoundError:
            raise BridgeError(
                "no_stream", f"NATS at {self.url} has no stream {self.stream}: is python -m bridge.relay running?"
            ) from None
        except Exception as exc:
            raise BridgeTimeout("timeout", f"cannot read stream {self.stream} at {self.url}: {exc}") from None
        return int(info.state.last_seq)

    # -- data -------------------------------------------------------------------------------

    def listen(self, prefix: str) -> None:
        """Receive a topic prefix without a subscription: "" (everything), a kind ("state", "quote/"),
        or a whole topic. NATS filters by whole tokens, so other prefixes are refused."""
        if prefix == "":
            filter_ = f"{PREFIX}.>"
        elif prefix.endswith("/"):
            filter_ = subject(prefix[:-1]) + ".>"
        else:
            filter_ = subject(prefix)
        self._count_prefix(prefix)
        self._consume(filter_, start=None)

    def _add_topic(self, topic: str) -> None:
        self._count_topic(topic, 1)
        self._consume(subject(topic), start=self._next_start)

    def _drop_topic(self, topic: str) -> None:
        if not self._count_topic(topic, -1):
            sub = self._consumers.pop(subject(topic), None)
            if sub is not None:
                self._call(sub.unsubscribe(), self.timeout, interruptible=False)

    def _consume(self, filter_: str, start: int | None) -> None:
        """An ordered JetStream consumer on `filter_`, from stream sequence `start` (None: new messages)."""
        from nats.js.api import DeliverPolicy

        if filter_ in self._consumers:
            return
        if start is None:
            options: dict[str, Any] = {"deliver_policy": DeliverPolicy.NEW}
        else:
            from nats.js.api import ConsumerConfig

            options = {"config": ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start)}
        try:
            self._consumers[filter_] = self._call(
                self._js.subscribe(filter_, stream=self.stream, cb=self._deliver, ordered_consumer=True, **options),
                self.timeout,
            )
        except (BridgeError, concurrent.futures.TimeoutError):
            raise
        except Exception as exc:
            raise BridgeError("no_stream", f"cannot read {filter_} from stream {self.stream}: {exc}") from None

    async def _deliver(self, msg: Any) -> None:
        """On the NATS thread: a stream message to the caller's queue, with its topic and stream sequence."""
        try:
            topic = topic_of(msg.subject)
            position = msg.metadata.sequence.stream
        except Exception:  # not a subject the relay makes, or no JetStream metadata
            return
        self._inbox.put((topic, msg.data, position))

    def _wait_message(self, wait: float) -> Message | None:
        """recv()'s wait: the next stream message within `wait` seconds; None after it or a wake-up."""
        try:
            item = self._inbox.get(timeout=None if wait == float("inf") else wait)
        except queue.Empty:
            return None
        return None if item is _WAKE else self._take(item)

    def pending(self) -> Iterator[Message]:
        """Messages already received, without waiting: drain these after a stop so none are dropped."""
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if item is not _WAKE:
                msg = self._take(item)
                if msg is not None:
                    yield msg

    def _take(self, item: tuple[str, bytes, int]) -> Message | None:
        topic, raw, position = item
        if position <= self._stream_seen.get(topic, 0):
            return None  # the same stream message again, through an overlapping listen()
        self._stream_seen[topic] = position
        return self._message(topic, raw)

    # -- signals and lifetime ---------------------------------------------------------------

    def _cut_wait(self) -> None:
        self._inbox.put(_WAKE)  # SimpleQueue.put may be called from a signal handler

    def stop(self) -> None:
        super().stop()
        self._inbox.put(_WAKE)

    def _close_transport(self) -> None:
        with contextlib.suppress(Exception):  # closing a connection that is already gone
            self._call(self._nc.close(), 5, interruptible=False)
        self._stop_loop()
