"""The simulator's history over real TCP: bars that end where its live market begins, keepUpToDate,
ticks, head timestamps, option chains, and IB's historical pacing enforced with error 162."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest

from bridge.protocol import Contract
from bridge.protocol import events as ev
from bridge.protocol import requests as rq
from bridge.simulator import Market, SimulatorThread, lookup
from bridge.simulator.history import History
from bridge.simulator.history_pacing import HistoryLimits
from bridge.simulator.history_spec import check_bar_request

from .twsclient import Client, error_with, of

AAPL = Contract("AAPL", "STK", "SMART", "USD")
BTC = Contract("BTC", "CRYPTO", "PAXOS", "USD")
EUR = Contract("EUR", "CASH", "IDEALPRO", "USD")
SPY = Contract("SPY", "STK", "SMART", "USD")
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorThread]:
    """Pacing off: these tests are about the data."""
    with SimulatorThread(rate=20, seed=7, history_limits=HistoryLimits(enforced=False)) as s:
        yield s


@pytest.fixture
def client(sim: SimulatorThread) -> Iterator[Client]:
    c = Client(sim.port, client_id=next(_ids))
    c.wait_for(of(ev.NextValidId))
    yield c
    c.close()


def bars_of(c: Client, req_id: int, timeout: float = 10) -> list[ev.HistoricalBar]:
    data = c.wait_for(of(ev.HistoricalData, req_id), timeout)
    assert isinstance(data, ev.HistoricalData)
    c.wait_for(of(ev.HistoricalDataEnd, req_id))  # server 200: the end is its own message
    return list(data.bars)


def test_history_ends_where_live_begins_and_agrees_with_the_trades_sent_live(client: Client) -> None:
    client.send(rq.ReqTickByTickData(1, BTC, "AllLast"))
    client.wait_for(of(ev.TickByTickLast, 1))
    time.sleep(3.2)
    trades = [e for e in client.collect(0.3) if isinstance(e, ev.TickByTickLast) and e.req_id == 1]
    client.send(rq.CancelTickByTickData(1))
    client.send(rq.ReqHistoricalData(2, BTC, "", "60 S", "1 secs", "TRADES", False, 2))
    bars = {int(b.date): b for b in bars_of(client, 2)}
    by_second: dict[int, list[ev.TickByTickLast]] = {}
    for t in trades:
        by_second.setdefault(t.time, []).append(t)
    complete = sorted(by_second)[1:-1]  # the first and last second may hold trades sent before or after
    assert len(complete) >= 2
    for second in complete:
        bar, prints = bars[second], by_second[second]
        assert bar.close == prints[-1].price
        assert bar.high == max(p.price for p in prints) and bar.low == min(p.price for p in prints)
        assert bar.volume == pytest.approx(sum(p.size or 0 for p in prints))


def test_the_seeded_path_before_live_ends_at_the_opening_price(sim: SimulatorThread, client: Client) -> None:
    client.send(rq.ReqHistoricalData(3, SPY, "", "2 D", "1 hour", "MIDPOINT", False, 2))
    bars = bars_of(client, 3)
    assert len(bars) >= 47 and all(b.volume == -1 and b.bar_count == -1 for b in bars)
    opening = sim.simulator.market.tapes[756733].opening_mid
    origin = int(sim.simulator.market.tapes[756733].opened) // 60 * 60
    client.send(rq.ReqHistoricalData(4, SPY, "", "1800 S", "1 min", "MIDPOINT", False, 2))
    minutes = {int(b.date): b for b in bars_of(client, 4)}
    assert minutes[origin - 60].close == opening == minutes[origin].open


def test_the_same_seed_draws_the_same_past() -> None:
    def past(seed: int) -> tuple[int, list[ev.HistoricalBar]]:
        history = History(Market(seed))
        inst = lookup(AAPL)[0]
        origin = int(history.tape(inst).opened) // 60 * 60
        request = check_bar_request("", "1 D", "5 mins", "TRADES", False, 2, False, origin - 3 * 86400)
        return origin, history.bars(inst, request)

    (origin_a, a), (origin_b, b), (_, c) = past(7), past(7), past(8)
    if origin_a == origin_b:  # opened in the same minute, so the path ends at the same place and time
        assert a == b
    assert [x.close for x in a] != [x.close for x in c]


def test_keep_up_to_date_streams_the_forming_bar_until_cancelled(client: Client) -> None:
    client.send(rq.ReqHistoricalData(6, BTC, "", "300 S", "5 secs", "TRADES", False, 2, True))
    bars = bars_of(client, 6)
    update = client.wait_for(of(ev.HistoricalDataUpdate, 6), timeout=5)
    assert isinstance(update, ev.HistoricalDataUpdate)
    assert int(update.bar.date) >= int(bars[-1].date) and update.bar.volume and update.bar.volume > 0
    client.send(rq.CancelHistoricalData(6))
    client.wait_for(error_with(162, 6))  # "API historical data query cancelled: 6"
    client.collect(0.3)
    assert not [e for e in client.collect(0.5) if isinstance(e, ev.HistoricalDataUpdate)]
    client.send(rq.CancelHistoricalData(6))
    assert "No historical data query found for ticker id:6" in client.wait_for(error_with(366, 6)).message  # type: ignore[union-attr]


def test_bad_bar_sizes_and_combinations_get_321_and_forex_trades_162(client: Client) -> None:
    client.send(rq.ReqHistoricalData(7, AAPL, "", "1 D", "1 sec", "TRADES", False, 1))
    assert "Legal ones are: 1 secs" in client.wait_for(error_with(321, 7)).message  # type: ignore[union-attr]
    client.send(rq.ReqHistoricalData(8, AAPL, "", "1 D", "1 secs", "TRADES", False, 1))
    client.wait_for(error_with(321, 8))
    client.send(rq.ReqHistoricalData(9, EUR, "", "1 D", "1 hour", "TRADES", False, 1))
    message = client.wait_for(error_with(162, 9)).message  # type: ignore[union-attr]
    assert (
        message == "Historical Market Data Service error message:HMDS query returned no data: EUR.USD@IDEALPRO Trades"
    )


def test_daily_bars_are_dated_by_day_and_intraday_by_zone(client: Client) -> None:
    client.send(rq.ReqHistoricalData(10, AAPL, "", "1 M", "1 day", "TRADES", True, 1))
    days = bars_of(client, 10)
    assert all(len(b.date) == 8 and b.date.isdigit() for b in days) and 15 <= len(days) <= 24
    client.send(rq.ReqHistoricalData(11, AAPL, "", "3600 S", "15 mins", "BID_ASK", False, 1))
    assert all(b.date.endswith(" US/Eastern") for b in bars_of(client, 11))


def test_historical_ticks_head_timestamp_and_option_chain(client: Client) -> None:
    client.send(rq.ReqHistoricalTicks(12, AAPL, "", time.strftime("%Y%m%d-%H:%M:%S", time.gmtime()), 50, "TRADES"))
    last = client.wait_for(of(ev.HistoricalTicksLast, 12))
    assert isinstance(last, ev.HistoricalTicksLast) and len(last.ticks) == 50 and last.done
    client.send(rq.ReqHistoricalTicks(13, EUR, "20261201 10:00:00 US/Eastern", "", 2000, "BID_ASK"))
    client.wait_for(error_with(321, 13))  # at most 1000
    client.send(rq.ReqHeadTimestamp(14, AAPL, "TRADES", False, 2))
    head = client.wait_for(of(ev.HeadTimestamp, 14))
    assert isinstance(head, ev.HeadTimestamp) and int(head.head_timestamp) < time.time() - 700 * 86400
    client.send(rq.ReqSecDefOptParams(15, "SPY", "", "STK", 756733))
    rows = []
    while True:
        e = client.wait_for(
            lambda e: isinstance(e, ev.SecurityDefinitionOptionParameter | ev.SecurityDefinitionOptionParameterEnd)
        )
        if isinstance(e, ev.SecurityDefinitionOptionParameterEnd):
            break
        rows.append(e)
    smart = next(r for r in rows if r.exchange == "SMART")
    assert smart.trading_class == "SPY" and smart.multiplier == "100" and len(smart.strikes) == 5
    assert len(smart.expirations) == 2


# --- pacing -------------------------------------------------------------------------------------


def test_pacing_violations_get_162_and_are_counted() -> None:
    limits = HistoryLimits().scaled(0.05)  # 10 min -> 30 s, 15 s -> 0.75 s, 2 s -> 0.1 s
    with SimulatorThread(seed=1, history_limits=limits) as sim:
        c = Client(sim.port, client_id=1)
        c.wait_for(of(ev.NextValidId))
        same = rq.ReqHistoricalData(1, AAPL, "", "1800 S", "1 min", "TRADES", False, 2)
        c.send(same)
        bars_of(c, 1)
        c.send(same._replace(req_id=2))  # identical within 15 s (scaled)
        pacing = c.wait_for(error_with(162, 2))
        assert pacing.message == "Historical Market Data Service error message:Historical data request pacing violation"  # type: ignore[union-attr]
        time.sleep(0.8)
        c.send(same._replace(req_id=3))  # the window has passed
        bars_of(c, 3)
        assert sim.counters()["history_pacing_violations"] == 1
        time.sleep(0.2)
        for i in range(4, 10):  # six for one contract, exchange and type within 2 s (scaled)
            c.send(same._replace(req_id=i, duration=f"{1800 + i} S"))
        c.wait_for(error_with(162, 9))
        assert sim.counters()["history_pacing_violations_burst"] >= 1
        c.close()


def test_bid_ask_counts_twice_toward_sixty_in_ten_minutes() -> None:
    limits = HistoryLimits(max_requests=4, burst_requests=100)
    with SimulatorThread(seed=1, history_limits=limits) as sim:
        c = Client(sim.port, client_id=1)
        c.wait_for(of(ev.NextValidId))
        base = rq.ReqHistoricalData(1, AAPL, "", "1800 S", "1 min", "BID_ASK", False, 2)
        c.send(base)
        bars_of(c, 1)
        c.send(base._replace(req_id=2, duration="1700 S"))
        bars_of(c, 2)
        c.send(base._replace(req_id=3, duration="1600 S", what_to_show="TRADES"))
        c.wait_for(error_with(162, 3))  # 2 + 2 already: a fifth request is one too many
        assert sim.counters() == {
            "history_requests": 2, "history_pacing_violations": 1, "history_pacing_violations_rate": 1,
            "history_streams": 0,
        }  # fmt: skip
        c.close()


def test_the_control_port_reports_the_pacing_counters() -> None:
    import json
    import socket

    with SimulatorThread(seed=1, control_port=0) as sim:
        sock = socket.create_connection(("127.0.0.1", sim.simulator.control_port), timeout=5)
        sock.sendall(b'{"query": "counters"}\n')
        answer = json.loads(sock.makefile("rb").readline())
        sock.close()
    assert answer == {"ok": True, "counters": {"history_requests": 0, "history_pacing_violations": 0,
                                               "history_streams": 0}}  # fmt: skip


def test_the_forming_bar_is_the_one_that_holds_now_to_its_last_second() -> None:
    """keepUpToDate updates the bar that holds `now`, also in that bar's last second (TWS does)."""
    history = History(Market(3))
    inst = lookup(AAPL)[0]
    start = int(history.tape(inst).opened) // 60 * 60 - 600  # on the seeded path: data at every second
    for now in (start + 0.0, start + 2.5, start + 4.5, start + 4.999):
        request = check_bar_request("", "1800 S", "5 secs", "MIDPOINT", False, 2, True, now)
        bar = history.forming(inst, request, now)
        assert bar is not None and int(bar.date) == start, (now, bar)
