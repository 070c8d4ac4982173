"""The TWS request behind each data kind, and the request that cancels it."""

from __future__ import annotations

from .book import Line
from .protocol import requests as rq

TICK_BY_TICK = {"trades": "Last", "alltrades": "AllLast", "bidask": "BidAsk", "midpoint": "MidPoint"}
EPOCH_DATES = 2  # formatDate 2: bar times as epoch seconds (daily and longer bars stay YYYYMMDD)


def tws_request(line: Line, req_id: int) -> rq.Request:
    kind, contract = line.key.kind, line.contract
    if kind == "quote":
        return rq.ReqMktData(req_id, contract, line.key.generic_ticks)
    if kind in TICK_BY_TICK:
        return rq.ReqTickByTickData(req_id, contract, TICK_BY_TICK[kind])
    if kind == "bars":
        return rq.ReqRealTimeBars(req_id, contract, "MIDPOINT" if contract.sec_type == "CASH" else "TRADES")
    if kind == "hbars":  # sent by the historical scheduler (bar_streams), not straight away
        spec = line.key.bars
        assert spec is not None
        return rq.ReqHistoricalData(req_id, contract, "", spec.duration, spec.bar, spec.what, spec.rth, EPOCH_DATES,
                                    keep_up_to_date=True)  # fmt: skip
    return rq.ReqMktDepth(req_id, contract, 5, False)


def tws_cancel(line: Line) -> rq.Request:
    kind = line.key.kind
    if kind == "quote":
        return rq.CancelMktData(line.req_id)
    if kind in TICK_BY_TICK:
        return rq.CancelTickByTickData(line.req_id)
    if kind == "bars":
        return rq.CancelRealTimeBars(line.req_id)
    if kind == "hbars":
        return rq.CancelHistoricalData(line.req_id)
    return rq.CancelMktDepth(line.req_id, False)
