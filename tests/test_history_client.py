"""The consumers' side of history: BusClient's helpers, `python -m consumers.history` and the bars
consumer's backfill, against real simulator and bridge processes. Both keep IB's historical pacing
with time-scaled windows (--history-time-scale 0.01: ten minutes are six seconds), so a span of
more than 55 TWS requests waits its turn at the bridge within a test."""

from __future__ import annotations

import csv
import importlib.util
import itertools
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from consumers.client import BridgeError, BusClient, Stopped
from tests.harness import ROOT, Bridge, Simulator, history_pair

HOUR = 3600


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Simulator, Bridge]]:
    with history_pair(tmp_path_factory.mktemp("history-client"), 0.01) as both:
        yield both


@pytest.fixture
def bus(pair: tuple[Simulator, Bridge]) -> Iterator[BusClient]:
    with BusClient(pair[1].pub, pair[1].rep) as client:
        yield client


def answer_pages(bridge: Bridge, request: dict[str, Any], key: str) -> list[list[Any]]:
    """The bridge's own answer, fetched by hand: ticket while pending, then every page."""
    rows: list[list[Any]] = []
    reply = bridge.request(request, timeout=10)
    while True:
        while reply.get("pending"):
            time.sleep(reply["retry_after_s"])
            reply = bridge.request({"op": request["op"], "ticket": reply["ticket"]}, timeout=10)
        assert reply["ok"], reply
        rows += reply[key]
        if "next" not in reply:
            return rows
        reply = bridge.request(reply["next"], timeout=10)


def renew_count(bridge: Bridge) -> float:
    return bridge.metrics().get('twsbridge_rep_requests_total{op="renew",outcome="ok"}', 0)


def run_history(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "consumers.history", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def test_history_waits_its_turn_renewing_leases_and_returns_every_page_as_one_series(
    pair: tuple[Simulator, Bridge], bus: BusClient
) -> None:
    """60 hours of 5-second bars are 60 TWS requests: more than one pacing window, so the first reply
    is a ticket; the helper asks again as told, renews the lease it holds meanwhile, and joins the 9
    pages of 5000 bars into one series."""
    _, bridge = pair
    held = bus.subscribe("MSFT", kind="trades", lease=12)  # renewed every 4 s; the fetch takes longer
    renews = renew_count(bridge)
    end = int(time.time()) // HOUR * HOUR
    waits: list[dict[str, Any]] = []
    bars = bus.history("AAPL", "5 secs", start=end - 60 * HOUR, end=end, rth=False, on_wait=waits.append)
    assert waits and waits[0]["state"] == "queued" and waits[0]["eta_s"] > 0 and "pacing" in waits[0]["message"]
    assert bars.instrument == "AAPL.STK.SMART.USD" and bars.requests == 60 and bars.columns[0] == "time"
    assert bars.column("time") == list(range(end - 60 * HOUR, end, 5))  # 43200 bars: no gap, no overlap
    assert renew_count(bridge) > renews, "the lease was renewed while the helper waited"
    assert bus.subscriptions[held.id] is held and held.id in bus.renew()["renewed"]  # never lapsed
    assert bridge.metrics().get("twsbridge_lease_expiries_total", 0) == 0
    request = {"op": "history", "instrument": "AAPL", "bar": "5 secs", "start": end - 60 * HOUR, "end": end,
               "rth": False}  # fmt: skip
    assert bars.rows == answer_pages(bridge, request, "bars")
    first = next(iter(bars))
    assert (first.time, first.close) == (bars.rows[0][0], bars.rows[0][4])


def test_ticks_follow_next_pages_to_the_same_ticks_whatever_the_page_size(bus: BusClient) -> None:
    start = int(time.time()) - 900
    small = bus.ticks("NVDA", start=start, end=start + 120, count=100, rth=False)
    whole = bus.ticks("NVDA", start=start, end=start + 120, rth=False)
    assert small.columns == ["time", "price", "size", "exchange", "conditions", "attrib"]
    assert len(small) > 100 and small.requests > 1 and small.rows == whole.rows
    times = small.column("time")
    assert times == sorted(times) and start <= times[0] and times[-1] < start + 120
    last = bus.ticks("NVDA", end=start, what="BID_ASK", count=5, rth=False)
    assert len(last) == 5 and all(row.bid <= row.ask and row.time <= start for row in last)


def test_reference_helpers_answer_head_timestamp_details_option_chain_and_search(bus: BusClient) -> None:
    assert 0 < bus.head_timestamp("AAPL") < time.time() - 365 * 86400
    (aapl,) = bus.details("AAPL")
    assert aapl["instrument"] == "AAPL.STK.SMART.USD" and aapl["sessions"] and aapl["contract"]["conId"] > 0
    assert len({m["instrument"] for m in bus.details("ES.FUT.CME")}) >= 2  # every month TWS has
    chains = bus.option_chain("SPY", exchange="CBOE")
    assert {c["exchange"] for c in chains} == {"CBOE"} and all(c["strikes"] == sorted(c["strikes"]) for c in chains)
    assert any(m["symbol"] == "AAPL" for m in bus.search("AAP"))


def test_a_refusal_raises_bridge_error_with_the_bridges_code_and_words(bus: BusClient) -> None:
    with pytest.raises(BridgeError) as refused:
        bus.history("NOSUCH", "1 hour")
    assert refused.value.code == "unknown_instrument" and "No security definition" in refused.value.error
    with pytest.raises(BridgeError) as bad:
        bus.history("AAPL", "1 secs", duration="1 D")
    assert bad.value.code == "bad_request" and "1800 S" in bad.value.error


def test_the_cli_writes_the_bridges_bars_as_csv_across_several_tws_requests(
    pair: tuple[Simulator, Bridge], tmp_path: Path
) -> None:
    _, bridge = pair
    end = int(time.time()) // 60 * 60
    iso_end = datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = tmp_path / "nvda.csv"
    done = run_history("NVDA", "--bar", "1min", "--days", "3", "--end", iso_end, "--all-hours", "--csv", str(out),
                       "--pub", bridge.pub, "--rep", bridge.rep)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "4 TWS requests" in done.stderr and "4320 1 min bars of NVDA.STK.SMART.USD" in done.stderr
    request = {"op": "history", "instrument": "NVDA", "bar": "1 min", "start": end - 3 * 86400, "end": end,
               "rth": False}  # fmt: skip
    expected = [["" if v is None else str(v) for v in row] for row in answer_pages(bridge, request, "bars")]
    with out.open(newline="") as f:
        header, *rows = list(csv.reader(f))
    assert header == ["time", "open", "high", "low", "close", "volume", "wap", "count"]
    assert rows == expected and len(rows) == 3 * 1440

    hours = end // HOUR * HOUR
    to_stdout = run_history("NVDA", "--bar", "1 hour", "--start", str(hours - 86400), "--end", str(hours),
                            "--all-hours", "--rep", bridge.rep)  # fmt: skip
    assert to_stdout.returncode == 0 and to_stdout.stdout.splitlines()[0].startswith("time,open")
    assert len(to_stdout.stdout.splitlines()) == 1 + 24


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["NOSUCH", "--bar", "1h"], "No security definition has been found"),
        (["AAPL", "--bar", "7min"], "IB has no 7 mins bars"),
        (["AAPL", "--start", "yesterday"], "is not a time"),
        (["AAPL", "--csv", "/nonexistent/dir/out.csv"], "cannot write /nonexistent/dir/out.csv"),
    ],
)
def test_the_cli_says_what_is_wrong_in_one_line_without_a_traceback(
    pair: tuple[Simulator, Bridge], args: list[str], says: str
) -> None:
    done = run_history(*args, "--rep", pair[1].rep, "--timeout", "5")
    assert done.returncode != 0 and says in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_the_cli_shows_its_place_in_line_and_ctrl_c_ends_the_wait_leaving_no_file(tmp_path: Path) -> None:
    out = tmp_path / "big.csv"
    with history_pair(tmp_path) as (_, bridge):
        cli = subprocess.Popen([sys.executable, "-u", "-m", "consumers.history", "MSFT", "--bar", "5s", "--days", "4",
                                "--csv", str(out), "--rep", bridge.rep], cwd=ROOT, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
        assert cli.stderr is not None
        line = cli.stderr.readline()
        assert "waiting for IB's historical pacing" in line and "requests ahead" in line, line
        assert "of 97 TWS requests done" in line and "the last starts in about" in line and "UTC)" in line
        cli.send_signal(signal.SIGINT)
        asked = time.monotonic()
        assert cli.wait(5) == 130 and time.monotonic() - asked < 1.0
        assert "Traceback" not in cli.stderr.read()
        assert not out.exists() and not list(tmp_path.glob("big.csv*"))


def test_the_bars_consumer_starts_with_history_bars_and_joins_live_ones_without_a_gap_or_an_overlap(
    pair: tuple[Simulator, Bridge], bus: BusClient
) -> None:
    """Another consumer has traded AMD for a few seconds; the bars consumer starts with the last 3
    one-second bars from history, then live bars: the first live bar began before it subscribed
    (marked partial, or from history when no trade came in it after subscribing), and every bar's
    start is one second after the one before."""
    _, bridge = pair
    bus.subscribe("AMD", kind="trades")  # someone else's line: the simulator's tape has trades to tell
    time.sleep(4.5)
    done = subprocess.run([sys.executable, "-m", "consumers.bars", "AMD", "--seconds-per-bar", "1", "--backfill", "3",
                           "--count", "7", "--grace", "0.3", "--pub", bridge.pub, "--rep", bridge.rep], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 0, done.stderr
    bars = [line for line in done.stdout.splitlines() if line.startswith("AMD.STK.SMART.USD ")]
    kinds = ["history" if b.endswith(" history") else "partial" if "partial" in b else "live" for b in bars]
    assert kinds in (["history"] * 3 + ["partial"] + ["live"] * 3, ["history"] * 4 + ["live"] * 3), done.stdout
    assert all("trades=0 " not in b for b in bars), "complete bars, each with its trades"
    starts = [sum(int(x) * k for x, k in zip(b.split()[1].split(":"), (3600, 60, 1), strict=True)) for b in bars]
    assert [(b - a) % 86400 for a, b in itertools.pairwise(starts)] == [1] * 6, done.stdout


def test_the_helpers_work_the_same_through_nats(pair: tuple[Simulator, Bridge], tmp_path: Path) -> None:
    """NatsBusClient asks through the relay with BusClient's own helpers: pages and all."""
    if shutil.which("nats-server") is None or importlib.util.find_spec("nats") is None:
        pytest.skip("nats-server or nats-py is not installed")
    from consumers.nats_client import NatsBusClient
    from tests.test_nats import NatsServer, Relay

    _, bridge = pair
    server = NatsServer(tmp_path)
    relay = Relay(tmp_path, bridge, server.url)
    try:
        midnight = int(time.time()) // 86400 * 86400
        with NatsBusClient(server.url) as remote:
            bars = remote.history("ADBE", "1 min", start=midnight - 2 * 86400, end=midnight, rth=False)
            assert bars.column("time") == list(range(midnight - 2 * 86400, midnight, 60))  # 2880 bars, 1 page
            many = remote.ticks("ADBE", start=midnight - 3600, end=midnight - 3000, count=100, rth=False)
            assert many.requests > 1 and many.rows == remote.ticks("ADBE", start=midnight - 3600,
                                                                   end=midnight - 3000, rth=False).rows  # fmt: skip
            assert any(m["symbol"] == "ADBE" for m in remote.search("ADB"))
    finally:
        relay.stop()
        server.stop()


def test_a_stop_signal_ends_a_helpers_wait_at_once(pair: tuple[Simulator, Bridge], bus: BusClient) -> None:
    """Run last in its module: the abandoned answer keeps the bridge's queue busy until its ticket lapses."""
    bus.stop_on_signals()
    end = int(time.time()) // HOUR * HOUR - 30 * 86400
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    began = time.monotonic()
    try:
        with pytest.raises(Stopped):
            bus.history("INTC", "5 secs", start=end - 80 * HOUR, end=end, rth=False)
    finally:
        timer.cancel()
    assert time.monotonic() - began < 2.0
