"""Input hygiene: nothing a REQ client sends can shift a TWS field, flood the log or wedge the socket.

The first tests drive arbitrary subscribe requests through the real request parsing and the real
encoder, and read the bytes back with the server side of the protocol; the rest run the bridge
and the simulator as processes and talk to them over real sockets.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq
import zmq.asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.book import Line, LineKey
from bridge.config import Settings
from bridge.limits import MAX_RENEW_IDS, MAX_REQUEST_BYTES
from bridge.lines import tws_request
from bridge.logsafe import Throttled, escape, quote
from bridge.ops import KINDS, MARKET_DATA_TYPES, RequestError, parse_request, subscribe_args
from bridge.protocol import MAX_SUPPORTED, MIN_SUPPORTED, Contract
from bridge.protocol import events as ev
from bridge.protocol import requests as rq
from bridge.protocol.fields import FieldError
from bridge.protocol.server import parse_request as parse_at_tws
from bridge.protocol.versions import MIN_SERVER_VER_RAW_INT_MSG_ID
from bridge.service import Bridge as ServiceBridge
from tests.fake_tws import FakeTws
from tests.harness import Bridge, Simulator, free_port, wait_for

VERSIONS = (MIN_SUPPORTED, MAX_SUPPORTED, MIN_SERVER_VER_RAW_INT_MSG_ID)

# Text that is mostly harmless, with the characters that break a NUL-separated wire mixed in.
nasty_char = st.sampled_from(["\x00", "\n", "\r", "\t", "\x1b", "\x7f", "\x85", "\u2028", "é", "\ufeff", ".", " "])
piece = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=6)
nasty = st.lists(piece | nasty_char | st.text(max_size=4), max_size=5).map("".join)
plain = st.sampled_from(["AAPL", "STK", "SMART", "USD", "BTC", "CRYPTO", "BAG", "20261218", "C", "100", "ES  Z6"])
text = st.one_of(plain, plain, plain, nasty)  # mostly plain, so many requests get as far as the wire
short_form = st.lists(text, min_size=1, max_size=7).map(".".join)
number = st.integers(-(2**63), 2**64 - 1) | st.floats() | st.booleans()
contract_map = st.fixed_dictionaries(
    {"symbol": text, "secType": text, "exchange": text, "currency": text},
    optional={
        "conId": number, "primaryExchange": text, "lastTradeDateOrContractMonth": text, "strike": number,
        "right": text, "multiplier": text, "localSymbol": text,
    },
)  # fmt: skip
subscribe = st.fixed_dictionaries(
    {"op": st.just("subscribe"), "instrument": short_form | contract_map},
    optional={"kind": st.sampled_from(KINDS), "market_data_type": st.sampled_from(sorted(MARKET_DATA_TYPES)),
              "generic_ticks": text | st.sampled_from(["233", "100,101,233"]), "lease": number},
)  # fmt: skip


def _tws_requests(contract: Contract, kind: str, md_type: str, generic: str) -> list[rq.Request]:
    """What the bridge sends for a subscribe: the contract lookup, then the line's data request."""
    line = Line(LineKey("X", kind, md_type, generic), contract, 7, b"x")
    return [rq.ReqContractDetails(7, contract), tws_request(line, 7)]


def _fields(framed: bytes, version: int) -> tuple[bytes, list[bytes]]:
    """(message id, fields) as TWS splits a message of ours."""
    payload = framed[4:]
    if version >= MIN_SERVER_VER_RAW_INT_MSG_ID:
        return payload[:4], payload[4:].split(b"\0")
    msg_id, *fields = payload.split(b"\0")
    return msg_id, fields


def _expected_field_count(request: rq.Request, version: int) -> int:
    """The field count of the same request for a plain instrument: the layout, whatever the input."""
    benign = request._replace(contract=Contract("A", "STK", "SMART", "USD"))  # type: ignore[union-attr]
    return len(_fields(rq.encode_request(benign, version), version)[1])


@settings(max_examples=400, deadline=None)
@given(request=subscribe)
def test_no_subscribe_request_can_shift_a_field_on_the_tws_wire(request: dict[str, Any]) -> None:
    try:  # as the bridge reads it: msgpack bytes off the socket, then the subscribe's arguments
        contract, kind, md_type, generic, _lease = subscribe_args(parse_request(msgpack.packb(request)), 30.0)
    except RequestError as exc:
        assert exc.code == "bad_request" and exc.message
        return
    for tws in _tws_requests(contract, kind, md_type, generic):
        for version in VERSIONS:
            framed = rq.encode_request(tws, version)
            assert len(_fields(framed, version)[1]) == _expected_field_count(tws, version)
            back = parse_at_tws(framed[4:], version)
            assert type(back) is type(tws)
            assert back.contract[:12] == tws.contract[:12]  # type: ignore[union-attr]
            if isinstance(tws, rq.ReqMktData):
                assert back.generic_ticks == generic  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("instrument", "says"),
    [
        ("AAPL\x00X", "symbol 'AAPL\\x00X' holds '\\x00'"),
        ("AAPL.STK.SMART.US\nD", "currency"),
        ("AAPL.BAG", "combos (BAG) are not supported"),
        ("X" * 33, "the limit is 32"),
        ({"symbol": "AAPL", "secType": "STK", "exchange": "SMART", "currency": "USD", "localSymbol": "A\x00B"},
         "localSymbol"),
        ({"symbol": "AAPL", "secType": "STK", "exchange": "SMART", "currency": "USD", "strike": float("nan")},
         "strike"),
        ({b"symbol": "AAPL", "secType": "STK"}, "keys must be strings"),
    ],
)  # fmt: skip
def test_bad_text_is_refused_naming_the_field_and_the_rule(instrument: object, says: str) -> None:
    with pytest.raises(RequestError) as caught:
        subscribe_args({"op": "subscribe", "instrument": instrument}, 30.0)
    assert caught.value.code == "bad_request" and says in caught.value.message


def test_the_encoder_itself_refuses_a_nul_whatever_checked_before() -> None:
    for version in VERSIONS:
        with pytest.raises(FieldError):
            rq.encode_request(rq.ReqMktData(1, Contract("AAPL\x00X", "STK", "SMART", "USD")), version)
        with pytest.raises(FieldError):
            rq.encode_request(rq.ReqMktData(1, Contract("AAPL", "STK", "SMART", "USD"), "233\x00"), version)


# --- the running bridge ----------------------------------------------------------------------------


def _req_socket(bridge: Bridge, timeout: float = 5.0) -> zmq.Socket:
    sock = bridge.ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
    sock.connect(bridge.rep)
    return sock


def test_control_characters_are_refused_and_never_reach_tws(bridge: Bridge, sim: Simulator) -> None:
    refused = [
        ("AAPL\x00X", "symbol"),
        ("AAPL.STK\x00X", "secType"),
        ("AAPL.STK.SMART.U\r\nSD", "currency"),
        ({"symbol": "AAPL", "secType": "STK", "exchange": "SMART\x00X", "currency": "USD"}, "exchange"),
        ({"symbol": "AAPL", "secType": "STK", "exchange": "SMART", "currency": "USD", "localSymbol": "A\x00X"},
         "localSymbol"),
        ("AA\u2028PL", "symbol"),
    ]  # fmt: skip
    for instrument, field in refused:
        reply = bridge.request({"op": "subscribe", "instrument": instrument})
        assert reply["ok"] is False and reply["code"] == "bad_request" and field in reply["error"], reply
        assert "printable ASCII" in reply["error"]
    reply = bridge.request({"op": "subscribe", "instrument": "AAPL", "generic_ticks": "233\x00X"})
    assert reply["code"] == "bad_request" and "generic_ticks" in reply["error"]
    assert bridge.request({"op": "subscribe", "instrument": "AAPL"})["ok"]  # the good one still works
    rows = [r for r in sim.journal_rows() if r.get("symbol")]
    assert rows and {(r["symbol"], r["sec_type"]) for r in rows} == {("AAPL", "STK")}, rows
    assert bridge.metrics()['twsbridge_rep_bad_requests_total{reason="bad_text"}'] == len(refused) + 1


def test_a_forged_newline_in_op_is_logged_escaped_and_clipped(bridge: Bridge) -> None:
    forged = "ping\n2026-12-03 10:00:00,000 WARNING tws-bridge: FORGED"
    assert bridge.request({"op": forged})["code"] == "bad_request"
    huge = "x" * 60_000
    assert bridge.request({"op": huge})["code"] == "bad_request"
    wait_for(lambda: "\\n2026-12-03" in bridge.output and "...(+" in bridge.output, 5, "the refusals in the log")
    lines = bridge.output.splitlines()
    assert not any(line.startswith("2026-12-03 10:00:00,000") for line in lines)
    assert max(len(line) for line in lines) < 1000, "a 60 KB op must not write a 60 KB line"


def test_a_junk_flood_logs_a_bounded_number_of_lines_and_counts_the_rest(bridge: Bridge) -> None:
    flood = 3000
    dealer = bridge.ctx.socket(zmq.DEALER)  # sends without waiting for replies: a real flood
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(bridge.rep)
    before = len(bridge.output)
    for i in range(flood):
        dealer.send_multipart([b"", b"\xc1junk %d\n2026-12-03 FORGED" % i])
    replies = 0
    dealer.setsockopt(zmq.RCVTIMEO, 10_000)
    while replies < flood:
        delimiter, body = dealer.recv_multipart()
        assert delimiter == b"" and msgpack.unpackb(body)["code"] == "bad_request"
        replies += 1
    metric = 'twsbridge_rep_bad_requests_total{reason="not_msgpack"}'
    wait_for(lambda: bridge.metrics()[metric] == flood, 10, "every junk message counted")
    # At most a burst per 10 s window is logged, then one line with the count of the rest.
    summary = wait_for(lambda: re.search(r"and (\d+) more bad requests", bridge.output), 20, "the suppressed count")
    logged = bridge.output[before:]
    refusals = logged.count("refused a bad request")
    assert refusals <= 15 and refusals + int(summary.group(1)) <= flood
    assert len(logged) < 10_000, f"{len(logged)} bytes of log for {flood} junk messages"
    assert not any(line.startswith("2026-12-03 FORGED") for line in logged.splitlines())
    dealer.close()


def test_a_200_kb_request_gets_an_error_reply_and_the_socket_keeps_working(bridge: Bridge) -> None:
    sock = _req_socket(bridge)
    sock.send(msgpack.packb({"op": "ping", "pad": "x" * 200_000}))
    reply = msgpack.unpackb(sock.recv())
    assert reply["code"] == "bad_request" and f"{MAX_REQUEST_BYTES}-byte limit" in reply["error"], reply
    sock.send(msgpack.packb({"op": "ping"}))
    assert msgpack.unpackb(sock.recv())["ok"] is True
    sock.close()
    assert bridge.metrics()['twsbridge_rep_bad_requests_total{reason="too_large"}'] == 1


def test_a_request_over_the_frame_limit_drops_only_that_client(bridge: Bridge) -> None:
    sock = _req_socket(bridge, timeout=2)
    sock.send(b"\x00" * (2 * 1024 * 1024))  # over MAX_FRAME_BYTES: documented as no reply
    with pytest.raises(zmq.Again):
        sock.recv()
    sock.close()
    assert bridge.request({"op": "ping"})["ok"] is True


def test_a_two_frame_request_gets_an_error_reply(bridge: Bridge) -> None:
    sock = _req_socket(bridge)
    sock.send_multipart([msgpack.packb({"op": "ping"}), b"second frame"])
    reply = msgpack.unpackb(sock.recv())
    assert reply["code"] == "bad_request" and "one frame" in reply["error"] and "got 2 frames" in reply["error"]
    sock.send(msgpack.packb({"op": "ping"}))
    assert msgpack.unpackb(sock.recv())["ok"] is True
    sock.close()
    dealer = bridge.ctx.socket(zmq.DEALER)  # no empty delimiter frame: not a REQ, told so
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.setsockopt(zmq.RCVTIMEO, 5000)
    dealer.connect(bridge.rep)
    dealer.send(msgpack.packb({"op": "ping"}))
    reply = msgpack.unpackb(dealer.recv())
    assert reply["code"] == "bad_request" and "REQ socket" in reply["error"]
    dealer.close()
    metrics = bridge.metrics()
    assert metrics['twsbridge_rep_bad_requests_total{reason="multipart"}'] == 1
    assert metrics['twsbridge_rep_bad_requests_total{reason="no_envelope"}'] == 1


def test_renew_over_the_id_limit_names_the_limit(bridge: Bridge) -> None:
    reply = bridge.request({"op": "renew", "ids": ["a"] * (MAX_RENEW_IDS + 1)})
    assert reply["code"] == "bad_request" and f"limit of {MAX_RENEW_IDS} ids" in reply["error"], reply
    reply = bridge.request({"op": "renew", "ids": [f"{i:016x}" for i in range(MAX_RENEW_IDS)]})
    assert reply["ok"] and len(reply["unknown"]) == MAX_RENEW_IDS  # the most real ids fit in a request


def test_tws_words_are_logged_escaped(tmp_path: Path) -> None:
    forged = "\n2026-12-03 10:00:00,000 ERROR tws-bridge: FORGED"

    def answer(tws: FakeTws, request: object) -> list[bytes]:
        if isinstance(request, rq.StartApi):
            return tws.send(ev.Error(-1, 2104, "farm OK" + forged))
        if isinstance(request, rq.ReqMktData):
            return tws.send(ev.Error(request.req_id, 354, "not subscribed" + forged))
        return []

    tws = FakeTws(answer)
    bridge = Bridge(tmp_path, tws.port)
    try:
        reply = bridge.request({"op": "subscribe", "instrument": "AAPL"})
        assert reply["code"] == "tws_error" and reply["tws_code"] == 354
        wait_for(lambda: "farm OK\\n2026" in bridge.output and "not subscribed\\n2026" in bridge.output, 5, "log")
        assert not any(line.startswith("2026-12-03 10:00:00,000") for line in bridge.output.splitlines())
    finally:
        bridge.stop()
        tws.close()


# --- a bug of ours still gets a reply --------------------------------------------------------------


class _Buggy(ServiceBridge):
    async def handle(self, request: dict[str, Any], client: bytes = b"") -> dict[str, Any]:
        if request["op"] == "boom":
            raise ZeroDivisionError("a bug")
        return await super().handle(request, client)


def test_an_unexpected_exception_gets_an_internal_reply_and_one_traceback(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(pub=f"tcp://127.0.0.1:{free_port()}", rep=f"tcp://127.0.0.1:{free_port()}", metrics="")

    async def run() -> list[dict[str, Any]]:
        bridge = _Buggy(settings)
        bridge.bind()
        serving = asyncio.create_task(bridge._serve_requests())
        ctx = zmq.asyncio.Context()
        replies = []
        for op in ("boom", "boom", "ping"):
            sock = ctx.socket(zmq.REQ)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(settings.rep)
            await sock.send(msgpack.packb({"op": op}))
            replies.append(msgpack.unpackb(await asyncio.wait_for(sock.recv(), 5)))
            sock.close()
        serving.cancel()
        ctx.term()
        bridge.router.close(0)
        bridge.pub.close(0)
        bridge._ctx.term()
        return replies

    with caplog.at_level(logging.INFO, logger="tws-bridge"):
        first, second, ping = asyncio.run(run())
    assert first["code"] == second["code"] == "internal" and first["ok"] is False and "logged" in first["error"]
    assert ping["ok"] is True
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1 and "ZeroDivisionError" in caplog.text


# --- logsafe ---------------------------------------------------------------------------------------


@given(st.text() | st.binary())
def test_quoted_input_is_one_short_line(value: str | bytes) -> None:
    shown = quote(value)
    assert shown.isprintable() and "\n" not in shown and len(shown) <= 10 * 80 + 30
    if len(value) <= 80:
        assert shown == repr(value)


@given(st.text())
def test_escaped_text_is_one_line_and_printable_text_is_left_alone(text: str) -> None:
    shown = escape(text)
    assert shown.isprintable()
    if text.isprintable() and len(text) <= 240:
        assert shown == text


def test_throttled_logs_a_burst_per_interval_then_the_count(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    throttled = Throttled(logging.getLogger("t"), logging.WARNING, interval=10, burst=3, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="t"):
        logged = [throttled.log("junk %d", i) for i in range(100)]
        assert logged.count(True) == 3 and len(caplog.records) == 3
        now[0] = 9.9
        throttled.flush()
        assert len(caplog.records) == 3
        now[0] = 10.0
        throttled.flush()
        assert caplog.records[-1].getMessage() == "... and 97 more similar lines in 10 s (not logged)"
        assert throttled.log("junk again")  # a new interval, a new burst
