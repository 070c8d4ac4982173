"""Every request encoder, as bytes, and against the official client's own bytes."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from bridge.protocol import Contract, FrameReader, frame
from bridge.protocol import requests as rq
from bridge.protocol.server import parse_request

AAPL = Contract("AAPL", "STK", "SMART", "USD", primary_exchange="NASDAQ")
ES = Contract("ES", "FUT", "CME", "USD", con_id=0, last_trade_date_or_contract_month="202612", multiplier="50")


def fields(*values: str) -> bytes:
    return b"".join(v.encode() + b"\0" for v in values)


CONTRACT_AAPL = ("0", "AAPL", "STK", "", "", "", "", "SMART", "NASDAQ", "USD", "", "")

EXPECTED: list[tuple[rq.Request, bytes]] = [
    (rq.StartApi(7), fields("71", "2", "7", "")),
    (rq.ReqIds(), fields("8", "1", "1")),
    (rq.ReqCurrentTime(), fields("49", "1")),
    (rq.ReqMarketDataType(3), fields("59", "1", "3")),
    (
        rq.ReqMktData(4, AAPL, "233,236", False, False),
        fields("1", "11", "4", *CONTRACT_AAPL, "0", "233,236", "0", "0", ""),
    ),
    (rq.ReqMktData(4, AAPL, "", True, True), fields("1", "11", "4", *CONTRACT_AAPL, "0", "", "1", "1", "")),
    (rq.CancelMktData(4), fields("2", "2", "4")),
    (rq.ReqTickByTickData(5, AAPL, "BidAsk", 0, True), fields("97", "5", *CONTRACT_AAPL, "BidAsk", "0", "1")),
    (rq.CancelTickByTickData(5), fields("98", "5")),
    (rq.ReqRealTimeBars(6, AAPL, "MIDPOINT", True), fields("50", "3", "6", *CONTRACT_AAPL, "5", "MIDPOINT", "1", "")),
    (rq.CancelRealTimeBars(6), fields("51", "1", "6")),
    (rq.ReqMktDepth(7, AAPL, 10, True), fields("10", "5", "7", *CONTRACT_AAPL, "10", "1", "")),
    (rq.CancelMktDepth(7, True), fields("11", "1", "7", "1")),
    (rq.ReqContractDetails(8, AAPL), fields("9", "8", "8", *CONTRACT_AAPL, "0", "", "", "")),
]


@pytest.mark.parametrize(("request_", "payload"), EXPECTED, ids=lambda x: type(x).__name__)
def test_request_bytes(request_: rq.Request, payload: bytes) -> None:
    assert rq.encode_request(request_, 200) == frame(payload)


@pytest.mark.parametrize(("request_", "payload"), EXPECTED, ids=lambda x: type(x).__name__)
def test_requests_parse_back_on_the_server_side(request_: rq.Request, payload: bytes) -> None:
    assert parse_request(payload, 200) == request_


def test_contract_details_has_no_issuer_id_before_176() -> None:
    assert rq.encode_request(rq.ReqContractDetails(8, AAPL), 175) == frame(
        fields("9", "8", "8", *CONTRACT_AAPL, "0", "", "")
    )


def test_from_201_the_request_id_is_four_raw_bytes() -> None:
    assert rq.encode_request(rq.CancelMktData(4), 201) == frame(b"\x00\x00\x00\x02" + fields("2", "4"))


def test_anything_but_our_request_types_is_refused() -> None:
    with pytest.raises(TypeError, match="not a request tws-bridge can send"):
        rq.encode_request((3, "BUY"), 200)  # type: ignore[arg-type]


# --- the official client writes the same bytes ---------------------------------------------


class RecordingServer:
    """A loopback TCP server that answers the handshake and records every frame after it."""

    def __init__(self, server_version: int) -> None:
        self.version = server_version
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.frames: list[bytes] = []
        self.arrived = threading.Condition()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        sock, _ = self.listener.accept()
        reader = FrameReader()
        assert sock.recv(4) == b"API\0"
        greeted = False
        while data := sock.recv(65536):
            reader.feed(data)
            for payload in reader.frames():
                if not greeted:
                    greeted = True
                    sock.sendall(frame(b"%d\0%s\0" % (self.version, b"20261125 14:00:00 UTC")))
                    continue
                with self.arrived:
                    self.frames.append(payload)
                    self.arrived.notify_all()

    def next_frame(self, index: int) -> bytes:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.frames) > index, timeout=5)
            return self.frames[index]


@pytest.fixture(params=[157, 176, 200])
def official(request: pytest.FixtureRequest) -> Iterator[tuple[object, RecordingServer]]:
    from ibapi.client import EClient
    from ibapi.wrapper import EWrapper

    server = RecordingServer(request.param)
    client = EClient(EWrapper())
    client.connect("127.0.0.1", server.port, 7)
    yield client, server
    client.disconnect()


def ib_contract(c: Contract) -> object:
    from ibapi.contract import Contract as IbContract

    out = IbContract()
    out.symbol, out.secType, out.exchange, out.currency = c.symbol, c.sec_type, c.exchange, c.currency
    out.primaryExchange, out.lastTradeDateOrContractMonth, out.multiplier = (
        c.primary_exchange,
        c.last_trade_date_or_contract_month,
        c.multiplier,
    )
    return out


CASES: list[tuple[Callable[..., None], rq.Request]] = [
    (lambda c: c.reqIds(1), rq.ReqIds(1)),
    (lambda c: c.reqCurrentTime(), rq.ReqCurrentTime()),
    (lambda c: c.reqMarketDataType(3), rq.ReqMarketDataType(3)),
    (lambda c: c.reqMktData(4, ib_contract(AAPL), "233", False, False, []), rq.ReqMktData(4, AAPL, "233")),
    (lambda c: c.reqMktData(4, ib_contract(ES), "", True, False, []), rq.ReqMktData(4, ES, "", True)),
    (lambda c: c.cancelMktData(4), rq.CancelMktData(4)),
    (lambda c: c.reqTickByTickData(5, ib_contract(AAPL), "Last", 0, False), rq.ReqTickByTickData(5, AAPL, "Last")),
    (lambda c: c.cancelTickByTickData(5), rq.CancelTickByTickData(5)),
    (lambda c: c.reqRealTimeBars(6, ib_contract(AAPL), 5, "TRADES", False, []), rq.ReqRealTimeBars(6, AAPL)),
    (lambda c: c.cancelRealTimeBars(6), rq.CancelRealTimeBars(6)),
    (lambda c: c.reqMktDepth(7, ib_contract(AAPL), 5, True, []), rq.ReqMktDepth(7, AAPL, 5, True)),
    (lambda c: c.cancelMktDepth(7, True), rq.CancelMktDepth(7, True)),
    (lambda c: c.reqContractDetails(8, ib_contract(ES)), rq.ReqContractDetails(8, ES)),
]


def test_our_requests_match_the_official_clients_bytes(official: tuple[object, RecordingServer]) -> None:
    client, server = official
    start_api = server.next_frame(0)  # the official client sends startApi on connect
    assert start_api == rq.encode_request(rq.StartApi(7), server.version)[4:]
    for index, (call, ours) in enumerate(CASES, start=1):
        call(client)
        assert server.next_frame(index) == rq.encode_request(ours, server.version)[4:], type(ours).__name__
