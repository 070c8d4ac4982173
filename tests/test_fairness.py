"""One client flooding the request socket must not starve the others (docs/bus.md, Fairness):
per-client lanes to TWS, a cap on a client's outstanding lookups, our own queue time said as
such, identical lookups shared, refused instruments remembered. Real simulator and bridge."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import msgpack
import zmq

from bridge.simulator import CATALOGUE
from tests.harness import Bridge, Simulator, recv, wait_for


def dealer(bridge: Bridge) -> zmq.Socket:
    sock = bridge.ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 15000)
    sock.connect(bridge.rep)
    return sock


def pipeline(sock: zmq.Socket, requests: list[dict[str, Any]]) -> None:
    for request in requests:
        sock.send_multipart([b"", msgpack.packb(request)])


def replies(sock: zmq.Socket, count: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(count):
        empty, body = sock.recv_multipart()
        assert empty == b""
        out.append(msgpack.unpackb(body))
    return out


def ok_or_none(reply: dict[str, Any]) -> dict[str, Any] | None:
    """The reply if it is ok; None when the bridge said busy (retry), an assertion otherwise."""
    assert reply["ok"] or reply["code"] == "busy", reply
    return reply if reply["ok"] else None


def unknown(symbols: list[str]) -> list[dict[str, Any]]:
    return [{"op": "subscribe", "instrument": s} for s in symbols]


def test_a_flooding_client_does_not_starve_another(bridge: Bridge, sim: Simulator) -> None:
    flood = dealer(bridge)
    sub = bridge.subscriber("quote/AAPL")
    time.sleep(0.2)
    pipeline(flood, unknown([f"ZZ{i:03d}" for i in range(400)]))
    time.sleep(0.05)  # the flood is at the bridge first
    started = time.monotonic()
    reply = bridge.request({"op": "subscribe", "instrument": "AAPL"}, timeout=10)
    took = time.monotonic() - started
    assert reply["ok"], reply
    assert took < 3.0, f"the second client waited {took:.1f} s behind the flood"
    topic, tick = recv(sub)
    assert topic == reply["topic"] and tick["instrument"] == "AAPL.STK.SMART.USD"
    answers = replies(flood, 400)
    codes = {a["code"] for a in answers}
    assert codes <= {"unknown_instrument", "busy"}, codes  # never a misleading timeout
    capped = [a for a in answers if a.get("limit") == 32]
    assert len(capped) >= 300 and "lookups_per_client" in capped[0]["error"]
    asked = sim.requests("ReqContractDetails")
    assert len([r for r in asked if r["symbol"].startswith("ZZ")]) <= 400 - len(capped)


def test_the_busy_cap_names_the_limit(tmp_path: Path, sim: Simulator) -> None:
    bridge = Bridge(tmp_path, sim.port, extra=["--lookups-per-client", "2"])
    try:
        sim.fault("farm", farm="secdef", seconds=3)  # lookups wait at TWS: they stay outstanding
        time.sleep(0.2)
        flood = dealer(bridge)
        pipeline(flood, unknown(["AAPL", "MSFT", "ZZ1"]))
        first = replies(flood, 1)[0]
        assert first["ok"] is False and first["code"] == "busy" and first["limit"] == 2
        assert "limit (lookups_per_client) is 2" in first["error"]
        rest = replies(flood, 2)
        assert all(r["ok"] for r in rest), rest  # answered once the farm is back
        assert bridge.request({"op": "subscribe", "instrument": "ETH.CRYPTO"})["ok"]  # another client: own cap
    finally:
        bridge.stop()


def test_waiting_in_our_own_queue_is_reported_as_such(tmp_path: Path, sim: Simulator) -> None:
    bridge = Bridge(tmp_path, sim.port, extra=["--queue-wait-max", "0.1"])
    try:
        flood = dealer(bridge)
        pipeline(flood, unknown([f"QQ{i:02d}" for i in range(30)]))
        answers = replies(flood, 30)
        queued = [a for a in answers if a["code"] == "busy"]
        assert queued, "30 lookups at 45 per 1.2 s cannot all go out within 0.1 s"
        assert all(a["queued_behind"] >= 0 and "TWS has not seen it" in a["error"] for a in queued)
        refused = [a for a in answers if a["code"] == "unknown_instrument"]
        assert len(refused) + len(queued) == 30
        # What waited too long was taken back: TWS never saw it.
        assert len([r for r in sim.requests("ReqContractDetails") if r["symbol"].startswith("QQ")]) == len(refused)
    finally:
        bridge.stop()


def test_a_refused_instrument_is_remembered_and_not_asked_again(bridge: Bridge, sim: Simulator) -> None:
    first = bridge.request({"op": "subscribe", "instrument": "NOPE"})
    assert first["code"] == "unknown_instrument" and first["tws_code"] == 200 and "remembered" not in first
    second = bridge.request({"op": "subscribe", "instrument": "NOPE"})
    assert second["code"] == "unknown_instrument" and second["tws_code"] == 200 and second["remembered"] is True
    assert "remembered from TWS's answer" in second["error"]
    assert len([r for r in sim.requests("ReqContractDetails") if r["symbol"] == "NOPE"]) == 1
    metrics = bridge.metrics()
    assert metrics["twsbridge_unknown_instrument_cache_hits_total"] == 1
    assert metrics['twsbridge_tws_request_wait_seconds_count{request="req_contract_details"}'] >= 1
    assert metrics['twsbridge_tws_request_wait_seconds_count{request="start_api"}'] == 1  # every write is paced


def test_identical_lookups_in_flight_are_shared(bridge: Bridge, sim: Simulator) -> None:
    flood = dealer(bridge)
    pipeline(flood, unknown(["SAME"] * 5))
    answers = replies(flood, 5)
    assert all(a["code"] == "unknown_instrument" and a["tws_code"] == 200 for a in answers), answers
    wait_for(lambda: sim.requests("ReqContractDetails"), 5, "the journal")
    assert len([r for r in sim.requests("ReqContractDetails") if r["symbol"] == "SAME"]) == 1


def test_unknown_instruments_are_asked_again_without_a_cache(tmp_path: Path, sim: Simulator) -> None:
    bridge = Bridge(tmp_path, sim.port, extra=["--unknown-instrument-ttl", "0"])
    try:
        for _ in range(2):
            reply = bridge.request({"op": "subscribe", "instrument": "NOPE"})
            assert reply["code"] == "unknown_instrument" and "remembered" not in reply
        assert len([r for r in sim.requests("ReqContractDetails") if r["symbol"] == "NOPE"]) == 2
    finally:
        bridge.stop()


def test_a_line_dropped_while_queued_is_taken_back_not_cancelled_ahead_of_its_request(
    tmp_path: Path, sim: Simulator
) -> None:
    """A cancel must never overtake its own request in the lanes: TWS would answer 300 to the
    cancel and then keep a line nobody wants."""
    bridge = Bridge(tmp_path, sim.port, extra=["--queue-wait-max", "0.2"])
    try:
        symbols = [i.contract.symbol for i in CATALOGUE if i.contract.sec_type == "STK"][:40]
        for symbol in symbols:  # known contracts: the pipelined subscribes below go straight to new lines
            reply = wait_for(lambda s=symbol: ok_or_none(bridge.request({"op": "subscribe", "instrument": s})), 10)
            assert bridge.request({"op": "unsubscribe", "id": reply["id"]})["ok"]
        flood = dealer(bridge)
        pipeline(flood, [{"op": "subscribe", "instrument": s} for s in symbols])
        answers = replies(flood, len(symbols))
        pipeline(flood, [{"op": "unsubscribe", "id": a["id"]} for a in reversed(answers)])  # the last first
        assert all(r["ok"] for r in replies(flood, len(symbols)))
        assert any("queued_behind" in a for a in answers), "some lines were dropped while still queued"
        wait_for(lambda: bridge.request({"op": "status"})["lines_in_use"] == 0, 10, "every line gone")
        time.sleep(2)  # what is queued reaches TWS
        first_seen: dict[int, str] = {}
        open_at_tws: set[int] = set()
        for row in sim.requests():
            if row["request"] in ("ReqMktData", "CancelMktData"):
                first_seen.setdefault(row["req_id"], row["request"])
                (open_at_tws.add if row["request"] == "ReqMktData" else open_at_tws.discard)(row["req_id"])
        assert set(first_seen.values()) == {"ReqMktData"}, "a cancel reached TWS before its request"
        assert not open_at_tws, f"lines left open at TWS: {sorted(open_at_tws)}"
        assert "TWS 300" not in bridge.output
    finally:
        bridge.stop()
