"""Every Prometheus metric the bridge exports, in one place.

Names follow Prometheus conventions (prefix `twsbridge_`, base units, `_total`, `_seconds`).
Labels are bounded: message kinds and REP ops come from our own tables, TWS error codes from a
known list (others count as "other"); nothing a REQ client sends can create a label value.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Iterator

import prometheus_client
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .hints import is_notice
from .histsched import Stats
from .ops import BAD_REQUEST_REASONS
from .protocol import events as ev

# A `_created` series per counter and histogram doubles the series count for a timestamp nobody
# queries (Prometheus handles counter resets itself); must run before any metric is made.
prometheus_client.disable_created_metrics()

# 10 us to 1 s: the hot path is tens of microseconds; a stall shows up in the top buckets.
LATENCY_BUCKETS = (
    1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip
# 1 ms to 10 s: how long a request to TWS waits behind the message-rate limit.
WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REP_OPS = (
    "subscribe", "unsubscribe", "renew", "list", "status", "ping", "history", "ticks", "head_timestamp", "details",
    "option_chain", "search", "invalid",
)  # fmt: skip
# TWS codes worth their own series; see docs/bus.md and TWS's error-code table.
KNOWN_TWS_CODES = frozenset(
    {100, 101, 162, 165, 200, 300, 309, 316, 317, 321, 322, 326, 354, 366, 502, 504, 1100, 1101, 1102, 1300,
     2103, 2104, 2105, 2106, 2107, 2108, 2119, 2157, 2158, 10089, 10090, 10167, 10168, 10182, 10186, 10197}
)  # fmt: skip


def event_kind(cls: type) -> str:
    """TickPrice -> tick_price: the `kind` label of received messages."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", cls.__name__).lower()


class HotPath(Collector):
    """The metrics updated on every socket read, kept as plain numbers and made into Prometheus series
    only when scraped. A prometheus_client counter or histogram takes a lock on each update: three per
    read was a measurable part of the bridge's CPU per message (bench/e2e.py). Updated on the event
    loop's thread only; a scrape from the HTTP thread reads numbers that may be one read behind."""

    def __init__(self) -> None:
        self.received: dict[type, int] = dict.fromkeys(ev.Event.__args__, 0)  # type: ignore[attr-defined]
        self.published = 0
        self.latency_buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one: above every bound
        self.latency_sum = 0.0

    def observe_latency(self, seconds: float) -> None:
        self.latency_buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds

    def collect(self) -> Iterator[Metric]:
        received = CounterMetricFamily(
            "twsbridge_tws_messages_received", "Messages decoded from TWS, by kind.", labels=["kind"]
        )
        for cls, n in list(self.received.items()):
            received.add_metric([event_kind(cls)], n)
        yield received
        yield CounterMetricFamily(
            "twsbridge_messages_published", "Data messages published on the PUB socket.", value=self.published
        )
        counts, total, buckets = list(self.latency_buckets), 0, []
        for bound, n in zip((*LATENCY_BUCKETS, math.inf), counts, strict=True):
            total += n
            buckets.append((floatToGoString(bound), total))
        yield HistogramMetricFamily(
            "twsbridge_publish_latency_seconds",
            "Time from reading TWS bytes off the socket to publishing the last message they held "
            "(one observation per socket read: the longest any message of that read waited).",
            buckets=buckets,
            sum_value=self.latency_sum,
        )


class HistoryStats(Collector):
    """The historical scheduler's figures (histsched.Stats), as the history desk last took them on the
    event loop's thread: the scheduler is not thread-safe, and a scrape runs on the HTTP thread."""

    GAUGES = (
        ("queued", "twsbridge_history_queued", "Historical requests waiting for IB's pacing rules (not yet sent)."),
        ("in_flight", "twsbridge_history_in_flight", "Historical requests sent to TWS and not yet answered."),
        ("budget_used", "twsbridge_history_budget_used",
         "Historical requests counted in the current pacing window (IB: 60 in any 10 minutes)."),
        ("paused_for", "twsbridge_history_paused_seconds",
         "Seconds until historical requests may start again after a pacing violation from TWS (0: not paused)."),
        ("cache_entries", "twsbridge_history_cache_entries", "Historical answers held in the answer cache."),
        ("cache_bytes", "twsbridge_history_cache_bytes", "Estimated bytes of the historical answer cache."),
    )  # fmt: skip
    COUNTERS = (
        ("submitted", "twsbridge_history_submitted", "Historical requests asked by clients (one per TWS-sized part)."),
        ("cache_hits", "twsbridge_history_cache_hits", "Historical requests answered from the answer cache."),
        ("attached", "twsbridge_history_shared",
         "Historical requests that joined an identical one already queued or at TWS (one TWS request for all)."),
        ("started", "twsbridge_history_tws_requests", "Historical requests sent to TWS (retries included)."),
        ("retried", "twsbridge_history_retries", "Historical requests sent again (pacing violation, lost connection)."),
        ("tws_pacing", "twsbridge_history_pacing_violations",
         "Error 162 pacing violations TWS answered despite the bridge's pacing (should stay 0)."),
        ("refused", "twsbridge_history_refused", "Historical requests the bridge refused (its queue full)."),
        ("long_waits", "twsbridge_history_long_waits", "Historical requests told up front of a wait over a minute."),
        ("wait_seconds", "twsbridge_history_wait_seconds",
         "Seconds historical requests waited in the bridge before being sent, summed (divide by tws_requests)."),
    )  # fmt: skip

    def __init__(self) -> None:
        self.stats = Stats()

    def collect(self) -> Iterator[Metric]:
        stats = self.stats
        for field, name, text in self.GAUGES:
            yield GaugeMetricFamily(name, text, value=getattr(stats, field))
        for field, name, text in self.COUNTERS:
            yield CounterMetricFamily(name, text, value=getattr(stats, field))


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # process_* (RSS, CPU, fds) and python_* (version, GC), which a custom registry lacks.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.hot = HotPath()  # messages received and published, publish latency: see HotPath
        r.register(self.hot)
        self.history = HistoryStats()  # the historical scheduler's figures, set by the history desk
        r.register(self.history)
        self.tws_up = Gauge(
            "twsbridge_tws_up", "1 once TWS has sent nextValidId, 0 while the connection is down.", registry=r
        )
        self.tws_connects = Counter(
            "twsbridge_tws_connects", "Completed TWS connections (handshake + startApi).", registry=r
        )
        self.tws_errors = Counter(
            "twsbridge_tws_errors",
            "Error messages from TWS, by code (notices are counted in twsbridge_tws_notices_total).",
            ["code"],
            registry=r,
        )
        self.tws_notices = Counter(
            "twsbridge_tws_notices",
            "Informational messages TWS sends as errors, by code: farm status 2100-2199, 1102 (IB connection "
            "restored, data kept).",
            ["code"],
            registry=r,
        )
        self.subscriptions = Gauge("twsbridge_subscriptions", "Consumer subscriptions (leases) held.", registry=r)
        self.lines = Gauge("twsbridge_lines_in_use", "TWS data requests (market-data lines) open.", registry=r)
        self.requests = Counter(
            "twsbridge_rep_requests",
            "Requests on the request socket, by op and outcome.",
            ["op", "outcome"],
            registry=r,
        )
        self.tws_ib_connected = Gauge(
            "twsbridge_tws_ib_connected", "0 while TWS reports its connection to IB lost (1100), else 1.", registry=r
        )
        self.tws_farm_up = Gauge(
            "twsbridge_tws_farm_up",
            "0 while a data farm of this kind is broken (2103 market, 2105 historical, 2157 sec-def), else 1.",
            ["farm"],
            registry=r,
        )
        self.tws_stalls = Counter(
            "twsbridge_tws_stalls", "Times TWS went silent past the stall threshold (heartbeat unanswered).", registry=r
        )
        self.tws_silence = Gauge(
            "twsbridge_tws_silence_seconds", "Seconds since TWS last sent anything on a working session.", registry=r
        )
        self.stale_topics = Gauge(
            "twsbridge_stale_topics", "Data topics marked stale now (an outage or a competing session).", registry=r
        )
        self.tws_request_wait = Histogram(
            "twsbridge_tws_request_wait_seconds",
            "Time a request to TWS waited in the bridge (pacing, fair queueing) from submit to the socket, "
            "by request type.",
            ["request"],
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.unknown_instrument_cache_hits = Counter(
            "twsbridge_unknown_instrument_cache_hits",
            "Subscribes answered unknown_instrument from memory of TWS's refusal (error 200), without asking TWS.",
            registry=r,
        )
        self.lease_expiries = Counter(
            "twsbridge_lease_expiries", "Consumer subscriptions dropped because their lease lapsed.", registry=r
        )

        self.bad_requests = Counter(
            "twsbridge_rep_bad_requests",
            "Requests refused as bad_request, by reason (a fixed set: too_large, multipart, not_msgpack, ...).",
            ["reason"],
            registry=r,
        )
        for reason in (*BAD_REQUEST_REASONS, "other"):
            self.bad_requests.labels(reason)
        self.pub_hwm = Gauge(
            "twsbridge_pub_hwm_messages",
            "Send high-water mark of the PUB socket: messages queued per subscriber before it drops.",
            registry=r,
        )
        self.pub_connections = Gauge(
            "twsbridge_pub_connections", "TCP connections to the PUB socket now (subscribers).", registry=r
        )
        self.bus_handshake_failures = Counter(
            "twsbridge_bus_handshake_failures",
            "Connections to the bus refused in the handshake: reason 'auth' (CURVE key not allowed), 'protocol' "
            "(no CURVE, or another mechanism), 'other'.",
            ["socket", "reason"],
            registry=r,
        )
        for socket in ("pub", "rep"):
            for reason in ("auth", "protocol", "other"):
                self.bus_handshake_failures.labels(socket, reason)

    def bad_request(self, reason: str) -> None:
        self.bad_requests.labels(reason if reason in BAD_REQUEST_REASONS else "other").inc()

    def tws_error(self, code: int) -> None:
        """Count one TWS error message (msg id 4): as a notice or as an error, so alerts need no regex."""
        counter = self.tws_notices if is_notice(code) else self.tws_errors
        counter.labels(str(code) if code in KNOWN_TWS_CODES else "other").inc()

    def tws_request_waited(self, request: type, seconds: float) -> None:
        """Label values are our own request type names (bounded), e.g. req_contract_details."""
        self.tws_request_wait.labels(event_kind(request)).observe(seconds)

    def request(self, op: str, outcome: str) -> None:
        self.requests.labels(op if op in REP_OPS else "invalid", outcome).inc()

    def serve(self, host: str, port: int) -> None:
        """Expose /metrics over HTTP (a daemon thread of prometheus_client)."""
        start_http_server(port, addr=host, registry=self.registry)
